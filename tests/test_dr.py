"""A DR site in a second region (issue 17 parts 1 to 3).

examples/production with `dr_region = "us-west-2"` given to the module,
applied through the proxy. What the DR region holds is checked with boto3
against moto directly in us-west-2 (keys, VPC, the cross-Region replica,
the bucket copies with Object Lock, the replication configuration on the
sources), never through the provider's own reading.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse

import pytest

from test_environment import ENV, PREFIX, state_of
from test_monitoring import monitored, set_inputs

DR = "us-west-2"
DR_INPUTS = f'  dr_region = "{DR}"\n'
UNPROTECTED = ("-var", "deletion_protection=false")


def dr_site(tmp_path, terraform_rc, aws_proxy, moto, inputs: str = DR_INPUTS):
    moto.reset()
    return monitored(tmp_path, terraform_rc, aws_proxy, inputs)


def refresh_exit(tf) -> int:
    return refresh(tf).returncode


def refresh(tf):
    return tf.run("plan", "-refresh-only", "-detailed-exitcode", "-no-color", "-input=false", *UNPROTECTED,
                  check=False)


def assert_quiet(tf) -> None:
    result = refresh(tf)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def test_a_dr_site_is_built_in_the_second_region_and_read_back(tmp_path, terraform_rc, aws_proxy, moto, aws):
    tf = dr_site(tmp_path, terraform_rc, aws_proxy, moto)
    tf.apply(*UNPROTECTED, timeout=900)
    state = state_of(tf)
    account = aws("sts").get_caller_identity()["Account"]

    # Keys: a multi-Region replica of every key, same key id.
    kms, kms_dr = aws("kms"), aws("kms", DR)
    for name in ("platform", "acme", "globex"):
        primary = kms.describe_key(KeyId=f"alias/idis/{ENV}/{name}")["KeyMetadata"]
        assert primary["MultiRegion"], primary
        replica = kms_dr.describe_key(KeyId=f"alias/idis/{ENV}/{name}")["KeyMetadata"]
        assert replica["KeyId"] == primary["KeyId"] and replica["Arn"].split(":")[3] == DR, replica
        assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA", replica
        assert replica["MultiRegionConfiguration"]["PrimaryKey"]["Arn"] == primary["Arn"], replica
    dr_key = kms_dr.describe_key(KeyId=f"alias/idis/{ENV}/platform")["KeyMetadata"]["Arn"]
    assert state["dr_platform_key_arn"] == dr_key

    # The network in us-west-2, three zones.
    ec2 = aws("ec2", DR)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"]
    assert [v["VpcId"] for v in vpcs] == [state["dr_vpc_id"]], vpcs
    assert vpcs[0]["CidrBlock"] == "10.1.0.0/16"
    zones = {s["AvailabilityZone"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [state["dr_vpc_id"]]}])["Subnets"]}
    assert zones == {f"{DR}a", f"{DR}b", f"{DR}c"}, zones
    # Pilot light: no NAT gateway, no way out of the private subnets.
    nats = [n for n in ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [state["dr_vpc_id"]]}])["NatGateways"]
            if n["State"] not in ("deleted", "deleting")]
    assert nats == [], nats
    for table in ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-private-*"]}])["RouteTables"]:
        assert not [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"], table

    # The cross-Region read replica: its source is the primary's ARN, its key the replica.
    primary_db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    replica = aws("rds", DR).describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == primary_db["DBInstanceArn"], replica
    assert replica["KmsKeyId"] == dr_key, replica
    assert state["dr_database_arn"] == replica["DBInstanceArn"]

    # The copies: Object Lock on the audit copy with the source's COMPLIANCE retention.
    s3 = aws("s3")
    audit_copy = f"{PREFIX}-audit-{account}-{DR}"
    docs_copy = f"{PREFIX}-documents-{account}-{DR}"
    assert state["dr_audit_bucket_name"] == audit_copy and state["dr_documents_bucket_name"] == docs_copy
    lock = s3.get_object_lock_configuration(Bucket=audit_copy)["ObjectLockConfiguration"]
    source_lock = s3.get_object_lock_configuration(Bucket=state["audit_bucket_name"])["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled" and lock["Rule"] == source_lock["Rule"], lock
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    for copy in (audit_copy, docs_copy):
        assert s3.get_bucket_versioning(Bucket=copy)["Status"] == "Enabled"
        assert s3.get_bucket_location(Bucket=copy)["LocationConstraint"] == DR
        sse = s3.get_bucket_encryption(Bucket=copy)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert sse["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == dr_key, sse

    # Replication on the sources to the copies, with the replica key.
    role_arn = aws("iam").get_role(RoleName=f"{PREFIX}-replication")["Role"]["Arn"]
    for source, copy in ((state["audit_bucket_name"], audit_copy), (state["documents_bucket_name"], docs_copy)):
        config = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]
        assert config["Role"] == role_arn, config
        [rule] = [r for r in config["Rules"] if r["ID"] == "idis-dr"]
        assert rule["Status"] == "Enabled" and rule["Destination"]["Bucket"] == f"arn:aws:s3:::{copy}", rule
        assert rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"] == dr_key, rule
        assert rule["Destination"]["Metrics"]["Status"] == "Enabled", rule
    policy = aws("iam").get_role_policy(RoleName=f"{PREFIX}-replication", PolicyName="idis-replication")["PolicyDocument"]
    policy = json.loads(urllib.parse.unquote(policy)) if isinstance(policy, str) else policy
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"s3:ReplicateObject", "s3:GetObjectRetention", "kms:Decrypt", "kms:Encrypt"} <= actions, actions

    # The application's secrets have replicas there holding the primary's
    # values (data encrypted with IDIS_ENCRYPTION_KEY is readable in the DR
    # region only with it). moto reports its default key for every replica;
    # the proxy reports the key the request named, as AWS does, so that one
    # fact is asked of the proxy.
    import boto3
    sm, sm_dr = aws("secretsmanager"), aws("secretsmanager", DR)
    proxied_sm = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "secretsmanager", region_name="us-east-1", endpoint_url=aws_proxy.endpoint)
    secrets = {f"idis/{ENV}/jwt-secret": "dr_jwt_secret_arn",
               f"idis/{ENV}/encryption-key": "dr_encryption_key_secret_arn"}
    for name, output in secrets.items():
        there = sm_dr.describe_secret(SecretId=name)
        assert there["PrimaryRegion"] == "us-east-1" and there["ARN"] == state[output], (there, state[output])
        assert sm_dr.get_secret_value(SecretId=name)["SecretString"] == sm.get_secret_value(SecretId=name)["SecretString"]
        [status] = proxied_sm.describe_secret(SecretId=name)["ReplicationStatus"]
        assert status["Region"] == DR and status["KmsKeyId"] == dr_key, status

    # The RPO alarm in the DR region at the default target.
    [alarm] = aws("cloudwatch", DR).describe_alarms(AlarmNames=[f"{PREFIX}-dr-replica-lag"])["MetricAlarms"]
    assert alarm["MetricName"] == "ReplicaLag" and alarm["Threshold"] == 300.0, alarm
    assert alarm["AlarmActions"] == [state["dr_alarm_topic_arn"]], alarm
    assert state["dr"]["enforced"] == {g: state["dr"]["enforced"][g] for g in state["dr"]["enforced"]}
    assert all(v != "" for v in state["dr"]["enforced"].values())
    assert_quiet(tf)

    # One change out of band in the DR region is drift, and apply repairs it.
    s3.put_bucket_versioning(Bucket=docs_copy, VersioningConfiguration={"Status": "Suspended"})
    assert refresh_exit(tf) == 2
    plan = tf.run("plan", "-refresh-only", "-no-color", "-input=false", *UNPROTECTED).stdout
    assert "copies" in plan and "versioning" in plan.lower(), plan
    tf.apply(*UNPROTECTED, timeout=600)
    assert s3.get_bucket_versioning(Bucket=docs_copy)["Status"] == "Enabled"
    assert_quiet(tf)

    # The RPO alarm told to ignore missing data is drift too (it would stay
    # quiet while replication is stopped), and apply puts it back.
    cw = aws("cloudwatch", DR)
    changed = {k: alarm[k] for k in ("AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic", "Period",
                                     "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
                                     "AlarmActions", "OKActions")}
    cw.put_metric_alarm(**changed, TreatMissingData="notBreaching")
    plan = refresh(tf)
    assert plan.returncode == 2 and "rpo_alarm" in plan.stdout + plan.stderr, plan.stdout
    tf.apply(*UNPROTECTED, timeout=600)
    [alarm] = cw.describe_alarms(AlarmNames=[f"{PREFIX}-dr-replica-lag"])["MetricAlarms"]
    assert alarm["TreatMissingData"] == "breaching", alarm
    assert_quiet(tf)

    # The replica resized out of band (and opened to the world) is drift
    # under `database`, and apply puts back the primary's class.
    rds_dr = aws("rds", DR)
    rds_dr.modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", DBInstanceClass="db.t4g.micro",
                              PubliclyAccessible=True, ApplyImmediately=True)
    plan = refresh(tf)
    said = " ".join(plan.stdout.split())
    assert plan.returncode == 2 and "db.t4g.micro" in said and "publicly accessible" in said, plan.stdout[-4000:]
    tf.apply(*UNPROTECTED, timeout=600)
    replica = rds_dr.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert replica["DBInstanceClass"] == primary_db["DBInstanceClass"] and not replica["PubliclyAccessible"], replica
    assert_quiet(tf)

    # So is its topic encrypted with AWS's own SNS key instead of the
    # platform key's replica.
    sns = aws("sns", DR)
    topic = state_of(tf)["dr_alarm_topic_arn"]
    replica = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    assert replica == dr_key, replica
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns")
    plan = refresh(tf)
    assert plan.returncode == 2 and "alias/aws/sns" in " ".join(plan.stdout.split()), plan.stdout
    tf.apply(*UNPROTECTED, timeout=600)
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"] == replica
    assert_quiet(tf)

    # A secret's replica removed out of band is drift, and apply makes it
    # again from the primary.
    jwt = f"idis/{ENV}/jwt-secret"
    sm.remove_regions_from_replication(SecretId=jwt, RemoveReplicaRegions=[DR])
    plan = refresh(tf)
    said = " ".join(plan.stdout.split())
    assert plan.returncode == 2 and f"secret {jwt} (IDIS_JWT_SECRET) has no replica in {DR}" in said, plan.stdout[-4000:]
    tf.apply(*UNPROTECTED, timeout=600)
    assert sm_dr.describe_secret(SecretId=jwt)["PrimaryRegion"] == "us-east-1"
    assert sm_dr.get_secret_value(SecretId=jwt)["SecretString"] == sm.get_secret_value(SecretId=jwt)["SecretString"]
    assert_quiet(tf)

    # Removing dr tears the DR site down and keeps the copies.
    set_inputs(tf, "")
    tf.apply(*UNPROTECTED, timeout=600)
    assert not ec2.describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"]
    assert not [d for d in aws("rds", DR).describe_db_instances()["DBInstances"]]
    for source in (state["audit_bucket_name"], state["documents_bucket_name"]):
        try:
            rules = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"]
        except s3.exceptions.ClientError:
            rules = []
        assert not [r for r in rules if r["ID"] == "idis-dr"], rules
    for copy in (audit_copy, docs_copy):
        s3.head_bucket(Bucket=copy)
    for name in ("platform", "acme", "globex"):
        arn = state["dr_platform_key_arn"].rsplit("/", 1)[0] + "/" + kms.describe_key(
            KeyId=f"alias/idis/{ENV}/{name}")["KeyMetadata"]["KeyId"]
        assert kms_dr.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    # The secrets' replicas go; the primaries stay.
    for name in secrets:
        assert sm.describe_secret(SecretId=name).get("ReplicationStatus", []) == []
    assert [s["Name"] for s in sm_dr.list_secrets()["SecretList"] if s["Name"].startswith(f"idis/{ENV}/")] == []
    after = state_of(tf)
    assert after["dr"]["region"] is None and after["dr_vpc_id"] is None and after["dr_jwt_secret_arn"] is None
    assert_quiet(tf)


def dr_sweep(aws, aws_proxy) -> tuple[dict[str, list[str]], list[str]]:
    """What the tagging API still finds for the environment in the DR
    region after a destroy, sorted as the primary region's sweep does."""
    from test_environment import sweep_after_destroy
    account = aws("sts").get_caller_identity()["Account"]
    kept, leftovers = sweep_after_destroy(aws, aws_proxy, f"{PREFIX}-audit-{account}-{DR}", region=DR)
    return kept, leftovers


def test_promotion_makes_the_dr_site_serve_and_destroy_clears_both_regions(
        tmp_path, terraform_rc, aws_proxy, moto, aws):
    from test_environment import sweep_after_destroy
    tf = dr_site(tmp_path, terraform_rc, aws_proxy, moto)
    tf.apply(*UNPROTECTED, timeout=900)
    before = state_of(tf)
    assert before["app_config"]["IDIS_DATABASE_HOST"] == before["database_endpoint"]
    WAF_ANNOTATION = "alb.ingress.kubernetes.io/wafv2-acl-arn"
    assert before["ingress_annotations"][WAF_ANNOTATION] == before["web_acl_arn"] is not None
    assert before["dr_web_acl_arn"] is None
    assert aws("wafv2", DR).list_web_acls(Scope="REGIONAL")["WebACLs"] == []  # pilot light: none yet

    set_inputs(tf, DR_INPUTS + "  dr_promote = true\n")
    plan = tf.run("plan", "-no-color", "-input=false", *UNPROTECTED).stdout
    assert "Promoting the DR site (one way)" in plan, plan
    promotes = aws_proxy.counters.by_action.get("PromoteReadReplica", 0)
    tf.apply(*UNPROTECTED, timeout=900)
    assert aws_proxy.counters.by_action.get("PromoteReadReplica", 0) == promotes + 1

    db = aws("rds", DR).describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    # moto 5.2.5 keeps a promoted replica's link to its source; the proxy
    # plays RDS there (awsproxy._without_promoted_links), so that one fact
    # is asked of the proxy.
    import boto3
    proxied = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "rds", region_name=DR, endpoint_url=aws_proxy.endpoint)
    standalone = proxied.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in standalone, standalone
    assert db["MultiAZ"] and db["BackupRetentionPeriod"] == 30, db
    ec2 = aws("ec2", DR)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"][0]["VpcId"]
    nats = [n for n in ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]
            if n["State"] == "available"]
    assert len({n["SubnetId"] for n in nats}) == 3, nats  # one per zone, as the primary
    for table in ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-private-*"]}])["RouteTables"]:
        assert [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("NatGatewayId")], table
    groups = aws("elasticache", DR).describe_replication_groups()["ReplicationGroups"]
    assert [g["ReplicationGroupId"] for g in groups] == [f"{PREFIX}-cache"], groups

    # The EKS cluster and its node group in the DR region, in the DR
    # network's private subnets, secrets encrypted with the platform key's
    # replica, running as the primary's cluster does (IAM is global).
    eks, primary_eks = aws("eks", DR), aws("eks", "us-east-1")
    cluster = eks.describe_cluster(name=PREFIX)["cluster"]
    primary_cluster = primary_eks.describe_cluster(name=PREFIX)["cluster"]
    dr_subnets = {s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]}
    assert set(cluster["resourcesVpcConfig"]["subnetIds"]) <= dr_subnets, cluster["resourcesVpcConfig"]
    assert cluster["roleArn"] == primary_cluster["roleArn"], (cluster["roleArn"], primary_cluster["roleArn"])
    dr_platform_key = aws("kms", DR).describe_key(KeyId=f"alias/idis/{ENV}/platform")["KeyMetadata"]["Arn"]
    assert [c["provider"]["keyArn"] for c in cluster["encryptionConfig"]] == [dr_platform_key], cluster
    nodes = eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    primary_nodes = primary_eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    assert set(nodes["subnets"]) <= dr_subnets and nodes["nodeRole"] == primary_nodes["nodeRole"], nodes
    assert nodes["scalingConfig"] == primary_nodes["scalingConfig"], (nodes["scalingConfig"], primary_nodes)

    # Their log groups, made before their writers as the primary's are:
    # encrypted with the replica key, keeping logs as long.
    def log_groups(region):
        found = aws("logs", region).describe_log_groups(logGroupNamePrefix="/aws/")["logGroups"]
        return {g["logGroupName"]: g for g in found}
    dr_groups, primary_groups = log_groups(DR), log_groups("us-east-1")
    for name in (f"/aws/eks/{PREFIX}/cluster", f"/aws/rds/instance/{PREFIX}-db/postgresql",
                 f"/aws/rds/instance/{PREFIX}-db/upgrade", f"/aws/elasticache/{PREFIX}-cache/slow-log",
                 f"/aws/elasticache/{PREFIX}-cache/engine-log"):
        assert dr_groups[name].get("kmsKeyId") == dr_platform_key, dr_groups.get(name)
        assert dr_groups[name].get("retentionInDays") == primary_groups[name]["retentionInDays"], dr_groups[name]

    after = state_of(tf)
    assert after["dr_cluster_endpoint"] == cluster["endpoint"] and after["dr_cluster_arn"] == cluster["arn"]
    assert after["dr"]["enforced"]["cluster"] == "after promotion, the EKS cluster as the cluster block says"
    config = after["app_config"]
    assert config["IDIS_DATABASE_HOST"] == db["Endpoint"]["Address"] == after["dr_database_endpoint"]
    assert config["IDIS_AWS_REGION"] == DR and config["IDIS_S3_REGION"] == DR
    assert config["IDIS_S3_BUCKET"] == after["dr_documents_bucket_name"]
    assert config["IDIS_REDIS_HOST"] == after["dr_cache_primary_endpoint"] != before["cache_primary_endpoint"]
    assert after["secret_refs"]["IDIS_DATABASE_URL"] == after["dr_database_master_secret_arn"]
    assert after["dr_database_master_secret_arn"].split(":")[3] == DR
    # The application's own secrets: their replicas in the DR region.
    assert after["secret_refs"]["IDIS_JWT_SECRET"] == after["dr_jwt_secret_arn"] != before["jwt_secret_arn"]
    assert after["secret_refs"]["IDIS_ENCRYPTION_KEY"] == after["dr_encryption_key_secret_arn"]
    assert after["dr_jwt_secret_arn"].split(":")[3] == DR
    # The manifests follow: the SecretStore reads the DR region's Secrets
    # Manager, the ExternalSecret names the DR secrets and endpoints.
    manifests = after["kubernetes_manifests"]
    assert f'region: "{DR}"' in manifests["secret_store"], manifests["secret_store"]
    for arn in (after["dr_database_master_secret_arn"], after["dr_cache_auth_secret_arn"],
                after["dr_jwt_secret_arn"], after["dr_encryption_key_secret_arn"]):
        assert arn in manifests["external_secret"], (arn, manifests["external_secret"])
    assert before["database_endpoint"] not in manifests["external_secret"]
    assert after["dr_database_endpoint"] in manifests["external_secret"]
    assert f'IDIS_AWS_REGION: "{DR}"' in manifests["config_map"], manifests["config_map"]

    # Workload identity for the DR cluster: its own IAM OIDC provider and
    # roles idis-<name>-dr-<role>, trusting that provider only and allowed
    # the DR site's resources; the manifests' service accounts name them.
    # (The proxy plays EKS's OIDC issuer: asked of it.)
    proxied_eks = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "eks", region_name=DR, endpoint_url=aws_proxy.endpoint)
    iam = aws("iam")
    dr_issuer = proxied_eks.describe_cluster(name=PREFIX)["cluster"]["identity"]["oidc"]["issuer"]
    assert f"oidc.eks.{DR}." in dr_issuer, dr_issuer
    providers = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    dr_provider = [p for p in providers if dr_issuer.removeprefix("https://") in p]
    assert dr_provider == [after["dr_oidc_provider_arn"]], (providers, after["dr_oidc_provider_arn"])
    def document(doc):
        return json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc
    api = iam.get_role(RoleName=f"{PREFIX}-dr-api")["Role"]
    assert api["Arn"] == after["dr_api_role_arn"] != before["api_role_arn"]
    [trust] = document(api["AssumeRolePolicyDocument"])["Statement"]
    assert trust["Principal"]["Federated"] == dr_provider[0], trust
    allowed = json.dumps(document(iam.get_role_policy(RoleName=f"{PREFIX}-dr-api",
                                                      PolicyName="idis-workload-identity")["PolicyDocument"]))
    assert f"arn:aws:s3:::{after['dr_documents_bucket_name']}" in allowed, allowed
    assert after["dr_jwt_secret_arn"] in allowed and after["dr_database_master_secret_arn"] in allowed, allowed
    assert before["documents_bucket_name"] not in allowed and before["jwt_secret_arn"] not in allowed, allowed
    for role in ("external-secrets", "load-balancer-controller", "ebs-csi-driver", "cluster-autoscaler"):
        iam.get_role(RoleName=f"{PREFIX}-dr-{role}")
    assert f'eks.amazonaws.com/role-arn: "{after["dr_api_role_arn"]}"' in manifests["service_account"], \
        manifests["service_account"]
    # The EBS CSI driver add-on runs there with the DR role (EKS add-ons
    # are played by the proxy: asked of it).
    addon = proxied_eks.describe_addon(clusterName=PREFIX, addonName="aws-ebs-csi-driver")["addon"]
    assert addon["serviceAccountRoleArn"] == after["dr_ebs_csi_driver_role_arn"], addon

    # The DR load balancers' own regional web ACL (WAF attaches a regional
    # ACL only in its region), with the primary's rules and limit; the
    # ingress annotations name it.
    def acl_in(region):
        waf = aws("wafv2", region)
        [summary] = [a for a in waf.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"] == PREFIX]
        return waf.get_web_acl(Name=PREFIX, Scope="REGIONAL", Id=summary["Id"])
    dr_acl, primary_acl = acl_in(DR)["WebACL"], acl_in("us-east-1")["WebACL"]
    assert dr_acl["ARN"] == after["dr_web_acl_arn"] and f":{DR}:" in dr_acl["ARN"], (dr_acl["ARN"], after)
    def rules(acl):
        return [(r["Name"], r["Priority"], r["Statement"]) for r in acl["Rules"]]
    assert rules(dr_acl) == rules(primary_acl) and len(rules(dr_acl)) == 4, (rules(dr_acl), rules(primary_acl))
    assert after["ingress_annotations"][WAF_ANNOTATION] == after["dr_web_acl_arn"]
    assert after["web_acl_arn"] == before["web_acl_arn"]  # the primary's stays as it is
    assert_quiet(tf)
    assert tf.run("plan", "-detailed-exitcode", "-input=false", *UNPROTECTED, check=False).returncode == 0

    # The DR cluster is read back like the primary's: its node group
    # deleted out of band is drift named under `cluster`, which apply
    # repairs, and the primary's cluster is left alone.
    # So are its workload identity roles: the DR API role's trust widened
    # by hand to any principal of the account is drift under the same
    # guard, and apply puts back the one service account of the DR issuer.
    eks.delete_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")
    account = api["Arn"].split(":")[4]
    widened = {"Version": "2012-10-17", "Statement": [trust, {
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
    iam.update_assume_role_policy(RoleName=f"{PREFIX}-dr-api", PolicyDocument=json.dumps(widened))
    # And its web ACL deleted by hand.
    gone = acl_in(DR)
    aws("wafv2", DR).delete_web_acl(Name=PREFIX, Scope="REGIONAL", Id=gone["WebACL"]["Id"],
                                    LockToken=gone["LockToken"])
    primary_trust = document(iam.get_role(RoleName=f"{PREFIX}-api")["Role"]["AssumeRolePolicyDocument"])
    drift = refresh(tf)
    assert drift.returncode == 2, drift.stdout + drift.stderr[-3000:]
    assert '"cluster"' in drift.stdout and "node group" in drift.stdout, drift.stdout[-4000:]
    assert f"trust policy of {PREFIX}-dr-api" in drift.stdout, drift.stdout[-4000:]
    assert f"no regional web ACL in {DR}" in drift.stdout, drift.stdout[-4000:]
    tf.apply(*UNPROTECTED, timeout=900)
    remade = state_of(tf)
    assert acl_in(DR)["WebACL"]["ARN"] == remade["dr_web_acl_arn"] == remade["ingress_annotations"][WAF_ANNOTATION]
    assert eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    assert primary_eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    repaired = document(iam.get_role(RoleName=f"{PREFIX}-dr-api")["Role"]["AssumeRolePolicyDocument"])
    assert repaired["Statement"] == [trust], repaired
    assert document(iam.get_role(RoleName=f"{PREFIX}-api")["Role"]["AssumeRolePolicyDocument"]) == primary_trust
    assert_quiet(tf)

    # Going back is refused at plan: RDS cannot demote; and the promoted
    # site serves, so the dr block cannot simply go.
    set_inputs(tf, DR_INPUTS)
    refused = tf.run("plan", "-no-color", "-input=false", *UNPROTECTED, check=False)
    assert refused.returncode == 1 and "cannot be demoted" in refused.stderr, refused.stderr
    set_inputs(tf, "")
    refused = tf.run("plan", "-no-color", "-input=false", *UNPROTECTED, check=False)
    assert refused.returncode == 1 and "cannot be removed" in refused.stderr, refused.stderr
    set_inputs(tf, DR_INPUTS + "  dr_promote = true\n")

    tf.destroy(*UNPROTECTED, timeout=900)
    # moto's tagging API lists the buckets of every region in each; each
    # region's sweep judges its own (S3 names end in their region here).
    def elsewhere(arns, region):
        return [a for a in arns if not (a.startswith("arn:aws:s3:::") and not a.endswith(f"-{region}"))]
    kept, leftovers = sweep_after_destroy(aws, aws_proxy, after["audit_bucket_name"])
    assert elsewhere(leftovers, "us-east-1") == [], leftovers
    kept, leftovers = dr_sweep(aws, aws_proxy)
    assert elsewhere(leftovers, DR) == [], leftovers
    assert kept["bucket"] and kept["documents bucket"] and kept["keys"], kept
    assert kept["final snapshot"], kept
    for region in ("us-east-1", DR):
        assert aws("eks", region).list_clusters()["clusters"] == [], region
        assert aws("wafv2", region).list_web_acls(Scope="REGIONAL")["WebACLs"] == [], region
    # No replica of the application's secrets is left in the DR region
    # (a replica is deleted at once; the primaries wait out their window).
    dr_secrets = [s["Name"] for s in aws("secretsmanager", DR).list_secrets()["SecretList"]]
    assert not [n for n in dr_secrets if n in (f"idis/{ENV}/jwt-secret", f"idis/{ENV}/encryption-key")], dr_secrets
    roles = [r["RoleName"] for r in aws("iam", "us-east-1").list_roles()["Roles"] if r["RoleName"].startswith(PREFIX)]
    assert roles == [], roles
    assert aws("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


@pytest.mark.both_clis
def test_the_dr_database_is_promoted_while_the_primary_region_is_down(
        tmp_path, terraform_rc, aws_proxy, moto, aws, provider_binary):
    """A regional outage: the proxy answers every call signed for us-east-1
    ServiceUnavailable and forwards none (awsproxy `down_regions`). The
    promotion asks only the DR region: on Terraform 1.15 the action
    `idis_dr_promote` (from a configuration whose provider is in the DR
    region), on 1.11 the provider binary's `drill dr-promote`. Once the
    primary answers again, `dr_promote = true` and an apply build the rest
    without promoting a second time."""
    from conftest import AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, TERRAFORM_115, Terraform, REQUIRED_PROVIDERS
    tf = dr_site(tmp_path, terraform_rc, aws_proxy, moto)
    tf.apply(*UNPROTECTED, timeout=900)
    promotes = aws_proxy.counters.by_action.get("PromoteReadReplica", 0)

    aws_proxy.down_regions = {"us-east-1"}
    try:
        if TERRAFORM_115:
            action = Terraform(tmp_path / "promote", terraform_rc, aws_proxy.endpoint)
            action.workdir.mkdir()
            action.write(REQUIRED_PROVIDERS + f"""
provider "idis" {{
  region = "{DR}"
}}

action "idis_dr_promote" "now" {{
  config {{
    environment           = "{ENV}"
    region                = "{DR}"
    backup_retention_days = 30
  }}
}}
""")
            action.init()
            run = action.apply("-invoke=action.idis_dr_promote.now", timeout=600)
            said = run.stdout + run.stderr
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_", "PLUGIN_"))}
            env.update(AWS_ENDPOINT_URL=aws_proxy.endpoint, AWS_REGION=DR, AWS_ACCESS_KEY_ID=AWS_ACCESS_KEY_ID,
                       AWS_SECRET_ACCESS_KEY=AWS_SECRET_ACCESS_KEY, AWS_EC2_METADATA_DISABLED="true",
                       AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                       IDIS_POLL_INTERVAL_MS="50")
            run = subprocess.run([str(provider_binary), "drill", "dr-promote", "--environment", ENV,
                                  "--region", DR, "--backup-retention-days", "30"],
                                 env=env, capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stdout + run.stderr
            said = run.stdout + run.stderr
    finally:
        aws_proxy.down_regions = set()
    text = " ".join(said.split())
    assert f"dr_promote env={ENV} region={DR} ok=true promoted_now=true" in text, text[-3000:]
    # Nothing was asked of the region that is down, and the replica was
    # promoted once, in the DR region.
    assert aws_proxy.counters.refused_down == 0, aws_proxy.counters.refused_down
    assert aws_proxy.counters.by_action.get("PromoteReadReplica", 0) == promotes + 1
    import boto3
    proxied = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "rds", region_name=DR, endpoint_url=aws_proxy.endpoint)
    db = proxied.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in db, db
    assert db["BackupRetentionPeriod"] == 30, db
    assert db["MasterUserSecret"]["SecretArn"].split(":")[3] == DR, db["MasterUserSecret"]

    # The primary answers again: the apply adopts the promotion and builds
    # the rest of the DR site.
    set_inputs(tf, DR_INPUTS + "  dr_promote = true\n")
    tf.apply(*UNPROTECTED, timeout=900)
    assert aws_proxy.counters.by_action.get("PromoteReadReplica", 0) == promotes + 1
    assert aws("eks", DR).describe_cluster(name=PREFIX)["cluster"]["status"] == "ACTIVE"
    assert state_of(tf)["app_config"]["IDIS_DATABASE_HOST"] == db["Endpoint"]["Address"]
    assert tf.run("plan", "-detailed-exitcode", "-input=false", *UNPROTECTED, check=False).returncode == 0
