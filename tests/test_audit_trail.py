"""The audit trail for the data (issue 16, part 4): S3 server access logs of
the documents and audit buckets in a log bucket of their own, and a
CloudTrail trail of both buckets' data events delivered to the WORM audit
bucket.

examples/production applied through the proxy (which refuses a trail whose
bucket or key policy would not let CloudTrail deliver, as AWS does); AWS is
checked with boto3 directly against moto, never through the provider's own
reading.
"""

from __future__ import annotations

import json

from conftest import REPO_ROOT, REQUIRED_PROVIDERS
from test_environment import ENV, PREFIX, state_of


def _statements(policy: str) -> list[dict]:
    listed = json.loads(policy)["Statement"]
    return listed if isinstance(listed, list) else [listed]


def _list(v) -> list:
    return v if isinstance(v, list) else [v]


def names(aws) -> dict[str, str]:
    account = aws("sts").get_caller_identity()["Account"]
    return {
        "account": account,
        "logs": f"{PREFIX}-access-logs-{account}-us-east-1",
        "documents": f"{PREFIX}-documents-{account}-us-east-1",
        "audit": f"{PREFIX}-audit-{account}-us-east-1",
        "trail": f"{PREFIX}-data-events",
        "trail_arn": f"arn:aws:cloudtrail:us-east-1:{account}:trail/{PREFIX}-data-events",
    }


def platform_key_arn(aws) -> str:
    return aws("kms").describe_key(KeyId=f"alias/idis/{ENV}/platform")["KeyMetadata"]["Arn"]


def data_event_buckets(aws, trail: str) -> set[str]:
    """The buckets whose object-level (data) events the trail logs, parsed
    from its advanced event selectors."""
    selectors = aws("cloudtrail").get_event_selectors(TrailName=trail)
    assert not selectors.get("EventSelectors"), selectors
    buckets = set()
    for selector in selectors["AdvancedEventSelectors"]:
        fields = {f["Field"]: f for f in selector["FieldSelectors"]}
        if fields.get("eventCategory", {}).get("Equals") != ["Data"]:
            continue
        assert fields["resources.type"]["Equals"] == ["AWS::S3::Object"]
        for prefix in fields["resources.ARN"]["StartsWith"]:
            assert prefix.startswith("arn:aws:s3:::") and prefix.endswith("/"), prefix
            buckets.add(prefix.removeprefix("arn:aws:s3:::").removesuffix("/"))
    return buckets


def logs_management_events(aws, trail: str) -> bool:
    selectors = aws("cloudtrail").get_event_selectors(TrailName=trail)["AdvancedEventSelectors"]
    return any([f["Field"] for f in s["FieldSelectors"]] == ["eventCategory"]
               and s["FieldSelectors"][0]["Equals"] == ["Management"] for s in selectors)


def test_access_logs_and_the_trail_are_made_read_back_and_repaired(production, aws, aws_proxy):
    production.apply()
    n = names(aws)
    s3, ct = aws("s3"), aws("cloudtrail")
    state = state_of(production)
    assert state["access_log_bucket_name"] == n["logs"]
    assert state["access_log_bucket_arn"] == f"arn:aws:s3:::{n['logs']}"
    assert state["audit_trail_arn"] == n["trail_arn"]

    # The log bucket: private, ACLs off, SSE-S3, logs expire after 365 days.
    pab = s3.get_public_access_block(Bucket=n["logs"])["PublicAccessBlockConfiguration"]
    assert all(pab[k] for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                "RestrictPublicBuckets")), pab
    ownership = s3.get_bucket_ownership_controls(Bucket=n["logs"])["OwnershipControls"]["Rules"]
    assert [r["ObjectOwnership"] for r in ownership] == ["BucketOwnerEnforced"]
    sse = s3.get_bucket_encryption(Bucket=n["logs"])["ServerSideEncryptionConfiguration"]["Rules"]
    assert [r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in sse] == ["AES256"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=n["logs"])["Rules"]
    ours = [r for r in rules if r["ID"] == "idis-expire-access-logs"]
    assert len(ours) == 1 and ours[0]["Status"] == "Enabled" and ours[0]["Expiration"]["Days"] == 365

    # Its policy: S3 log delivery per source bucket (SourceArn and
    # SourceAccount), TLS required.
    policy = _statements(s3.get_bucket_policy(Bucket=n["logs"])["Policy"])
    delivery = {}
    for st in policy:
        if st.get("Principal", {}) == {"Service": "logging.s3.amazonaws.com"}:
            assert st["Effect"] == "Allow" and _list(st["Action"]) == ["s3:PutObject"]
            assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == n["account"]
            delivery[st["Condition"]["ArnLike"]["aws:SourceArn"]] = st["Resource"]
    assert delivery == {
        f"arn:aws:s3:::{n['documents']}": f"arn:aws:s3:::{n['logs']}/documents/*",
        f"arn:aws:s3:::{n['audit']}": f"arn:aws:s3:::{n['logs']}/audit/*",
    }
    tls = [st for st in policy if st["Effect"] == "Deny"
           and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert len(tls) == 1 and st_resources(tls[0]) == {f"arn:aws:s3:::{n['logs']}", f"arn:aws:s3:::{n['logs']}/*"}

    # Both buckets log into it, each under its own prefix, and (moto
    # delivers server access logs) a request to each leaves a log there.
    for source, prefix in ((n["documents"], "documents/"), (n["audit"], "audit/")):
        enabled = s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]
        assert (enabled["TargetBucket"], enabled["TargetPrefix"]) == (n["logs"], prefix)
        s3.get_bucket_versioning(Bucket=source)
        logged = s3.list_objects_v2(Bucket=n["logs"], Prefix=prefix).get("Contents", [])
        assert logged, f"no access log of {source} under {prefix}"

    # The trail: to the audit bucket under cloudtrail/, the platform key,
    # log file validation, single region, logging; data events of both
    # buckets and the management events.
    trail = ct.get_trail(Name=n["trail"])["Trail"]
    assert trail["TrailARN"] == n["trail_arn"]
    assert (trail["S3BucketName"], trail["S3KeyPrefix"]) == (n["audit"], "cloudtrail")
    assert trail["KmsKeyId"] == platform_key_arn(aws)
    assert trail["LogFileValidationEnabled"] is True and trail["IsMultiRegionTrail"] is False
    assert ct.get_trail_status(Name=n["trail"])["IsLogging"] is True
    assert data_event_buckets(aws, n["trail"]) == {n["documents"], n["audit"]}
    assert logs_management_events(aws, n["trail"])
    tags = {t["Key"]: t["Value"] for t in
            ct.list_tags(ResourceIdList=[n["trail_arn"]])["ResourceTagList"][0]["TagsList"]}
    assert (tags["idis:environment"], tags["idis:component"]) == (ENV, "audit_trail"), tags

    # The audit bucket lets CloudTrail deliver this trail alone, and the
    # platform key lets CloudTrail encrypt for it.
    audit_policy = _statements(s3.get_bucket_policy(Bucket=n["audit"])["Policy"])
    cloudtrail = [st for st in audit_policy if st.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}]
    by_action = {_list(st["Action"])[0]: st for st in cloudtrail}
    assert set(by_action) == {"s3:GetBucketAcl", "s3:PutObject"}
    assert by_action["s3:PutObject"]["Resource"] == f"arn:aws:s3:::{n['audit']}/cloudtrail/AWSLogs/{n['account']}/*"
    assert all(st["Condition"]["StringEquals"]["aws:SourceArn"] == n["trail_arn"] for st in cloudtrail)
    key_policy = _statements(aws("kms").get_key_policy(KeyId=platform_key_arn(aws), PolicyName="default")["Policy"])
    encrypt = [st for st in key_policy if st.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}
               and "kms:GenerateDataKey*" in _list(st["Action"])]
    assert len(encrypt) == 1 and encrypt[0]["Condition"]["StringEquals"]["aws:SourceArn"] == n["trail_arn"]

    clean = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan -refresh-only right after apply")

    # Out of band: access logging of the documents bucket turned off, the
    # trail stopped, its data-event selector dropped.
    s3.put_bucket_logging(Bucket=n["documents"], BucketLoggingStatus={})
    ct.stop_logging(Name=n["trail"])
    ct.put_event_selectors(TrailName=n["trail"], AdvancedEventSelectors=[
        {"Name": "management only", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}])
    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("plan -refresh-only after the out-of-band changes")
    shown = " ".join((drift.stdout + drift.stderr).split())
    assert f"access logging of the documents bucket {n['documents']} is off" in shown, drift.stdout
    assert f"the trail {n['trail']} is not logging" in shown, drift.stdout
    assert "selects other events" in shown, drift.stdout

    production.apply()
    enabled = s3.get_bucket_logging(Bucket=n["documents"])["LoggingEnabled"]
    assert (enabled["TargetBucket"], enabled["TargetPrefix"]) == (n["logs"], "documents/")
    assert ct.get_trail_status(Name=n["trail"])["IsLogging"] is True
    assert data_event_buckets(aws, n["trail"]) == {n["documents"], n["audit"]}
    again = production.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("plan after the repair")

    # The trail deleted out of band is made again.
    ct.delete_trail(Name=n["trail"])
    gone = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert gone.returncode == 2 and f"the trail {n['trail']} is missing" in " ".join(gone.stdout.split())
    production.apply()
    assert ct.get_trail_status(Name=n["trail"])["IsLogging"] is True
    assert data_event_buckets(aws, n["trail"]) == {n["documents"], n["audit"]}

    # Destroy (protection off first): the trail goes, the empty log bucket
    # goes, the kept audit and documents buckets no longer log into it.
    production.apply("-var", "deletion_protection=false")
    destroyed = production.destroy("-var", "deletion_protection=false")
    assert n["trail"] not in {t["Name"] for t in ct.list_trails()["Trails"]}
    for source in (n["audit"], n["documents"]):
        assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)
    # The log bucket holds the logs moto delivered: kept, with a warning.
    assert n["logs"] in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert f"the access-log bucket {n['logs']} holds access logs and was kept" in " ".join(
        (destroyed.stdout + destroyed.stderr).split())


def st_resources(st: dict) -> set[str]:
    return set(_list(st["Resource"]))


def test_a_trail_the_audit_bucket_does_not_admit_is_refused_as_aws_does(production, aws, aws_proxy):
    """The proxy plays AWS: without the audit bucket's CloudTrail statements
    CreateTrail fails (InsufficientS3BucketPolicyException, shown alone in
    test_awsproxy_aws.py). With the trail deleted and the statements
    removed out of band, the policy shows as drift of the audit bucket, and
    one apply makes the trail again: storage puts the statements back
    before the trail is created."""
    production.apply()
    n = names(aws)
    s3, ct = aws("s3"), aws("cloudtrail")
    ct.delete_trail(Name=n["trail"])
    policy = json.loads(s3.get_bucket_policy(Bucket=n["audit"])["Policy"])
    policy["Statement"] = [st for st in _list(policy["Statement"])
                           if st.get("Principal") != {"Service": "cloudtrail.amazonaws.com"}]
    s3.put_bucket_policy(Bucket=n["audit"], Policy=json.dumps(policy))
    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2
    assert f"CloudTrail may not deliver the trail {n['trail']}" in " ".join(drift.stdout.split())
    # Storage repairs the policy before the trail is made: one apply.
    production.apply()
    assert ct.get_trail_status(Name=n["trail"])["IsLogging"] is True


def test_bad_access_log_expiration_is_refused_at_plan(terraform):
    terraform.write(REQUIRED_PROVIDERS + """
provider "idis" {}

resource "idis_environment" "this" {
  name = "production"
  audit_trail {
    log_expiration_days = 0
  }
}
""")
    terraform.init()
    result = terraform.plan(check=False)
    assert result.returncode == 1, result.describe("terraform plan")
    flat = " ".join(result.stderr.split())
    assert "audit_trail.log_expiration_days = 0" in flat, result.describe("terraform plan")
    assert "36500" in flat, flat
    assert "plugin crashed" not in flat.lower()


def test_bad_access_log_expiration_is_refused_by_the_module(terraform):
    (terraform.workdir / "modules").symlink_to(REPO_ROOT / "modules")
    terraform.write(REQUIRED_PROVIDERS + """
provider "idis" {}

module "idis" {
  source      = "./modules/idis"
  environment = "production"
  region      = "us-east-1"
  vpc_cidr    = "10.0.0.0/16"

  access_log_expiration_days = 40000
}
""")
    terraform.init()
    result = terraform.plan(check=False)
    assert result.returncode == 1, result.describe("terraform plan")
    flat = " ".join(result.stderr.split())
    assert "access_log_expiration_days" in flat and "1 to 36500" in flat, flat
