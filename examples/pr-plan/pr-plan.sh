#!/usr/bin/env bash
# Plan of one environment for a pull request, as the plan workflow runs it.
#
#   pr-plan.sh ENVIRONMENT [PLAN_ARGS...]     e.g. pr-plan.sh production -var-file=production.tfvars
#
# in the Terraform directory, after `terraform init`. PLAN_ARGS go to `terraform plan`.
# Runs `terraform plan -json -out=plan.tfplan` (the -json log keeps the
# provider's warnings, which the plan file does not), turns plan and log into
# summary.md with tools/plan_summary.py (counts, disruptive changes, changed
# attributes; sensitive values hidden), and posts it to the pull request as
# one comment per environment, edited in place on every push. Exits 1 when
# the plan failed (after posting the errors), else 0.
#
# Environment: PR_NUMBER (required), PLAN_SUMMARY (path of tools/plan_summary.py;
# default: found from this script), GITHUB_STEP_SUMMARY (the summary is appended
# when set), and what `gh` needs (GH_TOKEN, GH_REPO).
set -uo pipefail

if [[ $# -lt 1 || -z $1 || -z ${PR_NUMBER:-} ]]; then
  echo "usage: PR_NUMBER=N $0 ENVIRONMENT [PLAN_ARGS...]" >&2
  exit 64
fi
environment=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
summary_tool=${PLAN_SUMMARY:-$here/../../tools/plan_summary.py}
marker="<!-- idis-plan-summary: $environment -->"

rm -f plan.tfplan plan.json
terraform plan -input=false -lock=false -json -out=plan.tfplan "$@" >plan.log
code=$?
set -e
trap 'rm -f plan.json' EXIT

# Errors and warnings are in the log either way; a plan that failed early
# writes no plan file, and then the log is all there is.
args=(--log plan.log --title "$environment" --max-length 60000)
if [[ -f plan.tfplan ]] && terraform show -json plan.tfplan >plan.json; then
  args=(plan.json "${args[@]}")
fi
python3 "$summary_tool" "${args[@]}" >summary.md
rm -f plan.json
cat summary.md
if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then cat summary.md >>"$GITHUB_STEP_SUMMARY"; fi

comment=$(gh api "repos/{owner}/{repo}/issues/$PR_NUMBER/comments" --paginate \
  --jq ".[] | select(.body | startswith(\"$marker\")) | .id" | head -n 1)
if [[ -n $comment ]]; then
  gh api --method PATCH "repos/{owner}/{repo}/issues/comments/$comment" -F body=@summary.md >/dev/null
else
  gh pr comment "$PR_NUMBER" --body-file summary.md
fi

if [[ $code -ne 0 ]]; then
  echo "terraform plan failed (exit $code) for $environment: see the summary." >&2
  exit 1
fi
