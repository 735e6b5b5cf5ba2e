"""An environment IDIS can run on: the documents bucket beside the audit
bucket, workload identity (the cluster's OIDC provider and one IAM role per
service account), the EBS CSI driver with its role, and every required
IDIS_* setting delivered by `kubernetes_manifests` without a secret value
in Terraform.

One apply serves the whole file: examples/production as it is, plus a
staging environment in the same state (`staging.tf`), at TF_LOG=trace.
AWS is checked with boto3 against moto, and through the proxy where only
the proxy plays the service (EKS add-ons, access entries and the cluster's
authentication mode).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import pytest
import yaml

from conftest import AWS_ACCESS_KEY_ID, AWS_REGION, AWS_SECRET_ACCESS_KEY, Terraform, example_with_module

ENVS = ("production", "staging")

STAGING_TF = """
module "idis_staging" {
  source = "../../modules/idis"

  environment = "staging"
  region      = "us-east-1"
  vpc_cidr    = "10.1.0.0/16"

  db_instance_class      = "db.r6g.large"
  eks_node_instance_type = "m6i.large"
  enable_ddos_protection = false
  deletion_protection    = false
}
"""

# Actions that only read configuration: the one kind AWS's controller
# policies leave on every resource (`*`).
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|List|Get)[A-Za-z]*$")


@dataclass
class Platform:
    tf: Terraform
    trace: str
    states: dict
    proxy_endpoint: str


def _states(tf: Terraform) -> dict:
    shown = json.loads(tf.run("show", "-json").stdout)
    found = {}
    for module in shown["values"]["root_module"].get("child_modules", []):
        for resource in module.get("resources", []):
            if resource["type"] == "idis_environment":
                found[resource["values"]["name"]] = resource["values"]
    return found


@pytest.fixture(scope="module")
def platform(tmp_path_factory, terraform_rc, moto) -> Platform:
    moto.reset()
    tf = example_with_module(tmp_path_factory.mktemp("app"), "production", terraform_rc, moto.endpoint)
    tf.write(STAGING_TF, "staging.tf")
    tf.init()
    applied = tf.apply(env={"TF_LOG": "TRACE"}, timeout=600)
    return Platform(tf, applied.stdout + applied.stderr, _states(tf), tf.proxy.endpoint)


def _through_proxy(platform: Platform, service: str):
    return boto3.client(service, region_name=AWS_REGION, endpoint_url=platform.proxy_endpoint,
                        aws_access_key_id=AWS_ACCESS_KEY_ID, aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
                        config=botocore.config.Config(retries={"max_attempts": 2}))


def _statements(doc) -> list[dict]:
    statements = doc["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _list(v) -> list:
    return v if isinstance(v, list) else [v]


def _policy(iam, role: str) -> dict:
    return iam.get_role_policy(RoleName=role, PolicyName="idis-workload-identity")["PolicyDocument"]


def _env_arns(aws, state: dict) -> set[str]:
    """Every ARN of this environment a role may name, as boto3 reads them."""
    env = state["name"]
    kms, sm = aws("kms"), aws("secretsmanager")
    keys = {kms.describe_key(KeyId=a["TargetKeyId"])["KeyMetadata"]["Arn"]
            for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(f"alias/idis/{env}/")}
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"idis-{env}-db")["DBInstances"][0]
    secrets = {db["MasterUserSecret"]["SecretArn"]} | {
        sm.describe_secret(SecretId=f"idis/{env}/{name}")["ARN"]
        for name in ("cache-auth-token", "jwt-secret", "encryption-key")}
    buckets = {f"arn:aws:s3:::{b['Name']}" for b in aws("s3").list_buckets()["Buckets"]
               if b["Name"].startswith(f"idis-{env}-")}
    return keys | secrets | buckets


# ---------------------------------------------------------------- the two buckets


def test_documents_and_audit_buckets_each_do_their_job(platform, aws):
    s3 = aws("s3")
    for env in ENVS:
        state = platform.states[env]
        docs, audit = state["documents_bucket_name"], state["audit_bucket_name"]
        assert docs == f"idis-{env}-documents-123456789012-us-east-1"
        assert state["documents_bucket_arn"] == f"arn:aws:s3:::{docs}"
        # The documents bucket: versioned, SSE-KMS with the platform key,
        # private, TLS only, noncurrent versions expired; no Object Lock.
        assert s3.get_bucket_versioning(Bucket=docs)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=docs)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": state["platform_key_arn"]}
        assert rule["BucketKeyEnabled"] is True
        assert all(s3.get_public_access_block(Bucket=docs)["PublicAccessBlockConfiguration"].values())
        policy = json.loads(s3.get_bucket_policy(Bucket=docs)["Policy"])
        tls = [s for s in _statements(policy) if s["Effect"] == "Deny"
               and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}]
        assert tls and set(tls[0]["Resource"]) == {f"arn:aws:s3:::{docs}", f"arn:aws:s3:::{docs}/*"}
        assert not [s for s in _statements(policy) if s["Effect"] == "Allow"]
        rules = s3.get_bucket_lifecycle_configuration(Bucket=docs)["Rules"]
        assert [(r["ID"], r["Status"], r["NoncurrentVersionExpiration"]["NoncurrentDays"]) for r in rules] == [
            ("idis-expire-noncurrent-versions", "Enabled", 90)]
        with pytest.raises(s3.exceptions.ClientError, match="ObjectLockConfigurationNotFound"):
            s3.get_object_lock_configuration(Bucket=docs)
        # The audit bucket stays WORM, and the application is told which is which.
        assert s3.get_object_lock_configuration(Bucket=audit)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
        assert state["app_config"]["IDIS_S3_BUCKET"] == docs
        assert state["app_config"]["IDIS_AUDIT_S3_BUCKET"] == audit
        assert state["documents_storage"]["retain_on_destroy"] is True


# ---------------------------------------------------------------- workload identity

SERVICE_ACCOUNTS = {
    "api": ("idis", "idis-api"),
    "external-secrets": ("idis", "idis-external-secrets"),
    "load-balancer-controller": ("kube-system", "aws-load-balancer-controller"),
    "ebs-csi-driver": ("kube-system", "ebs-csi-controller-sa"),
    "cluster-autoscaler": ("kube-system", "cluster-autoscaler"),
}


def test_each_role_trusts_exactly_its_service_account_of_its_own_cluster(platform, aws):
    # Each cluster's own issuer: moto gives all clusters one, the proxy plays EKS.
    iam, eks = aws("iam"), _through_proxy(platform, "eks")
    for env in ENVS:
        state = platform.states[env]
        issuer = eks.describe_cluster(name=f"idis-{env}")["cluster"]["identity"]["oidc"]["issuer"]
        host = issuer.removeprefix("https://")
        provider_arn = f"arn:aws:iam::123456789012:oidc-provider/{host}"
        assert state["oidc_provider_arn"] == provider_arn
        provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)
        assert provider["Url"] == host
        assert provider["ClientIDList"] == ["sts.amazonaws.com"]
        assert provider["ThumbprintList"] == ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
        for suffix, (namespace, account) in SERVICE_ACCOUNTS.items():
            role = iam.get_role(RoleName=f"idis-{env}-{suffix}")["Role"]
            assert state[f"{suffix.replace('-', '_')}_role_arn"] == role["Arn"]
            [statement] = _statements(role["AssumeRolePolicyDocument"])
            assert statement["Effect"] == "Allow"
            assert statement["Principal"] == {"Federated": provider_arn}
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            assert statement["Condition"] == {"StringEquals": {
                f"{host}:sub": f"system:serviceaccount:{namespace}:{account}",
                f"{host}:aud": "sts.amazonaws.com"}}, (env, suffix)
            assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []
            assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == ["idis-workload-identity"]


def test_every_permission_names_only_this_environment(platform, aws):
    iam = aws("iam")
    mine = {env: _env_arns(aws, platform.states[env]) for env in ENVS}
    for env in ENVS:
        other = next(e for e in ENVS if e != env)
        vpc_arn = f"arn:aws:ec2:us-east-1:123456789012:vpc/{platform.states[env]['vpc_id']}"
        for suffix in SERVICE_ACCOUNTS:
            doc = _policy(iam, f"idis-{env}-{suffix}")
            text = json.dumps(doc)
            assert not any(arn in text for arn in mine[other]), f"{env} {suffix} names {other}'s ARNs"
            assert f"idis-{other}" not in text
            for s in _statements(doc):
                resources, actions = _list(s["Resource"]), _list(s["Action"])
                condition = json.dumps(s.get("Condition", {}))
                if "*" in resources:
                    # Only the describes AWS's own controller policies list on *.
                    assert resources == ["*"] and s["Effect"] == "Allow"
                    assert all(READ_ONLY.match(a) for a in actions), (env, suffix, actions)
                    assert not any(a.split(":")[0] in ("s3", "kms", "secretsmanager") for a in actions)
                    continue
                for r in resources:
                    named = r in mine[env] or r.split("/*")[0] in mine[env] or f"idis-{env}" in r
                    bound = f"idis-{env}" in condition or vpc_arn in condition
                    shield = r == "arn:aws:shield::123456789012:protection/*"
                    # One per account: ELB's service-linked role.
                    slr = r == ("arn:aws:iam::123456789012:role/aws-service-role/elasticloadbalancing.amazonaws.com/"
                                "AWSServiceRoleForElasticLoadBalancing")
                    assert named or bound or shield or slr, (env, suffix, r, s)
                    if shield:
                        # Account-wide: Shield protection ids are AWS's, untagged.
                        assert suffix == "load-balancer-controller"
                        assert actions == ["shield:CreateProtection", "shield:DeleteProtection"]


def test_the_api_role_reads_and_writes_documents_and_only_appends_to_the_audit_trail(platform, aws):
    iam = aws("iam")
    state = platform.states["production"]
    docs, audit = state["documents_bucket_arn"], state["audit_bucket_arn"]
    doc = _policy(iam, "idis-production-api")
    allowed: dict[str, set[str]] = {}
    denied: dict[str, set[str]] = {}
    for s in _statements(doc):
        target = allowed if s["Effect"] == "Allow" else denied
        for r in _list(s["Resource"]):
            target.setdefault(r, set()).update(_list(s["Action"]))
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= allowed[f"{docs}/*"]
    assert "s3:ListBucket" in allowed[docs]
    # The audit trail: put, nothing else; deletes and retention changes denied.
    assert allowed[f"{audit}/*"] == {"s3:PutObject"} and audit not in allowed
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
            "s3:PutObjectRetention"} <= denied[f"{audit}/*"]
    keys = {state["platform_key_arn"], *state["tenant_key_arns"].values()}
    assert {r for r, a in allowed.items() if a & {"kms:Decrypt"}} == keys
    assert all(allowed[k] == {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"} for k in keys)
    secrets = {state[k] for k in ("database_master_secret_arn", "cache_auth_secret_arn", "jwt_secret_arn",
                                  "encryption_key_secret_arn")}
    assert {r for r, a in allowed.items() if "secretsmanager:GetSecretValue" in a} == secrets
    # external-secrets reads the same four secrets, and decrypts only through Secrets Manager.
    es = _statements(_policy(iam, "idis-production-external-secrets"))
    assert {r for s in es if "secretsmanager:GetSecretValue" in _list(s["Action"]) for r in _list(s["Resource"])} == secrets
    [decrypt] = [s for s in es if "kms:Decrypt" in _list(s["Action"])]
    assert _list(decrypt["Resource"]) == [state["platform_key_arn"]]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def test_the_ebs_csi_driver_runs_with_its_role(platform):
    eks = _through_proxy(platform, "eks")  # only the proxy plays EKS add-ons
    for env in ENVS:
        addon = eks.describe_addon(clusterName=f"idis-{env}", addonName="aws-ebs-csi-driver")["addon"]
        assert addon["status"] == "ACTIVE"
        assert addon["serviceAccountRoleArn"] == platform.states[env]["ebs_csi_driver_role_arn"]
        assert json.loads(addon["configurationValues"]) == {"controller": {"k8sTagClusterId": f"idis-{env}"}}
        assert addon["addonVersion"] == "v1.48.0-eksbuild.2"  # the default for 1.31
        assert sorted(eks.list_addons(clusterName=f"idis-{env}")["addons"]) == [
            "aws-ebs-csi-driver", "coredns", "kube-proxy", "metrics-server", "vpc-cni"]


# ---------------------------------------------------------------- cluster access and metrics-server

ADMIN = "arn:aws:iam::123456789012:role/idis-platform-admins"
VIEWER = "arn:aws:iam::123456789012:role/idis-support"


def test_the_cluster_admits_exactly_its_admins_and_viewers(platform, aws):
    """Through the proxy, which plays EKS's access entries and authentication
    mode (moto has neither; the node role's ARN is read from moto's IAM)."""
    eks = _through_proxy(platform, "eks")
    for env, admins, viewers in (("production", [ADMIN], [VIEWER]), ("staging", [], [])):
        name = f"idis-{env}"
        access = eks.describe_cluster(name=name)["cluster"]["accessConfig"]
        assert access == {"authenticationMode": "API_AND_CONFIG_MAP",
                          "bootstrapClusterCreatorAdminPermissions": False}
        nodes = aws("iam").get_role(RoleName=f"{name}-eks-nodes")["Role"]["Arn"]
        entries = eks.list_access_entries(clusterName=name)["accessEntries"]
        # No creator entry: only the lists and the node role EKS adds itself.
        assert sorted(entries) == sorted(admins + viewers + [nodes]), entries
        assert eks.describe_access_entry(clusterName=name, principalArn=nodes)["accessEntry"]["type"] == "EC2_LINUX"
        for principal, policy in [(p, "AmazonEKSClusterAdminPolicy") for p in admins] + \
                                 [(p, "AmazonEKSViewPolicy") for p in viewers]:
            assert eks.describe_access_entry(clusterName=name, principalArn=principal)["accessEntry"]["type"] == "STANDARD"
            held = eks.list_associated_access_policies(clusterName=name, principalArn=principal)["associatedAccessPolicies"]
            assert [(p["policyArn"], p["accessScope"]["type"]) for p in held] == [
                (f"arn:aws:eks::aws:cluster-access-policy/{policy}", "cluster")], held
        enforced = platform.states[env]["cluster"]["enforced"]
        assert enforced["authentication_mode"] == "access entries on (API_AND_CONFIG_MAP)"
        assert enforced["access_entries"] == "only the configured principals, with their policies"
    assert platform.states["production"]["cluster"]["admin_principals"] == [ADMIN]
    assert platform.states["production"]["cluster"]["viewer_principals"] == [VIEWER]


def test_metrics_server_runs_for_the_horizontal_pod_autoscaler(platform):
    eks = _through_proxy(platform, "eks")  # only the proxy plays EKS add-ons
    for env in ENVS:
        addon = eks.describe_addon(clusterName=f"idis-{env}", addonName="metrics-server")["addon"]
        assert addon["status"] == "ACTIVE"
        assert addon["addonVersion"] == "v0.8.0-eksbuild.1"  # the proxy's default for 1.31
        assert "serviceAccountRoleArn" not in addon  # it needs no AWS permission
        assert platform.states[env]["cluster"]["enforced"]["metrics_server"] == "metrics-server active and supported"


# ---------------------------------------------------------------- static assets behind the CDN


def test_the_cdn_serves_the_assets_bucket_through_oac_and_the_api_under_api(platform, aws):
    """production has `cdn = true` and `cdn_origin_domain`. The distribution,
    the web ACL and the bucket policy are read from moto; the origins'
    S3OriginConfig and OriginAccessControlId through the proxy, which
    keeps them as CloudFront does (moto drops them)."""
    state = platform.states["production"]
    cf_moto, cf = aws("cloudfront"), _through_proxy(platform, "cloudfront")
    [summary] = [d for d in cf_moto.list_distributions()["DistributionList"]["Items"] if d["Comment"] == "idis-production"]
    assert state["cdn_domain_name"] == summary["DomainName"]
    config = cf.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]["Items"]}
    bucket = state["cdn_assets_bucket_name"]
    assert bucket == f"idis-production-assets-123456789012-us-east-1"
    assert platform.tf.output_json()["assets_bucket_name"] == bucket
    default = config["DefaultCacheBehavior"]
    assets = origins[default["TargetOriginId"]]
    assert assets["DomainName"] == f"{bucket}.s3.us-east-1.amazonaws.com"
    assert assets["S3OriginConfig"]["OriginAccessIdentity"] == ""
    oac = cf_moto.get_origin_access_control(Id=assets["OriginAccessControlId"])["OriginAccessControl"]
    assert oac["OriginAccessControlConfig"]["Name"] == "idis-production-assets"
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["ResponseHeadersPolicyId"] == "67f7725c-6f97-4210-82d7-5512b31e9d03"  # SecurityHeadersPolicy
    [api] = config["CacheBehaviors"]["Items"]
    assert api["PathPattern"] == "/api/*"
    assert origins[api["TargetOriginId"]]["DomainName"] == "api.production.idis.example.com"
    assert origins[api["TargetOriginId"]]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api["ViewerProtocolPolicy"] == "redirect-to-https"
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert sorted(api["AllowedMethods"]["Items"]) == sorted(["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"])
    assert config["ViewerCertificate"]["CloudFrontDefaultCertificate"] is True  # no aliases, no certificate
    assert config["Logging"]["Enabled"] and config["Logging"]["Bucket"] == \
        "idis-production-cdn-logs-123456789012-us-east-1.s3.amazonaws.com"
    # The CLOUDFRONT-scope web ACL, made in us-east-1.
    acls = {a["ARN"]: a["Name"] for a in aws("wafv2").list_web_acls(Scope="CLOUDFRONT")["WebACLs"]}
    assert acls[config["WebACLId"]] == "idis-production-cdn"
    assert state["cdn_web_acl_arn"] == config["WebACLId"]
    # Only that distribution may read the bucket.
    s3 = aws("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    allows = [st for st in _statements(policy) if st["Effect"] == "Allow"]
    assert allows == [{
        "Sid": "CloudFrontReadsForTheDistribution", "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringEquals": {"AWS:SourceArn": summary["ARN"]}}}], allows
    assert all(_list(st["Principal"]) != ["*"] or st["Effect"] == "Deny" for st in _statements(policy))
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(pab.values()), pab
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    logs = "idis-production-cdn-logs-123456789012-us-east-1"
    assert s3.get_bucket_ownership_controls(Bucket=logs)["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == \
        "BucketOwnerPreferred"  # CloudFront standard logs need ACLs
    assert state["edge"]["enforced"]["assets_bucket"] == "private, encrypted, versioned, read by the distribution only"
    assert state["edge"]["enforced"]["distribution"] == "enabled, HTTPS only, behind its web ACL"
    # staging has no CDN.
    assert platform.states["staging"]["cdn_assets_bucket_name"] is None


def test_refresh_only_right_after_apply_finds_no_drift(platform):
    again = platform.tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("terraform plan -refresh-only -detailed-exitcode")


# ---------------------------------------------------------------- the settings


def _manifests(state: dict) -> dict[str, dict]:
    return {name: yaml.safe_load(text) for name, text in state["kubernetes_manifests"].items()}


def _validate_external_secrets(docs: list[dict]) -> list:
    """Validates with the external-secrets models `make venv` installs."""
    venv = Path(sys.executable).parent.parent
    node, schemas = venv / "bin" / "node", venv / "schemas"
    if not (node.is_file() and (schemas / "node_modules").is_dir()):
        pytest.fail(f"{node} or {schemas}/node_modules is missing: run `make venv`")
    done = subprocess.run([str(node), str(schemas / "validate.mjs")], input=json.dumps(docs),
                          capture_output=True, text=True, timeout=60, cwd=schemas)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_manifests_validate_against_the_kubernetes_and_external_secrets_schemas(platform):
    import kubernetes_validate

    m = _manifests(platform.states["production"])
    assert set(m) == {"config_map", "service_account", "external_secrets_service_account", "secret_store",
                      "external_secret"}
    for name in ("config_map", "service_account", "external_secrets_service_account"):
        # Strict: an unknown or misspelt field fails too.
        kubernetes_validate.validate(m[name], "1.31", strict=True)
    assert _validate_external_secrets([m["secret_store"], m["external_secret"]]) == [None, None]
    # The checks have teeth: a misspelt field and a missing reference fail.
    broken = json.loads(json.dumps(m["config_map"]))
    broken["metadata"]["nmae"] = broken["metadata"].pop("name")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.31", strict=True)
    broken = json.loads(json.dumps(m["external_secret"]))
    del broken["spec"]["data"][0]["remoteRef"]
    assert _validate_external_secrets([broken]) != [None]

    # They fit together: the service accounts carry the roles, the store
    # authenticates as the external-secrets one, the ConfigMap is app_config.
    state = platform.states["production"]
    assert m["service_account"]["metadata"] == {
        "name": "idis-api", "namespace": "idis", "labels": m["service_account"]["metadata"]["labels"],
        "annotations": {"eks.amazonaws.com/role-arn": state["api_role_arn"]}}
    assert m["external_secrets_service_account"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": state["external_secrets_role_arn"]}
    auth = m["secret_store"]["spec"]["provider"]["aws"]
    assert (auth["service"], auth["region"]) == ("SecretsManager", "us-east-1")
    assert auth["auth"]["jwt"]["serviceAccountRef"]["name"] == m["external_secrets_service_account"]["metadata"]["name"]
    assert m["external_secret"]["spec"]["secretStoreRef"] == {"kind": "SecretStore",
                                                             "name": m["secret_store"]["metadata"]["name"]}
    assert m["config_map"]["data"] == state["app_config"]


# Go text/template, as external-secrets' v2 template engine runs it, for
# the constructs the manifests use: `{{ .key }}` and `{{ .key | urlquery }}`.
# Anything else is refused, so a template this cannot render fails the test.
ACTION = re.compile(r"\{\{(.*?)\}\}")


def go_urlquery(value: str) -> str:
    """Go's urlquery (url.QueryEscape): letters, digits and -_.~ stay,
    space is +, every other byte %XX."""
    return urllib.parse.quote_plus(value, safe="")


def render(template: str, data: dict[str, str]) -> str:
    def action(match: re.Match) -> str:
        pipeline = [p.strip() for p in match.group(1).split("|")]
        field = re.fullmatch(r"\.([A-Za-z_][A-Za-z0-9_]*)", pipeline[0])
        assert field, f"unsupported template action {match.group(0)!r}"
        value = data[field.group(1)]  # a missing key is an error, as in external-secrets
        for fn in pipeline[1:]:
            assert fn == "urlquery", f"unsupported template function {fn!r}"
            value = go_urlquery(value)
        return value

    return ACTION.sub(action, template)


def resolve(external_secret: dict, sm) -> dict[str, str]:
    """What external-secrets fetches for each `data` entry: the secret's
    string, or one property of it when it is JSON."""
    data = {}
    for entry in external_secret["spec"]["data"]:
        ref = entry["remoteRef"]
        value = sm.get_secret_value(SecretId=ref["key"])["SecretString"]
        data[entry["secretKey"]] = json.loads(value)[ref["property"]] if "property" in ref else value
    return data


def test_the_external_secret_renders_the_four_required_settings_from_the_real_secrets(platform, aws):
    sm, rds, ec = aws("secretsmanager"), aws("rds"), aws("elasticache")
    for env in ENVS:
        state = platform.states[env]
        es = _manifests(state)["external_secret"]
        data = resolve(es, sm)
        rendered = {k: render(v, data) for k, v in es["spec"]["target"]["template"]["data"].items()}
        assert set(rendered) == {"IDIS_DATABASE_URL", "IDIS_REDIS_URL", "IDIS_JWT_SECRET", "IDIS_ENCRYPTION_KEY"}

        db = rds.describe_db_instances(DBInstanceIdentifier=f"idis-{env}-db")["DBInstances"][0]
        master = json.loads(sm.get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])["SecretString"])
        url = urllib.parse.urlsplit(rendered["IDIS_DATABASE_URL"])
        assert url.scheme == "postgresql"
        assert (url.hostname, url.port) == (db["Endpoint"]["Address"], 5432)
        assert urllib.parse.unquote(url.username) == master["username"] == db["MasterUsername"]
        assert urllib.parse.unquote(url.password) == master["password"]
        assert url.path == f"/{db['DBName']}" and urllib.parse.parse_qs(url.query) == {"sslmode": ["require"]}

        group = ec.describe_replication_groups(ReplicationGroupId=f"idis-{env}-cache")["ReplicationGroups"][0]
        token = sm.get_secret_value(SecretId=f"idis/{env}/cache-auth-token")["SecretString"]
        redis = urllib.parse.urlsplit(rendered["IDIS_REDIS_URL"])
        assert redis.scheme == "rediss"
        assert (redis.hostname, redis.port) == (group["NodeGroups"][0]["PrimaryEndpoint"]["Address"], 6379)
        assert redis.username == "" and urllib.parse.unquote(redis.password) == token

        jwt = json.loads(rendered["IDIS_JWT_SECRET"])
        assert set(jwt) == {"kid", "secret"} and len(jwt["secret"]) == 64 and jwt["kid"]
        assert rendered["IDIS_JWT_SECRET"] == sm.get_secret_value(SecretId=state["jwt_secret_arn"])["SecretString"]
        import base64
        assert len(base64.b64decode(rendered["IDIS_ENCRYPTION_KEY"], validate=True)) == 32
        for setting in rendered:
            assert state["secret_refs"][setting] in [e["remoteRef"]["key"] for e in es["spec"]["data"]]

    # A rotated password with the characters that break a URL (RDS allows
    # any printable ASCII but / ' " @ and space; those two are here too)
    # still makes a URL that parses back to it, percent-decoded as libpq
    # does: urlquery escapes every one of them.
    es = _manifests(platform.states["production"])["external_secret"]
    nasty = "p@ss:w/rd?#[]%+&=!$()*,;~`^{}|<>\\"
    url = urllib.parse.urlsplit(render(es["spec"]["target"]["template"]["data"]["IDIS_DATABASE_URL"],
                                       {"db_username": "idis_admin", "db_password": nasty}))
    assert urllib.parse.unquote(url.password) == nasty
    assert url.hostname == platform.states["production"]["database_endpoint"]


def test_no_generated_or_managed_secret_reaches_state_plan_or_trace(platform, aws):
    sm = aws("secretsmanager")
    values = []
    for env in ENVS:
        state = platform.states[env]
        for arn in ("database_master_secret_arn", "cache_auth_secret_arn", "jwt_secret_arn",
                    "encryption_key_secret_arn"):
            secret = sm.get_secret_value(SecretId=state[arn])["SecretString"]
            values.append(secret)
            try:
                values.extend(v for v in json.loads(secret).values() if isinstance(v, str) and len(v) >= 12)
            except (json.JSONDecodeError, AttributeError):
                pass
    assert len(values) >= 8
    tf = platform.tf
    tf.run("plan", "-input=false", "-out=plan.tfplan")
    plan_json = tf.run("show", "-json", "plan.tfplan").stdout
    tfstate = (tf.workdir / "terraform.tfstate").read_text()
    assert "kubernetes_manifests" in tfstate and "IDIS_JWT_SECRET" in plan_json
    for value in values:
        assert value not in tfstate, "a secret is in terraform.tfstate"
        assert value not in plan_json, "a secret is in the plan JSON"
        assert value not in platform.trace, "a secret is in TF_LOG=trace output"


def test_staging_and_production_share_no_key_secret_role_or_bucket(platform, aws):
    iam, kms, sm, s3 = aws("iam"), aws("kms"), aws("secretsmanager"), aws("s3")
    owned = {}
    for env in ENVS:
        state = platform.states[env]
        keys = {kms.describe_key(KeyId=a["TargetKeyId"])["KeyMetadata"]["Arn"]
                for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(f"alias/idis/{env}/")}
        secrets = {s["ARN"] for s in sm.list_secrets(Filters=[{"Key": "tag-value", "Values": [env]}])["SecretList"]
                   if {"Key": "idis:environment", "Value": env} in s.get("Tags", [])}
        secrets |= {state["database_master_secret_arn"]}
        roles = {r["Arn"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"idis-{env}-")}
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"idis-{env}-")}
        providers = {state["oidc_provider_arn"]}
        # audit, documents and access logs; production also the CDN's
        # assets and logs. Roles: the cluster's two, five for service
        # accounts, Enhanced Monitoring's and the flow log's.
        assert len(keys) >= 1 and len(secrets) == 4 and len(roles) == 9, (env, secrets, roles)
        assert len(buckets) == (5 if env == "production" else 3), (env, buckets)
        owned[env] = {"keys": keys, "secrets": secrets, "roles": roles, "buckets": buckets, "oidc": providers}
    for kind in owned["production"]:
        assert owned["production"][kind].isdisjoint(owned["staging"][kind]), kind
    # Each environment's secrets are encrypted with its own platform key.
    for env in ENVS:
        for arn in owned[env]["secrets"]:
            key = sm.describe_secret(SecretId=arn)["KmsKeyId"]
            assert key in (platform.states[env]["platform_key_arn"],) or key.endswith(
                platform.states[env]["platform_key_arn"].split("/")[-1]), (env, arn, key)
