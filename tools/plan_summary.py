#!/usr/bin/env python3
"""Plan summary for a pull request comment.

    terraform plan -input=false -json -out=plan.tfplan > plan.log
    terraform show -json plan.tfplan > plan.json
    tools/plan_summary.py plan.json --log plan.log --title "production" > summary.md

The Markdown has, in this order:

- the counts: to add, to change, to replace, to destroy (and what changed
  outside Terraform since the last apply);
- "Disruptive changes": every warning the provider gave for the plan
  (failover, node group replacement, keys scheduled for deletion, ...),
  summary and detail, from the `-json` log's diagnostics; other warnings
  follow under "Other warnings", errors under "Errors";
- per resource, its action and, per component, the changed attributes
  (before -> after); sensitive values show as "(sensitive)", values only
  known after apply as "(known after apply)".

Without --log the warnings cannot be known (the plan file does not keep
them) and the summary says so. When the plan fails there is no plan file:
give the log alone and the summary shows the errors. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from planjson import (  # noqa: E402
    COMPONENTS,
    ENVIRONMENT,
    UNKNOWN,
    PlanError,
    changed_leaves,
    component_of,
    format_path,
    load_plans,
    md_cell,
)

# module.x["a"].idis_environment.this, data.idis_account.current, ...
PROVIDER_RESOURCE = re.compile(r"(?:^|\.)idis_[a-z0-9_]+\.[A-Za-z0-9_-]+(?:\[[^\]]*\])?$")
# First line of every summary: a workflow finds its own earlier comment by
# it (one per title, so one sticky comment per environment) and edits it.
MARKER = "<!-- idis-plan-summary: {title} -->"
TRUNCATED = "_Summary cut to fit a comment; the full one is in the workflow run's summary._"
ACTION_NAMES = {
    ("create",): "add",
    ("update",): "change",
    ("delete",): "destroy",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
}


def action_of(actions: list[str]) -> str | None:
    return ACTION_NAMES.get(tuple(actions))


def read_log(path: str) -> list[dict]:
    """The diagnostics of a `terraform plan -json` log (one JSON object a line)."""
    try:
        lines = Path(path).read_bytes().decode("utf-8", errors="replace").splitlines()
    except OSError as error:
        raise PlanError(f"{path}: cannot read it: {error.strerror}") from None
    diagnostics, messages = [], 0
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        messages += 1
        if message.get("type") == "diagnostic" and isinstance(message.get("diagnostic"), dict):
            diagnostics.append(message["diagnostic"])
    if lines and not messages:
        raise PlanError(f"{path}: no JSON messages; run `terraform plan -json` for the log")
    return diagnostics


def is_provider_diagnostic(diagnostic: dict) -> bool:
    """A diagnostic of one of this provider's resources: its address names an idis_ resource."""
    return bool(PROVIDER_RESOURCE.search(diagnostic.get("address") or ""))


def quote(text: str) -> list[str]:
    return [f"> {line}" if line else ">" for line in text.splitlines()] or [">"]


def summary(plan_data: dict, diagnostics: list[dict] | None, title: str) -> str:
    counts = {"add": 0, "change": 0, "replace": 0, "destroy": 0}
    changed = []
    for rc in plan_data.get("resource_changes") or []:
        action = action_of((rc.get("change") or {}).get("actions") or [])
        if action is None:
            continue
        counts[action] += 1
        changed.append((rc, action))
    drift = [d for d in plan_data.get("resource_drift") or [] if (d.get("change") or {}).get("actions") not in (["no-op"], ["read"])]

    lines = [MARKER.format(title=title.replace("--", "- -")), f"## Terraform plan: {title}", ""]
    if plan_data.get("errored"):
        lines += ["**The plan failed.**", ""]
    headline = ", ".join(f"**{n} to {k}**" if n else f"{n} to {k}" for k, n in counts.items())
    lines += [headline + (f"; {len(drift)} resource(s) changed outside Terraform" if drift else "") + ".", ""]

    if diagnostics is None:
        lines += ["_Warnings not shown: give the `terraform plan -json` log with `--log`._", ""]
    else:
        errors = [d for d in diagnostics if d.get("severity") == "error"]
        warnings = [d for d in diagnostics if d.get("severity") == "warning"]
        provider = [d for d in warnings if is_provider_diagnostic(d)]
        other = [d for d in warnings if not is_provider_diagnostic(d)]
        if errors:
            lines += ["### Errors", ""]
            for d in errors:
                lines += _diagnostic(d)
        if provider:
            lines += [f"### :warning: Disruptive changes ({len(provider)})", ""]
            for d in provider:
                lines += _diagnostic(d)
        elif not errors:
            lines += ["No disruptive changes: the provider gave no warning.", ""]
        if other:
            lines += ["### Other warnings", ""]
            for d in other:
                lines += _diagnostic(d)

    if changed:
        lines += ["### Changes", "", "| resource | action |", "|---|---|"]
        lines += [f"| {md_cell(rc.get('address', '?'))} | {action} |" for rc, action in changed]
        lines.append("")
        for rc, action in changed:
            lines += _attribute_tables(rc, action)
    elif not plan_data.get("errored"):
        lines += ["No changes. The infrastructure matches the configuration.", ""]
    return "\n".join(lines)


def _diagnostic(d: dict) -> list[str]:
    where = f" (`{d['address']}`)" if d.get("address") else ""
    out = [f"**{d.get('summary', '').strip()}**{where}", ""]
    if d.get("detail"):
        out += quote(d["detail"].strip()) + [""]
    return out


def _attribute_tables(rc: dict, action: str) -> list[str]:
    change = rc.get("change") or {}
    lines = [f"#### {rc.get('address', '?')} ({action})", ""]
    if action == "destroy":
        return lines + ["Destroyed.", ""]
    leaves = changed_leaves(change)
    later = 0
    if change.get("before") is None:
        # A new resource: what the configuration sets, and how many values
        # AWS will give it.
        later = sum(1 for leaf in leaves if leaf.after == UNKNOWN)
        leaves = [leaf for leaf in leaves if leaf.after not in ("null", UNKNOWN)]
    by_component: dict[str, list] = {}
    for leaf in leaves:
        by_component.setdefault(component_of(rc.get("type", ""), leaf.path), []).append(leaf)
    replace_paths = {format_path(p) for p in change.get("replace_paths") or [] if isinstance(p, list)}
    order = [ENVIRONMENT, *COMPONENTS]
    for component in sorted(by_component, key=lambda c: (order.index(c) if c in order else len(order), c)):
        lines += [f"**{component}**", "", "| attribute | before | after |", "|---|---|---|"]
        for leaf in by_component[component]:
            path = format_path(leaf.path)
            mark = " (forces replacement)" if path in replace_paths else ""
            lines.append(f"| {md_cell(path)}{mark} | {md_cell(leaf.before)} | {md_cell(leaf.after)} |")
        lines.append("")
    if later:
        lines += [f"{later} more attribute(s) known after apply.", ""]
    return lines


def truncate(text: str, limit: int) -> str:
    """Whole lines up to limit (the counts and warnings come first, so they stay), then a note."""
    budget = max(limit - len(TRUNCATED) - 2, 0)
    kept, size = [], 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > budget:
            break
        kept.append(line)
        size += len(line)
    return "".join(kept) + "\n" + TRUNCATED + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Markdown summary of a terraform plan for a pull request comment.",
        epilog="Example: tools/plan_summary.py plan.json --log plan.log --title production > summary.md",
    )
    parser.add_argument("plan", metavar="PLAN_JSON", nargs="?",
                        help="`terraform show -json PLANFILE` output; `-` reads stdin; "
                             "leave out when the plan failed (no plan file), and give --log")
    parser.add_argument("--log", metavar="PLAN_LOG", help="output of `terraform plan -json` (for the warnings)")
    parser.add_argument("--title", default="", help="what the plan is of, e.g. the environment")
    parser.add_argument("--max-length", type=int, default=0, metavar="CHARS",
                        help="cut the attribute tables so that the summary fits (a GitHub comment takes 65536)")
    args = parser.parse_args(argv)
    if args.plan is None and args.log is None:
        parser.error("give PLAN_JSON, --log PLAN_LOG, or both")
    try:
        diagnostics = read_log(args.log) if args.log else None
        if args.plan is not None:
            [plan] = load_plans([args.plan])
            data, label = plan.data, plan.label
        else:
            # The plan failed before writing a plan file: what the log says is all there is.
            failed = any(d.get("severity") == "error" for d in diagnostics or [])
            data, label = {"errored": failed}, args.log
    except PlanError as error:
        print(f"plan_summary.py: {error}", file=sys.stderr)
        return 1
    text = summary(data, diagnostics, args.title or label)
    if args.max_length and len(text) > args.max_length:
        text = truncate(text, args.max_length)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
