"""Reading `terraform show -json` plans: shared by drift_report.py and
plan_summary.py. Python 3 standard library only.

The JSON format is Terraform's (format_version 1.x): `resource_drift` holds
what refresh found changed outside Terraform, `resource_changes` what the
plan would do. Each change has `before`/`after` values and
`before_sensitive`/`after_sensitive` shadows (true where a value is
sensitive, possibly a whole subtree), and `after_unknown` for values known
only after apply.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

# Top-level blocks of idis_environment (provider/src/environment/schema.rs):
# one component each.
COMPONENTS = ["network", "keys", "cluster", "database", "cache", "audit_storage", "edge"]

# Top-level computed attributes belong to the component that reports them;
# everything else top-level (name, region, tags, timeouts, app_config, ...)
# is the environment's own.
ATTRIBUTE_COMPONENT = [
    (re.compile(r"^(vpc_id|public_subnet_ids|private_subnet_ids)$"), "network"),
    (re.compile(r"^(platform_key_arn|tenant_key_arns)$"), "keys"),
    (re.compile(r"^(cluster_|node_group_arn$)"), "cluster"),
    (re.compile(r"^database_"), "database"),
    (re.compile(r"^cache_"), "cache"),
    (re.compile(r"^audit_bucket_"), "audit_storage"),
    (re.compile(r"^(web_acl_arn|shield_protection_id|cdn_domain_name)$"), "edge"),
]
PLAN_KEYS = {"planned_values", "resource_drift", "resource_changes", "prior_state"}
ENVIRONMENT = "environment"
ENVIRONMENT_TYPE = "idis_environment"

SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"
MAX_VALUE = 300
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class PlanError(Exception):
    """A file that is not the JSON of `terraform show -json <plan>`."""


@dataclass
class Plan:
    label: str
    data: dict

    @property
    def drift(self) -> list[dict]:
        return self.data.get("resource_drift") or []

    @property
    def changes(self) -> list[dict]:
        return self.data.get("resource_changes") or []

    def managed_resources(self, of_type: str | None = None) -> list[dict]:
        """Resources in the prior state (what refresh looked at)."""
        root = (self.data.get("prior_state") or {}).get("values", {}).get("root_module") or {}
        return [r for r in _walk_module(root) if r.get("mode") == "managed" and (of_type is None or r.get("type") == of_type)]


def _walk_module(module: dict) -> Iterator[dict]:
    yield from module.get("resources") or []
    for child in module.get("child_modules") or []:
        yield from _walk_module(child)


def load_plans(paths: list[str]) -> list[Plan]:
    """Plans from files, or from stdin for `-` or no path."""
    plans = []
    for path in paths or ["-"]:
        if path == "-":
            text, label = sys.stdin.read(), "stdin"
        else:
            try:
                text, label = Path(path).read_bytes().decode("utf-8", errors="replace"), path
            except OSError as error:
                raise PlanError(f"{path}: cannot read it: {error.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PlanError(
                f"{label}: not JSON ({error.msg} at line {error.lineno}); give the output of "
                "`terraform show -json PLANFILE`, not the plan file itself"
            ) from None
        if not isinstance(data, dict) or "format_version" not in data or not PLAN_KEYS & set(data):
            raise PlanError(
                f"{label}: JSON, but not a plan from `terraform show -json PLANFILE` "
                "(no format_version or resource changes)"
            )
        plans.append(Plan(label, data))
    return plans


@dataclass
class Leaf:
    """One changed leaf attribute: its path and both values, sensitive already hidden."""

    path: list[str | int]
    before: str
    after: str


def component_of(resource_type: str, path: list[str | int]) -> str:
    if not path:
        return ENVIRONMENT
    head = str(path[0])
    if resource_type != ENVIRONMENT_TYPE:
        return head if isinstance(path[0], str) else ENVIRONMENT
    if head in COMPONENTS:
        return head
    for pattern, component in ATTRIBUTE_COMPONENT:
        if pattern.search(head):
            return component
    return ENVIRONMENT


def format_path(path: list[str | int]) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _IDENT.match(step):
            out += ("." if out else "") + step
        else:
            out += f"[{json.dumps(step)}]"
    return out or "(whole resource)"


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, sort_keys=True, separators=(", ", ": ")) if not isinstance(value, str) else json.dumps(value)
    if len(text) > MAX_VALUE:
        text = text[: MAX_VALUE - 1] + "…"
    return text


def _sub(shadow: Any, key: str | int) -> Any:
    """The part of a sensitive/unknown shadow under key (a shadow `true` covers everything below)."""
    if shadow is True:
        return True
    if isinstance(shadow, dict):
        return shadow.get(key, False)
    if isinstance(shadow, list) and isinstance(key, int) and key < len(shadow):
        return shadow[key]
    return False


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)


def changed_leaves(change: dict) -> list[Leaf]:
    """Leaf attributes that differ between change.before and change.after.

    Objects and maps are walked key by key, lists of objects index by index
    when both sides have as many; a list of scalars (tenants, subnet ids) or
    lists of different lengths are one leaf; a map or block that appears or
    disappears is one leaf per key. A leaf with anything sensitive under it
    on a side shows "(sensitive)" on that side; one Terraform knows only
    after apply shows "(known after apply)".
    """
    out: list[Leaf] = []

    def shown(value: Any, sensitive: Any) -> str:
        if _has_sensitive(sensitive):
            return SENSITIVE
        return format_value(value)

    def walk(before: Any, after: Any, bs: Any, as_: Any, au: Any, path: list[str | int]) -> None:
        if au is True:
            out.append(Leaf(list(path), shown(before, bs), UNKNOWN))
            return
        # A map or block that appears or disappears: one row per key.
        if before is None and isinstance(after, dict):
            before = {}
        if after is None and isinstance(before, dict) and not isinstance(au, dict):
            after = {}
        if isinstance(before, dict) and isinstance(after, dict):
            keys = set(before) | set(after) | (set(au) if isinstance(au, dict) else set())
            for key in sorted(keys):
                walk(before.get(key), after.get(key), _sub(bs, key), _sub(as_, key), _sub(au, key), path + [key])
        elif (isinstance(before, list) and isinstance(after, list) and len(before) == len(after)
              and not (_scalar_list(before) and _scalar_list(after))):
            for i, (b, a) in enumerate(zip(before, after)):
                walk(b, a, _sub(bs, i), _sub(as_, i), _sub(au, i), path + [i])
        elif not _equal(before, after):
            out.append(Leaf(list(path), shown(before, bs), shown(after, as_)))

    walk(change.get("before"), change.get("after"), change.get("before_sensitive", False),
         change.get("after_sensitive", False), change.get("after_unknown", False), [])
    return out


def _equal(a: Any, b: Any) -> bool:
    """JSON equality that does not take true for 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _has_sensitive(shadow: Any) -> bool:
    if shadow is True:
        return True
    if isinstance(shadow, dict):
        return any(_has_sensitive(v) for v in shadow.values())
    if isinstance(shadow, list):
        return any(_has_sensitive(v) for v in shadow)
    return False


def environment_label(resource: dict, change: dict) -> str:
    """An idis_environment's name (from either side of the change), else the address."""
    for side in ("before", "after"):
        value = change.get(side)
        if isinstance(value, dict) and isinstance(value.get("name"), str) and resource.get("type") == ENVIRONMENT_TYPE:
            return value["name"]
    return resource.get("address", "?")


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell, as inline code."""
    text = text.replace("\n", " ").replace("|", "\\|")
    ticks = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"
