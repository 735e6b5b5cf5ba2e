#!/usr/bin/env bash
# Daily drift check of one environment, as the drift workflow runs it.
#
#   drift-check.sh ENVIRONMENT [PLAN_ARGS...]     e.g. drift-check.sh production -var-file=production.tfvars
#
# in the Terraform directory, after `terraform init`. PLAN_ARGS go to `terraform plan`.
# Runs `terraform plan -refresh-only -detailed-exitcode`:
#   exit 0 (no drift)  -> closes the open "Drift: ENVIRONMENT" issue, if any, with a comment;
#   exit 2 (drift)     -> writes drift.md with tools/drift_report.py and opens that issue
#                         (label DRIFT_LABEL), or replaces its body and comments when it is open;
#   exit 1 (error)     -> exits 1: the job fails, no issue is touched.
# The plan's JSON may hold sensitive values: it is deleted once the report is written.
#
# Environment: DRIFT_REPORT (path of tools/drift_report.py; default: found from this script),
# DRIFT_LABEL (default "drift"), RUN_URL (link to the run, added to comments),
# GITHUB_STEP_SUMMARY (the report is appended when set), and what `gh` needs (GH_TOKEN, GH_REPO).
set -uo pipefail

if [[ $# -lt 1 || -z $1 ]]; then
  echo "usage: $0 ENVIRONMENT [PLAN_ARGS...]" >&2
  exit 64
fi
environment=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
report_tool=${DRIFT_REPORT:-$here/../../tools/drift_report.py}
label=${DRIFT_LABEL:-drift}
title="Drift: $environment"
run=${RUN_URL:+ ($RUN_URL)}

open_issue() {
  gh issue list --state open --label "$label" --limit 100 --json number,title \
    --jq ".[] | select(.title == \"$title\") | .number" | head -n 1
}

terraform plan -input=false -refresh-only -detailed-exitcode -lock-timeout=5m -out=drift.tfplan "$@"
code=$?

case $code in
  0)
    echo "No drift in $environment."
    number=$(open_issue) || exit 1
    if [[ -n $number ]]; then
      gh issue close "$number" --comment "No drift any more in $environment$run." || exit 1
    fi
    ;;
  2)
    set -e
    trap 'rm -f drift.json' EXIT
    terraform show -json drift.tfplan >drift.json
    python3 "$report_tool" --title "Drift in $environment" drift.json >drift.md
    rm -f drift.json
    cat drift.md
    if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then cat drift.md >>"$GITHUB_STEP_SUMMARY"; fi
    gh label create "$label" --color D93F0B --description "Infrastructure changed outside Terraform" >/dev/null 2>&1 || true
    number=$(open_issue)
    if [[ -n $number ]]; then
      gh issue edit "$number" --body-file drift.md
      gh issue comment "$number" --body "Drift still present in $environment$run; the description holds today's report."
    else
      gh issue create --title "$title" --label "$label" --body-file drift.md
    fi
    ;;
  *)
    echo "terraform plan failed (exit $code) for $environment: see the errors above." >&2
    exit 1
    ;;
esac
