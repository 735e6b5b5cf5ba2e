#!/usr/bin/env python3
"""Drift report: Markdown from `terraform show -json` of a refresh-only plan.

    terraform plan -refresh-only -detailed-exitcode -out=drift.tfplan
    terraform show -json drift.tfplan > drift.json
    tools/drift_report.py drift.json [more.json ...] > drift.md

One section per environment (an idis_environment's `name`; the address for
other resources), one table per component (network, keys, cluster,
database, cache, audit_storage, edge; top-level settings under
"environment"), one row per drifted leaf attribute: its path, the value in
the Terraform state and the value AWS reports now. Sensitive values are
shown as "(sensitive)", never printed. Without drift the report is a single
line. Several plan files (one per environment) make one report.

Exit status: 0, or with --detailed-exitcode 2 when there is drift (as
`terraform plan -detailed-exitcode`); 1 when a file is not plan JSON.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from planjson import (  # noqa: E402
    COMPONENTS,
    ENVIRONMENT,
    ENVIRONMENT_TYPE,
    Leaf,
    Plan,
    PlanError,
    changed_leaves,
    component_of,
    environment_label,
    format_path,
    load_plans,
    md_cell,
)

COMPONENT_ORDER = [ENVIRONMENT, *COMPONENTS]


@dataclass
class DriftedResource:
    label: str
    address: str
    source: str
    rows: dict[str, list[Leaf]] = field(default_factory=dict)


def drifted_resources(plan: Plan) -> list[DriftedResource]:
    """What refresh found changed outside Terraform: `resource_drift`.

    (A refresh-only plan of Terraform 1.11 has no `resource_changes` at all;
    in a normal plan they are what apply would do, not drift.)"""
    seen: set[str] = set()
    out = []
    for entry in plan.drift:
        address = entry.get("address", "?")
        change = entry.get("change") or {}
        actions = change.get("actions") or []
        if address in seen or actions in ([], ["no-op"], ["read"]) or entry.get("mode") == "data":
            continue
        seen.add(address)
        resource = DriftedResource(environment_label(entry, change), address, plan.label)
        if change.get("after") is None:
            # Deleted outside Terraform: refresh found nothing.
            resource.rows[ENVIRONMENT] = [Leaf([], "present", "absent (deleted outside Terraform)")]
        else:
            for leaf in changed_leaves(change):
                resource.rows.setdefault(component_of(entry.get("type", ""), leaf.path), []).append(leaf)
        if resource.rows:
            out.append(resource)
    return out


def checked_count(plans: list[Plan]) -> tuple[int, str]:
    """How many environments (else resources) the plans looked at: those in
    the refreshed state, and those refresh found deleted (which it is not in)."""

    def addresses(plan: Plan, of_type: str | None) -> set[str]:
        found = {r.get("address") for r in plan.managed_resources(of_type)}
        found |= {d.get("address") for d in plan.drift if d.get("mode") == "managed" and of_type in (None, d.get("type"))}
        return found

    environments = sum(len(addresses(p, ENVIRONMENT_TYPE)) for p in plans)
    if environments:
        return environments, "environment"
    return sum(len(addresses(p, None)) for p in plans), "resource"


def report(plans: list[Plan], title: str) -> tuple[str, bool]:
    resources = [r for plan in plans for r in drifted_resources(plan)]
    count, noun = checked_count(plans)
    plural = "" if count == 1 else "s"
    if not resources:
        return f"No drift: {count} {noun}{plural} checked.\n", False

    leaves = sum(len(rows) for r in resources for rows in r.rows.values())
    envs = sorted({r.label for r in resources})
    lines = [
        f"## {title}",
        "",
        f"{leaves} drifted attribute{'s' if leaves != 1 else ''} in {len(envs)} of {count} {noun}{plural} "
        f"checked: {', '.join(envs)}.",
        "",
    ]
    several_sources = len(plans) > 1
    labels = [r.label for r in resources]
    for resource in sorted(resources, key=lambda r: (r.label, r.source, r.address)):
        heading = resource.label
        if labels.count(resource.label) > 1 and several_sources:
            heading += f" ({resource.source})"
        origin = f"`{resource.address}`" + (f" in `{resource.source}`" if several_sources else "")
        lines += [f"### {heading}", "", origin, ""]
        for component in sorted(resource.rows, key=_component_rank):
            lines += [
                f"#### {component}",
                "",
                "| attribute | in state | in AWS |",
                "|---|---|---|",
            ]
            for leaf in resource.rows[component]:
                lines.append(f"| {md_cell(format_path(leaf.path))} | {md_cell(leaf.before)} | {md_cell(leaf.after)} |")
            lines.append("")
    lines += [
        "`terraform apply` puts AWS back as configured; `terraform apply -refresh-only` accepts "
        "AWS's values into the state instead (then change the configuration to match).",
        "",
    ]
    return "\n".join(lines), True


def _component_rank(component: str) -> tuple[int, str]:
    return (COMPONENT_ORDER.index(component) if component in COMPONENT_ORDER else len(COMPONENT_ORDER), component)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Markdown drift report from `terraform show -json` of refresh-only plans.",
        epilog="Example: terraform show -json drift.tfplan | tools/drift_report.py > drift.md",
    )
    parser.add_argument("plans", nargs="*", metavar="PLAN_JSON",
                        help="`terraform show -json PLANFILE` output; `-` or none reads stdin")
    parser.add_argument("--title", default="Drift report", help="heading of the report (default: Drift report)")
    parser.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when there is drift")
    args = parser.parse_args(argv)
    try:
        plans = load_plans(args.plans)
    except PlanError as error:
        print(f"drift_report.py: {error}", file=sys.stderr)
        return 1
    text, drifted = report(plans, args.title)
    sys.stdout.write(text)
    return 2 if drifted and args.detailed_exitcode else 0


if __name__ == "__main__":
    sys.exit(main())
