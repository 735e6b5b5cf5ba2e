"""Invalid configurations are refused before anything is created, with a
message that names the attribute (and the value, where there is one) and
says what is allowed.

Two working directories are initialised once for the whole file: one
calling the module `modules/idis`, one using `idis_environment` directly.
Each case rewrites main.tf in its directory and runs `terraform validate`,
then, if the case is caught at plan, `terraform plan` against moto. The
stage is part of the expectation: literal values on the resource reach the
provider's ValidateResourceTypeConfig at `validate`, and so do the module's
own variable validations and type conversions; a module input passed
through to the resource is unknown to the provider at `validate` and is
refused at `plan`. These cases add to the ones in test_environment.py
(none is repeated).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conftest import REPO_ROOT, REQUIRED_PROVIDERS, Terraform

VALIDATE = "validate"
PLAN = "plan"


@dataclass(frozen=True)
class Case:
    id: str
    hcl: str
    # Every fragment must appear in the error output (whitespace and box
    # drawing folded): the attribute, the value and the rule.
    says: tuple[str, ...]
    stage: str


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").replace("╵", " ").replace("╷", " ").split())


# --- Through the module ------------------------------------------------------

MODULE_REQUIRED = {
    "environment": '"production"',
    "region": '"us-east-1"',
    "vpc_cidr": '"10.0.0.0/16"',
}


def module_config(inputs: str) -> str:
    given = {line.split("=")[0].strip() for line in inputs.splitlines() if "=" in line}
    required = "\n  ".join(f"{k} = {v}" for k, v in MODULE_REQUIRED.items() if k not in given)
    return REQUIRED_PROVIDERS + f"""
provider "idis" {{}}

module "idis" {{
  source = "./modules/idis"
  {required}
  {inputs}
}}
"""


def refused(attribute: str, value: str, rule: str) -> tuple[str, ...]:
    """What the provider says: `<path> = <value> is not allowed: <rule>`."""
    return (f"{attribute} = {value} is not allowed", rule)


MODULE_CASES = [
    # The module's own variable validations.
    Case("environment ends with a dash", 'environment = "prod-"',
         ('var.environment is "prod-"', "environment must be 1 to 23 lowercase letters"), VALIDATE),
    Case("environment longer than 23", 'environment = "production-eu-central-one"',
         ('var.environment is "production-eu-central-one"', "environment must be 1 to 23"), VALIDATE),
    Case("region is not a region name", 'region = "mars"',
         ('var.region is "mars"', 'region must be an AWS region name'), VALIDATE),
    Case("vpc_cidr too small", 'vpc_cidr = "10.0.0.0/25"',
         ('var.vpc_cidr is "10.0.0.0/25"', "from /16 to /24"), VALIDATE),
    Case("db_instance_class without db. prefix", 'db_instance_class = "r6g.xlarge"',
         ('var.db_instance_class is "r6g.xlarge"', "db_instance_class must be an RDS instance class"), VALIDATE),
    Case("db_backup_retention zero", "db_backup_retention = 0",
         ("var.db_backup_retention is 0", "from 1 to 35"), VALIDATE),
    Case("db_backup_retention fractional", "db_backup_retention = 2.5",
         ("var.db_backup_retention is 2.5", "whole number of days"), VALIDATE),
    Case("eks_node_instance_type without size", 'eks_node_instance_type = "m6i"',
         ('var.eks_node_instance_type is "m6i"', "eks_node_instance_type must be an EC2 instance type"), VALIDATE),
    Case("eks_node_min_count zero", "eks_node_min_count = 0",
         ("var.eks_node_min_count is 0", "eks_node_min_count must be a whole number, at least 1"), VALIDATE),
    Case("eks_node_max_count above 450", "eks_node_max_count = 451",
         ("var.eks_node_max_count is 451", "from 1 to 450"), VALIDATE),
    Case("tenants uses the reserved name", 'tenants = ["platform"]',
         ("tenants", '"platform" is reserved'), VALIDATE),
    Case("tenants in capitals", 'tenants = ["Acme"]',
         ("tenants", "lowercase letters"), VALIDATE),
    Case("db_read_replicas above 5", "db_read_replicas = 6",
         ("var.db_read_replicas is 6", "from 0 to 5"), VALIDATE),
    Case("audit_retention_mode unknown", 'audit_retention_mode = "STRICT"',
         ('var.audit_retention_mode is "STRICT"', '"COMPLIANCE" or "GOVERNANCE"'), VALIDATE),
    Case("eks_admin_principals with an assumed-role session",
         'eks_admin_principals = ["arn:aws:sts::123456789012:assumed-role/admins/alice"]',
         ("eks_admin_principals must be distinct IAM role or user ARNs",
          'not allowed: "arn:aws:sts::123456789012:assumed-role/admins/alice"'), VALIDATE),
    Case("eks_viewer_principals with a group", 'eks_viewer_principals = ["arn:aws:iam::123456789012:group/ops"]',
         ("eks_viewer_principals must be distinct IAM role or user ARNs",
          'not allowed: "arn:aws:iam::123456789012:group/ops"'), VALIDATE),
    Case("cdn_certificate_arn outside us-east-1",
         'cdn_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"',
         ('var.cdn_certificate_arn is "arn:aws:acm:eu-west-1:123456789012:certificate/abc"',
          "cdn_certificate_arn must be an ACM certificate ARN in us-east-1"), VALIDATE),
    # Passed through to the provider, which names the resource attribute;
    # Terraform shows the module line that set it (the input's name).
    Case("cdn_aliases without a certificate", 'cdn = true\n  cdn_aliases = ["app.example.com"]',
         ("aliases = var.cdn_aliases",
          *refused("edge.aliases", '["app.example.com"]', "aliases need certificate_arn")), PLAN),
    Case("a principal both admin and viewer",
         'eks_admin_principals = ["arn:aws:iam::123456789012:role/ops"]\n'
         '  eks_viewer_principals = ["arn:aws:iam::123456789012:role/ops"]',
         ("viewer_principals = var.eks_viewer_principals",
          *refused("cluster.viewer_principals[0]", '"arn:aws:iam::123456789012:role/ops"',
                   "is in admin_principals as well")), PLAN),
    Case("vpc_cidr in a public range", 'vpc_cidr = "8.8.0.0/16"',
         ("vpc_cidr = var.vpc_cidr", *refused("network.vpc_cidr", '"8.8.0.0/16"', "use a private range")), PLAN),
    Case("key_deletion_window_days below 7", "key_deletion_window_days = 5",
         ("deletion_window_days = var.key_deletion_window_days",
          *refused("keys.deletion_window_days", "5", "from 7 to 30")), PLAN),
    # Versions: the shape at validate, what AWS offers at plan (the proxy
    # answers DescribeClusterVersions, DescribeDBEngineVersions and
    # DescribeCacheEngineVersions as AWS does), with AWS's list.
    Case("kubernetes_version EKS no longer offers", 'kubernetes_version = "1.20"',
         ("kubernetes_version = var.kubernetes_version",
          'cluster.kubernetes_version = "1.20" is not offered by EKS in us-east-1',
          "eks:DescribeClusterVersions lists 1.29, 1.30, 1.31"), PLAN),
    Case("kubernetes_version with a patch level", 'kubernetes_version = "1.32.1"',
         ("kubernetes_version = var.kubernetes_version",
          *refused("cluster.kubernetes_version", '"1.32.1"', "Kubernetes minor version")), PLAN),
    Case("db_engine_version 12", 'db_engine_version = "12"',
         ("engine_version = var.db_engine_version",
          'database.engine_version = "12" is not offered by RDS for PostgreSQL in us-east-1',
          "rds:DescribeDBEngineVersions lists"), PLAN),
    Case("db_allocated_storage_gb below 20", "db_allocated_storage_gb = 10",
         ("allocated_storage_gb = var.db_allocated_storage_gb",
          *refused("database.allocated_storage_gb", "10", "from 20 to 65536")), PLAN),
    Case("cache_engine_version 6.0", 'cache_engine_version = "6.0"',
         ("engine_version = var.cache_engine_version",
          'cache.engine_version = "6.0" is not offered by ElastiCache for Redis OSS in us-east-1',
          "elasticache:DescribeCacheEngineVersions lists"), PLAN),
    Case("cache_engine memcached", 'cache_engine = "memcached"',
         ("engine = var.cache_engine",
          *refused("cache.engine", '"memcached"', 'use "redis" or "valkey"')), PLAN),
    Case("cache_node_type without cache. prefix", 'cache_node_type = "r6g.large"',
         ("node_type = var.cache_node_type",
          *refused("cache.node_type", '"r6g.large"', "ElastiCache node type")), PLAN),
    Case("cache_node_count 1 with Multi-AZ", "cache_node_count = 1",
         ("node_count = var.cache_node_count",
          *refused("cache.node_count", "1", "Multi-AZ with automatic failover needs at least 2 nodes")), PLAN),
    Case("dr_region not a region name", 'dr_region = "uswest2"',
         ("region      = var.dr_region",
          *refused("dr.region", '"uswest2"', 'an AWS region name such as "us-west-2"')), PLAN),
    Case("dr_region the environment's own", 'dr_region = "us-east-1"',
         ("region      = var.dr_region",
          *refused("dr.region", '"us-east-1"', "a region other than the environment's own (us-east-1)")), PLAN),
    Case("dr_promote without dr_region", "dr_promote = true",
         ("promote     = var.dr_promote",
          *refused("dr.promote", "true", "false without dr.region: there is no DR site to promote")), PLAN),
    Case("audit_retention_days zero", "audit_retention_days = 0",
         ("retention_days = var.audit_retention_days",
          *refused("audit_storage.retention_days", "0", "from 1 to 36500")), PLAN),
    Case("waf_rate_limit below 100", "waf_rate_limit = 50",
         ("rate_limit = var.waf_rate_limit", *refused("edge.rate_limit", "50", "from 100 to 2000000000")), PLAN),
    Case("cdn_origin_domain with a scheme", 'cdn_origin_domain = "https://app.example.com/"',
         ("origin_domain = var.cdn_origin_domain",
          *refused("edge.origin_domain", '"https://app.example.com/"', "no scheme, no path")), PLAN),
    Case("tags with a reserved aws: key", 'tags = { "aws:team" = "x" }',
         ('tags["aws:team"] = "aws:team" is not allowed', 'reserved prefixes "aws:"'), PLAN),
    Case("alarm_emails holds a name, not an address", 'alarm_emails = ["oncall"]',
         ("alarm_emails = var.alarm_emails",
          *refused("monitoring.alarm_emails[0]", '"oncall"', 'an e-mail address such as "oncall@example.com"')), PLAN),
    Case("alarm_webhooks over plain http", 'alarm_webhooks = ["http://hooks.example.com/sns"]',
         ("alarm_webhooks = var.alarm_webhooks",
          *refused("monitoring.alarm_webhooks[0]", '"http://hooks.example.com/sns"',
                   "an https:// URL with a host")), PLAN),
    Case("replica lag threshold of zero seconds", "alarm_thresholds = { replica_lag_seconds = 0 }",
         ('replica_lag_seconds = lookup(var.alarm_thresholds, "replica_lag_seconds", null)',
          *refused("monitoring.replica_lag_seconds", "0", "from 1 to 86400")), PLAN),
    Case("alarm_thresholds with a name it does not take", "alarm_thresholds = { cpu = 90 }",
         ("alarm_thresholds takes only database_cpu_percent",), VALIDATE),
    # Terraform cannot point inside `var.datadog`: it shows the monitoring block.
    Case("a Datadog external id with a space", 'datadog = { external_id = "my id" }',
         refused("monitoring.datadog.external_id", '"my id"', "2 to 1224 letters, digits or any of _+=,.@:/-"),
         PLAN),
    Case("a New Relic external id that is not an account id", 'newrelic = { external_id = "acme-prod" }',
         refused("monitoring.newrelic.external_id", '"acme-prod"', "your New Relic account id, digits only"),
         PLAN),
    # Wrong types and unknown inputs: Terraform refuses them from the schema.
    Case("eks_node_min_count as a word", 'eks_node_min_count = "three"',
         ("eks_node_min_count", "a number is required"), VALIDATE),
    Case("tenants as a string", 'tenants = "acme"',
         ("tenants", "list of string required"), VALIDATE),
    Case("an input the module does not have", 'db_password = "hunter2"',
         ('An argument named "db_password" is not expected here',), VALIDATE),
]


# --- idis_environment directly -----------------------------------------------

def resource_config(body: str) -> str:
    return REQUIRED_PROVIDERS + f"""
provider "idis" {{}}

resource "idis_environment" "this" {{
  {body}
}}
"""


def block(name: str, inner: str) -> str:
    return f'name = "production"\n  {name} {{\n    {inner}\n  }}'


RESOURCE_CASES = [
    Case("name ends with a dash", 'name = "prod-"',
         refused("name", '"prod-"', "not ending with a dash"), VALIDATE),
    Case("name longer than 23", 'name = "a-very-long-environment-name"',
         refused("name", '"a-very-long-environment-name"', "1 to 23 lowercase letters"), VALIDATE),
    Case("region is not a region name", 'name = "production"\n  region = "useast1"',
         refused("region", '"useast1"', "AWS region name"), VALIDATE),
    Case("vpc_cidr in a public range", block("network", 'vpc_cidr = "8.8.0.0/16"'),
         refused("network.vpc_cidr", '"8.8.0.0/16"', "use a private range"), VALIDATE),
    Case("vpc_cidr too small for six subnets", block("network", 'vpc_cidr = "10.0.0.0/25"'),
         refused("network.vpc_cidr", '"10.0.0.0/25"', "/24 (smallest that holds six subnets)"), VALIDATE),
    Case("vpc_cidr without prefix", block("network", 'vpc_cidr = "10.0.0.0"'),
         refused("network.vpc_cidr", '"10.0.0.0"', "IPv4 CIDR block"), VALIDATE),
    Case("two availability zones", block("network", 'availability_zones = ["us-east-1a", "us-east-1b"]'),
         refused("network.availability_zones", '["us-east-1a", "us-east-1b"]', "exactly three different"), VALIDATE),
    Case("a zone twice", block("network", 'availability_zones = ["us-east-1a", "us-east-1a", "us-east-1b"]'),
         ("network.availability_zones =", "exactly three different availability zones"), VALIDATE),
    Case("zones of another region",
         'name = "production"\n  region = "us-east-1"\n  network {\n    availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]\n  }',
         ("network.availability_zones =", 'zone "eu-west-1a" is not in region "us-east-1"'), VALIDATE),
    Case("tenant named platform", block("keys", 'tenants = ["acme", "platform"]'),
         refused("keys.tenants[1]", '"platform"', '"platform" is reserved'), VALIDATE),
    Case("tenant in capitals", block("keys", 'tenants = ["Acme"]'),
         refused("keys.tenants[0]", '"Acme"', "lowercase letters"), VALIDATE),
    Case("deletion window above 30", block("keys", "deletion_window_days = 31"),
         refused("keys.deletion_window_days", "31", "from 7 to 30"), VALIDATE),
    Case("kubernetes 1.27", block("cluster", 'kubernetes_version = "1.27"'),
         ('cluster.kubernetes_version = "1.27" is not offered by EKS in us-east-1',
          "eks:DescribeClusterVersions lists 1.29"), PLAN),
    Case("no node instance types", block("cluster", "node_instance_types = []"),
         refused("cluster.node_instance_types", "[]", "at least one EC2 instance type"), VALIDATE),
    Case("node instance type without size", block("cluster", 'node_instance_types = ["xlarge"]'),
         refused("cluster.node_instance_types[0]", '"xlarge"', "EC2 instance type"), VALIDATE),
    Case("admin principal that is an account root", block("cluster", 'admin_principals = ["arn:aws:iam::123456789012:root"]'),
         refused("cluster.admin_principals[0]", '"arn:aws:iam::123456789012:root"', "IAM role or user ARN"), VALIDATE),
    Case("viewer listed twice",
         block("cluster", 'viewer_principals = ["arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:user/a"]'),
         refused("cluster.viewer_principals[1]", '"arn:aws:iam::123456789012:user/a"', "listed twice"), VALIDATE),
    Case("aliases without a certificate", block("edge", 'cdn = true\n    aliases = ["app.example.com"]'),
         refused("edge.aliases", '["app.example.com"]', "aliases need certificate_arn"), VALIDATE),
    Case("certificate of another region",
         block("edge", 'cdn = true\n    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"'),
         refused("edge.certificate_arn", '"arn:aws:acm:eu-west-1:123456789012:certificate/abc"',
                 "CloudFront takes certificates from us-east-1 only"), VALIDATE),
    Case("node_max_size above 450", block("cluster", "node_max_size = 500"),
         refused("cluster.node_max_size", "500", "from 1 to 450"), VALIDATE),
    Case("node_min_size zero", block("cluster", "node_min_size = 0\n    node_max_size = 3"),
         refused("cluster.node_min_size", "0", "from 1 to 450"), VALIDATE),
    Case("desired size outside min and max",
         block("cluster", "node_min_size = 3\n    node_max_size = 10\n    node_desired_size = 12"),
         refused("cluster.node_desired_size", "12", "within node_min_size (3) and node_max_size (10)"), VALIDATE),
    Case("instance class without size", block("database", 'instance_class = "db.r6g"'),
         refused("database.instance_class", '"db.r6g"', "RDS instance class"), VALIDATE),
    Case("storage below 20 GiB", block("database", "allocated_storage_gb = 10"),
         refused("database.allocated_storage_gb", "10", "from 20 to 65536"), VALIDATE),
    Case("negative read replicas", block("database", "read_replicas = -1"),
         refused("database.read_replicas", "-1", "from 0 to 5"), VALIDATE),
    Case("master user postgres", block("database", 'master_username = "postgres"'),
         refused("database.master_username", '"postgres"', "not a reserved name"), VALIDATE),
    Case("database name starting with a digit", block("database", 'database_name = "1idis"'),
         refused("database.database_name", '"1idis"', "starting with a letter"), VALIDATE),
    Case("fractional backup retention", block("database", "backup_retention_days = 7.5"),
         refused("database.backup_retention_days", "7.5", "whole number from 1 to 35"), VALIDATE),
    Case("postgres version text", block("database", 'engine_version = "16.x"'),
         refused("database.engine_version", '"16.x"', "use a PostgreSQL version such as"), VALIDATE),
    Case("cache node type without prefix", block("cache", 'node_type = "r6g.large"'),
         refused("cache.node_type", '"r6g.large"', "ElastiCache node type"), VALIDATE),
    Case("seven cache nodes", block("cache", "node_count = 7"),
         refused("cache.node_count", "7", "from 1 to 6"), VALIDATE),
    Case("cache snapshots kept 36 days", block("cache", "snapshot_retention_days = 36"),
         refused("cache.snapshot_retention_days", "36", "from 0 to 35"), VALIDATE),
    Case("retention mode in lower case", block("audit_storage", 'retention_mode = "compliance"'),
         refused("audit_storage.retention_mode", '"compliance"', '"COMPLIANCE" or "GOVERNANCE"'), VALIDATE),
    Case("retention of zero days", block("audit_storage", "retention_days = 0"),
         refused("audit_storage.retention_days", "0", "from 1 to 36500"), VALIDATE),
    Case("origin domain with scheme", block("edge", 'origin_domain = "https://app.example.com/"'),
         refused("edge.origin_domain", '"https://app.example.com/"', "no scheme, no path"), VALIDATE),
    Case("an alarm e-mail address twice",
         block("monitoring", 'alarm_emails = ["oncall@example.com", "oncall@example.com"]'),
         refused("monitoring.alarm_emails[1]", '"oncall@example.com"', "each address may appear only once"), VALIDATE),
    Case("an alarm webhook without a host", block("monitoring", 'alarm_webhooks = ["https:///sns"]'),
         refused("monitoring.alarm_webhooks[0]", '"https:///sns"', "an https:// URL with a host"), VALIDATE),
    Case("a Datadog role trusting an account id of 11 digits",
         block("monitoring", 'datadog = { external_id = "abc123", aws_account_id = "46462253201" }'),
         refused("monitoring.datadog.aws_account_id", '"46462253201"',
                 'a 12-digit AWS account id, Datadog\'s own ("464622532012")'), VALIDATE),
    Case("database CPU threshold above 100 percent", block("monitoring", "database_cpu_percent = 120"),
         refused("monitoring.database_cpu_percent", "120", "from 1 to 100"), VALIDATE),
    Case("create timeout without unit", block("timeouts", 'create = "90"'),
         refused("timeouts.create", '"90"', 'duration such as "90m"'), VALIDATE),
    Case("zero delete timeout", block("timeouts", 'delete = "0s"'),
         refused("timeouts.delete", '"0s"', 'duration such as "90m"'), VALIDATE),
    Case("tag key managed-by", 'name = "production"\n  tags = { "managed-by" = "me" }',
         refused('tags["managed-by"]', '"managed-by"', 'the keys "managed-by" and "Name"'), VALIDATE),
    Case("tag value over 256 characters", f'name = "production"\n  tags = {{ team = "{"x" * 257}" }}',
         ('tags["team"] = "xxxx', "tag values are at most 256 characters"), VALIDATE),
    Case("tag key with characters AWS refuses", 'name = "production"\n  tags = { "cost center!" = "x" }',
         refused('tags["cost center!"]', '"cost center!"', "only letters, digits, spaces and _ . : / = + - @"), VALIDATE),
    Case("47 tags", 'name = "production"\n  tags = {' + ", ".join(f'k{i} = "v"' for i in range(47)) + "}",
         ("tags has 47 tags; at most 46 are allowed", "the provider sets 4 itself"), VALIDATE),
    Case("node_min_size as a word", block("cluster", 'node_min_size = "three"'),
         ('Inappropriate value for attribute "node_min_size"', "a number is required"), VALIDATE),
    Case("an attribute the block does not have", block("database", "storage_gb = 100"),
         ('An argument named "storage_gb" is not expected here',), VALIDATE),
    Case("tenants as a string", block("keys", 'tenants = "acme"'),
         ('Inappropriate value for attribute "tenants"', "list of string required"), VALIDATE),
]


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory, terraform_rc, moto):
    """Initialised directories for module and resource cases; a valid
    configuration in each validates and plans, so every refusal below is
    the case's own. The provider reaches moto through the proxy, which
    answers what the plan asks AWS (the versions it offers)."""
    from awsproxy import AwsProxy

    proxy = AwsProxy(moto.endpoint)
    root = tmp_path_factory.mktemp("invalid-config")
    dirs = {}
    for kind, valid in (("module", module_config("")), ("resource", resource_config('name = "production"'))):
        workdir = root / kind
        workdir.mkdir()
        if kind == "module":
            (workdir / "modules").symlink_to(REPO_ROOT / "modules")
        tf = Terraform(workdir, terraform_rc, proxy.endpoint)
        tf.write(valid)
        tf.init()
        tf.validate()
        tf.plan()
        dirs[kind] = tf
    yield dirs
    proxy.stop()


def check_refused(tf: Terraform, config: str, case: Case) -> None:
    tf.write(config)
    validated = tf.validate(check=False)
    if case.stage == VALIDATE:
        result, command = validated, "terraform validate"
    else:
        assert validated.returncode == 0, validated.describe("terraform validate (should pass; plan refuses)")
        result, command = tf.plan(check=False), "terraform plan"
    assert result.returncode == 1, result.describe(command)
    text = flat(result.stderr)
    for fragment in case.says:
        assert flat(fragment) in text, f"{fragment!r} missing\n" + result.describe(command)
    assert "plugin crashed" not in text.lower()
    assert "Internal error" not in text


@pytest.mark.parametrize("case", MODULE_CASES, ids=[c.id for c in MODULE_CASES])
def test_a_bad_module_input_is_refused_naming_the_input(workdirs, case):
    check_refused(workdirs["module"], module_config(case.hcl), case)


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=[c.id for c in RESOURCE_CASES])
def test_a_bad_resource_attribute_is_refused_naming_the_attribute(workdirs, case):
    check_refused(workdirs["resource"], resource_config(case.hcl), case)


def test_there_are_at_least_thirty_distinct_cases():
    hcl = [c.hcl for c in MODULE_CASES] + [c.hcl for c in RESOURCE_CASES]
    assert len(set(hcl)) == len(hcl), "a case is listed twice"
    assert len(MODULE_CASES) >= 15 and len(RESOURCE_CASES) >= 15
