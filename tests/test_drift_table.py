"""Everything the provider makes is read back: out-of-band changes, each
made with boto3 directly against moto the way someone with the console
would make it (through the proxy for EKS add-ons, which only it plays),
across all twelve components.

For every change of the table: `terraform plan -refresh-only
-detailed-exitcode` exits 2 and names the component and the setting (and
says in words what is wrong); `terraform apply` exits 0; boto3 shows AWS
back to what the provider makes; the next plan exits 0. Changes are made
in two rounds, so that two changes never touch the same setting in one
round; the security-relevant ones come first in each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import boto3
from typing import Callable

from test_environment import ENV, PREFIX, state_of

NODE_GROUP = {"clusterName": PREFIX, "nodegroupName": f"{PREFIX}-default"}


class World:
    """boto3 clients on moto and the ids of what the provider made."""

    def __init__(self, aws, state: dict, proxy_eks=None, proxy_cf=None):
        self.aws = aws
        self.state = state
        # EKS add-ons exist only in the proxy, which plays them.
        self.proxy_eks = proxy_eks
        self.proxy_cf = proxy_cf
        self.ec2, self.s3, self.rds, self.kms = aws("ec2"), aws("s3"), aws("rds"), aws("kms")
        self.eks, self.iam, self.ec, self.waf = aws("eks"), aws("iam"), aws("elasticache"), aws("wafv2")
        self.sm, self.sns = aws("secretsmanager"), aws("sns")
        self.topic = state["alarm_topic_arn"]
        self.cw = aws("cloudwatch")
        self.ct = aws("cloudtrail")
        self.bucket = state["audit_bucket_name"]
        self.documents = state["documents_bucket_name"]
        self.vpc = state["vpc_id"]
        groups = self.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [self.vpc]}])["SecurityGroups"]
        self.group = {g["GroupName"]: g["GroupId"] for g in groups}
        self.key_of = {a["AliasName"].rsplit("/", 1)[1]: a["TargetKeyId"] for a in self.kms.list_aliases()["Aliases"]
                       if a["AliasName"].startswith(f"alias/idis/{ENV}/")}

    def db(self) -> dict:
        return self.rds.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]

    def cache(self) -> dict:
        return self.ec.describe_replication_groups(ReplicationGroupId=f"{PREFIX}-cache")["ReplicationGroups"][0]

    def table(self, name: str) -> dict:
        return self.ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [name]}])["RouteTables"][0]

    def sg(self, role: str) -> dict:
        return self.ec2.describe_security_groups(GroupIds=[self.group[f"{PREFIX}-{role}"]])["SecurityGroups"][0]

    def acl(self) -> tuple[dict, str]:
        summary = self.waf.list_web_acls(Scope="REGIONAL")["WebACLs"][0]
        got = self.waf.get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
        return got["WebACL"], got["LockToken"]

    def put_acl(self, rules=None, default=None) -> None:
        acl, token = self.acl()
        self.waf.update_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"], LockToken=token,
                                DefaultAction=default or acl["DefaultAction"],
                                Rules=acl["Rules"] if rules is None else rules(acl["Rules"]),
                                VisibilityConfig=acl["VisibilityConfig"])

    def alarm(self, name: str) -> dict:
        found = self.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        return found[0] if found else {}

    def put_alarm(self, name: str, **changes) -> None:
        """Puts the alarm back as it is, with `changes` (the console's edit)."""
        a = self.alarm(name)
        keep = ("AlarmName", "AlarmDescription", "Namespace", "MetricName", "Statistic", "Dimensions", "Period",
                "EvaluationPeriods", "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions",
                "OKActions")
        self.cw.put_metric_alarm(**{**{k: a[k] for k in keep if k in a}, **changes})

    def key_tags(self, key_id: str) -> dict:
        return {t["TagKey"]: t["TagValue"] for t in self.kms.list_resource_tags(KeyId=key_id)["Tags"]}

    def eks_tags(self) -> dict:
        return self.eks.describe_cluster(name=PREFIX)["cluster"].get("tags", {})


@dataclass
class Change:
    """One change made outside Terraform: what the plan must name (the
    component's block and the key of its `enforced` map), how it is made,
    and how boto3 shows it repaired."""

    what: str
    component: str
    key: str
    make: Callable[[World], None]
    repaired: Callable[[World], bool]


def _public_grant(w: World) -> None:
    policy = json.loads(w.s3.get_bucket_policy(Bucket=w.bucket)["Policy"])
    policy["Statement"].append({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                                "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{w.bucket}/*"})
    w.s3.put_bucket_policy(Bucket=w.bucket, Policy=json.dumps(policy))


def _no_public_grant(w: World) -> bool:
    policy = json.loads(w.s3.get_bucket_policy(Bucket=w.bucket)["Policy"])
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    tls = any(s.get("Sid") == "DenyInsecureTransport" for s in statements)
    return tls and not any(s.get("Effect") == "Allow" and s.get("Principal") == "*" for s in statements)


def _public_documents(w: World) -> None:
    policy = json.loads(w.s3.get_bucket_policy(Bucket=w.documents)["Policy"])
    policy["Statement"].append({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                                "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{w.documents}/*"})
    w.s3.put_bucket_policy(Bucket=w.documents, Policy=json.dumps(policy))


def _documents_private(w: World) -> bool:
    statements = json.loads(w.s3.get_bucket_policy(Bucket=w.documents)["Policy"])["Statement"]
    return not any(s.get("Effect") == "Allow" for s in statements) and any(
        s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def _api_trust(w: World) -> dict:
    return w.iam.get_role(RoleName=f"{PREFIX}-api")["Role"]["AssumeRolePolicyDocument"]


def _widen_api_trust(w: World) -> None:
    # Any service account of the cluster may now take the API's role.
    trust = _api_trust(w)
    condition = trust["Statement"][0]["Condition"]
    sub = next(k for k in condition["StringEquals"] if k.endswith(":sub"))
    del condition["StringEquals"][sub]
    condition["StringLike"] = {sub: "system:serviceaccount:*:*"}
    w.iam.update_assume_role_policy(RoleName=f"{PREFIX}-api", PolicyDocument=json.dumps(trust))


def _api_trust_exact(w: World) -> bool:
    condition = _api_trust(w)["Statement"][0]["Condition"]
    return list(condition) == ["StringEquals"] and "system:serviceaccount:idis:idis-api" in condition[
        "StringEquals"].values()


def _secret_live(w: World, name: str) -> bool:
    try:
        return "DeletedDate" not in w.sm.describe_secret(SecretId=f"idis/{ENV}/{name}")
    except w.sm.exceptions.ResourceNotFoundException:
        return False


ADMIN = "arn:aws:iam::123456789012:role/idis-platform-admins"
INTRUDER = "arn:aws:iam::123456789012:user/someone"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def _policies_of(w: World, principal: str) -> list[str] | None:
    """The access policies of an entry (through the proxy, which plays
    access entries), None when there is no entry."""
    try:
        held = w.proxy_eks.list_associated_access_policies(clusterName=PREFIX, principalArn=principal)
    except w.proxy_eks.exceptions.ResourceNotFoundException:
        return None
    return [p["policyArn"] for p in held["associatedAccessPolicies"]]


def _hand_added_admin(w: World) -> None:
    w.proxy_eks.create_access_entry(clusterName=PREFIX, principalArn=INTRUDER)
    w.proxy_eks.associate_access_policy(clusterName=PREFIX, principalArn=INTRUDER, policyArn=ADMIN_POLICY,
                                        accessScope={"type": "cluster"})


def _assets(w: World) -> str:
    return w.state["cdn_assets_bucket_name"]


def _assets_public(w: World) -> None:
    policy = json.loads(w.s3.get_bucket_policy(Bucket=_assets(w))["Policy"])
    policy["Statement"].append({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                                "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{_assets(w)}/*"})
    w.s3.put_bucket_policy(Bucket=_assets(w), Policy=json.dumps(policy))


def _assets_private(w: World) -> bool:
    policy = json.loads(w.s3.get_bucket_policy(Bucket=_assets(w))["Policy"])
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    return [s["Principal"] for s in allows] == [{"Service": "cloudfront.amazonaws.com"}]


def _distribution(w: World) -> tuple[str, dict, str]:
    """Through the proxy, which keeps the S3 origin's OAC as CloudFront does."""
    [summary] = [d for d in w.aws("cloudfront").list_distributions()["DistributionList"]["Items"]
                 if d["Comment"] == PREFIX]
    got = w.proxy_cf.get_distribution_config(Id=summary["Id"])
    return summary["Id"], got["DistributionConfig"], got["ETag"]


def _drop_api_behaviour(w: World) -> None:
    ident, config, etag = _distribution(w)
    config["CacheBehaviors"] = {"Quantity": 0}
    w.proxy_cf.update_distribution(Id=ident, IfMatch=etag, DistributionConfig=config)


def _api_behaviour(w: World) -> bool:
    _, config, _ = _distribution(w)
    return [b["PathPattern"] for b in config["CacheBehaviors"].get("Items", [])] == ["/api/*"]


def _addon(w: World, name: str) -> dict | None:
    try:
        return w.proxy_eks.describe_addon(clusterName=PREFIX, addonName=name)["addon"]
    except w.proxy_eks.exceptions.ResourceNotFoundException:
        return None


def _ebs_csi(w: World) -> dict | None:
    try:
        return w.proxy_eks.describe_addon(clusterName=PREFIX, addonName="aws-ebs-csi-driver")["addon"]
    except w.proxy_eks.exceptions.ResourceNotFoundException:
        return None


def _encryption(w: World) -> dict:
    return w.s3.get_bucket_encryption(Bucket=w.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]


def _pab(w: World) -> dict:
    return w.s3.get_public_access_block(Bucket=w.bucket)["PublicAccessBlockConfiguration"]


def _open_database_to_the_internet(w: World) -> None:
    w.ec2.authorize_security_group_ingress(GroupId=w.group[f"{PREFIX}-database"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])


def _ingress_cidrs(w: World, role: str) -> list[str]:
    return [r["CidrIp"] for p in w.sg(role)["IpPermissions"] for r in p.get("IpRanges", [])]


def _extra_route(w: World) -> None:
    table = w.table(f"{PREFIX}-private-us-east-1a")
    igw = w.ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [w.vpc]}])["InternetGateways"][0]
    w.ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="10.99.0.0/16",
                       GatewayId=igw["InternetGatewayId"])


def _subnet(w: World, name: str) -> dict:
    return w.ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [name]}])["Subnets"][0]


def _foreign_key_for_globex(w: World) -> None:
    other = w.kms.create_key(Description="someone else's key")["KeyMetadata"]["KeyId"]
    w.kms.update_alias(AliasName=f"alias/idis/{ENV}/globex", TargetKeyId=other)


def _default_key_policy(w: World, key_id: str) -> bool:
    policy = json.loads(w.kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    return len(statements) == 1 and statements[0]["Principal"]["AWS"].endswith(":root")


def _grant_another_account(w: World) -> None:
    policy = json.loads(w.kms.get_key_policy(KeyId=w.key_of["acme"], PolicyName="default")["Policy"])
    policy["Statement"].append({"Sid": "Outsider", "Effect": "Allow",
                                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                                "Action": "kms:Decrypt", "Resource": "*"})
    w.kms.put_key_policy(KeyId=w.key_of["acme"], PolicyName="default", Policy=json.dumps(policy))


def _attached(w: World, role: str) -> list[str]:
    return sorted(p["PolicyName"] for p in w.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"])


def _logging_on(w: World) -> set[str]:
    setups = w.eks.describe_cluster(name=PREFIX)["cluster"]["logging"]["clusterLogging"]
    return {t for s in setups if s.get("enabled") for t in s["types"]}


def _without(rule_name: str):
    return lambda rules: [r for r in rules if r["Name"] != rule_name]


def _count_only(rule_name: str):
    def change(rules):
        for r in rules:
            if r["Name"] == rule_name:
                r["OverrideAction"] = {"Count": {}}
        return rules
    return change


def _rule_names(w: World) -> list[str]:
    return sorted(r["Name"] for r in w.acl()[0]["Rules"])


MANAGED = ["AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesCommonRuleSet",
           "AWSManagedRulesKnownBadInputsRuleSet", "rate-limit"]

FIRST_ROUND = [
    # Security first: the audit bucket public, its policy or encryption
    # changed; the database public or its security group opened; a key
    # disabled or its policy changed; a web ACL rule removed.
    Change("public access block removed", "audit_storage", "public_access_block",
           lambda w: w.s3.delete_public_access_block(Bucket=w.bucket),
           lambda w: all(_pab(w).values())),
    Change("a statement lets everyone read the bucket", "audit_storage", "bucket_policy",
           _public_grant, _no_public_grant),
    Change("encryption switched to SSE-S3", "audit_storage", "default_encryption",
           lambda w: w.s3.put_bucket_encryption(Bucket=w.bucket, ServerSideEncryptionConfiguration={
               "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}),
           lambda w: _encryption(w)["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
           and _encryption(w).get("BucketKeyEnabled") is True),
    Change("database made publicly accessible", "database", "network_access",
           lambda w: w.rds.modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", PubliclyAccessible=True,
                                              ApplyImmediately=True),
           lambda w: w.db()["PubliclyAccessible"] is False),
    Change("database security group opened to 0.0.0.0/0", "network", "security_groups",
           _open_database_to_the_internet, lambda w: _ingress_cidrs(w, "database") == []),
    Change("tenant key disabled", "keys", "key_state",
           lambda w: w.kms.disable_key(KeyId=w.key_of["acme"]),
           lambda w: w.kms.describe_key(KeyId=w.key_of["acme"])["KeyMetadata"]["KeyState"] == "Enabled"),
    Change("key policy grants another account", "keys", "key_policy",
           _grant_another_account, lambda w: _default_key_policy(w, w.key_of["acme"])),
    Change("managed rule group removed from the web ACL", "edge", "web_acl",
           lambda w: w.put_acl(rules=_without("AWSManagedRulesCommonRuleSet")),
           lambda w: _rule_names(w) == MANAGED),
    Change("a statement lets everyone read the documents", "documents_storage", "bucket_policy",
           _public_documents, _documents_private),
    Change("the API role's trust widened to every service account", "workload_identity", "trust_policies",
           _widen_api_trust, _api_trust_exact),
    Change("IDIS_ENCRYPTION_KEY deleted without recovery", "app_secrets", "secrets",
           lambda w: w.sm.delete_secret(SecretId=f"idis/{ENV}/encryption-key", ForceDeleteWithoutRecovery=True),
           lambda w: _secret_live(w, "encryption-key")),
    Change("alarm topic no longer encrypted", "monitoring", "alarm_topic",
           lambda w: w.sns.set_topic_attributes(TopicArn=w.topic, AttributeName="KmsMasterKeyId", AttributeValue=""),
           lambda w: w.sns.get_topic_attributes(TopicArn=w.topic)["Attributes"].get("KmsMasterKeyId")
           == w.kms.describe_key(KeyId=w.key_of["platform"])["KeyMetadata"]["Arn"]),
    Change("the database CPU alarm's threshold raised to 99", "monitoring", "alarms",
           lambda w: w.put_alarm(f"{PREFIX}-db-cpu", Threshold=99.0),
           lambda w: w.alarm(f"{PREFIX}-db-cpu")["Threshold"] == 80.0),
    # The rest of the first round.
    Change("default retention removed", "audit_storage", "default_retention",
           lambda w: w.s3.put_object_lock_configuration(Bucket=w.bucket, ObjectLockConfiguration={
               "ObjectLockEnabled": "Enabled"}),
           lambda w: w.s3.get_object_lock_configuration(Bucket=w.bucket)["ObjectLockConfiguration"]
           ["Rule"]["DefaultRetention"]["Days"] == 365),
    Change("bucket ownership tag removed", "audit_storage", "tags",
           lambda w: w.s3.put_bucket_tagging(Bucket=w.bucket, Tagging={"TagSet": [
               t for t in w.s3.get_bucket_tagging(Bucket=w.bucket)["TagSet"] if t["Key"] != "managed-by"]}),
           lambda w: any(t["Key"] == "managed-by" for t in w.s3.get_bucket_tagging(Bucket=w.bucket)["TagSet"])),
    Change("tags no longer copied to snapshots", "database", "snapshots",
           lambda w: w.rds.modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", CopyTagsToSnapshot=False,
                                              ApplyImmediately=True),
           lambda w: w.db()["CopyTagsToSnapshot"] is True),
    Change("database ownership tag removed", "database", "tags",
           lambda w: w.rds.remove_tags_from_resource(ResourceName=w.db()["DBInstanceArn"], TagKeys=["managed-by"]),
           lambda w: any(t["Key"] == "managed-by" for t in w.db()["TagList"])),
    Change("DNS hostnames turned off", "network", "vpc_dns",
           lambda w: w.ec2.modify_vpc_attribute(VpcId=w.vpc, EnableDnsHostnames={"Value": False}),
           lambda w: w.ec2.describe_vpc_attribute(VpcId=w.vpc, Attribute="enableDnsHostnames")
           ["EnableDnsHostnames"]["Value"] is True),
    Change("public subnet no longer maps public IPs", "network", "subnets",
           lambda w: w.ec2.modify_subnet_attribute(SubnetId=_subnet(w, f"{PREFIX}-public-us-east-1b")["SubnetId"],
                                                   MapPublicIpOnLaunch={"Value": False}),
           lambda w: _subnet(w, f"{PREFIX}-public-us-east-1b")["MapPublicIpOnLaunch"] is True),
    Change("extra route in a private route table", "network", "route_tables",
           _extra_route,
           lambda w: all(r.get("DestinationCidrBlock") != "10.99.0.0/16"
                         for r in w.table(f"{PREFIX}-private-us-east-1a")["Routes"])),
    Change("subnet ownership tag removed", "network", "tags",
           lambda w: w.ec2.delete_tags(Resources=[_subnet(w, f"{PREFIX}-private-us-east-1c")["SubnetId"]],
                                       Tags=[{"Key": "managed-by"}]),
           lambda w: any(t["Key"] == "managed-by" for t in _subnet(w, f"{PREFIX}-private-us-east-1c")["Tags"])),
    Change("an alias pointed at someone else's key", "keys", "aliases",
           _foreign_key_for_globex, lambda w: w.kms.describe_key(KeyId=f"alias/idis/{ENV}/globex")
           ["KeyMetadata"]["KeyId"] == w.key_of["globex"]),
    Change("key ownership tag removed", "keys", "tags",
           lambda w: w.kms.untag_resource(KeyId=w.key_of["platform"], TagKeys=["managed-by"]),
           lambda w: "managed-by" in w.key_tags(w.key_of["platform"])),
    Change("control-plane logging turned off", "cluster", "logging",
           lambda w: w.eks.update_cluster_config(name=PREFIX, logging={"clusterLogging": [
               {"types": ["api", "audit", "authenticator"], "enabled": False}]}),
           lambda w: {"api", "audit", "authenticator"} <= _logging_on(w)),
    Change("AdministratorAccess attached to the node role", "cluster", "roles",
           lambda w: w.iam.attach_role_policy(RoleName=f"{PREFIX}-eks-nodes",
                                              PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"),
           lambda w: "AdministratorAccess" not in _attached(w, f"{PREFIX}-eks-nodes")),
    Change("an admin's access entry deleted", "cluster", "access_entries",
           lambda w: w.proxy_eks.delete_access_entry(clusterName=PREFIX, principalArn=ADMIN),
           lambda w: _policies_of(w, ADMIN) == [ADMIN_POLICY]),
    Change("a public read put in the assets bucket's policy", "edge", "assets_bucket",
           _assets_public, _assets_private),
    Change("metrics-server add-on deleted", "cluster", "metrics_server",
           lambda w: w.proxy_eks.delete_addon(clusterName=PREFIX, addonName="metrics-server"),
           lambda w: (_addon(w, "metrics-server") or {}).get("status") == "ACTIVE"),
    Change("cluster ownership tag removed", "cluster", "tags",
           lambda w: w.eks.untag_resource(resourceArn=w.state["cluster_arn"], tagKeys=["managed-by"]),
           lambda w: "managed-by" in w.eks_tags()),
    Change("cache automatic failover turned off", "cache", "failover",
           lambda w: w.ec.modify_replication_group(ReplicationGroupId=f"{PREFIX}-cache",
                                                   AutomaticFailoverEnabled=False, ApplyImmediately=True),
           lambda w: w.cache()["AutomaticFailover"] == "enabled"),
    Change("cache auth secret scheduled for deletion", "cache", "auth",
           lambda w: w.sm.delete_secret(SecretId=f"idis/{ENV}/cache-auth-token", RecoveryWindowInDays=7),
           lambda w: "DeletedDate" not in w.sm.describe_secret(SecretId=f"idis/{ENV}/cache-auth-token")),
    Change("cache ownership tag removed", "cache", "tags",
           lambda w: w.ec.remove_tags_from_resource(ResourceName=w.cache()["ARN"], TagKeys=["managed-by"]),
           lambda w: any(t["Key"] == "managed-by" for t in
                         w.ec.list_tags_for_resource(ResourceName=w.cache()["ARN"])["TagList"])),
    Change("web ACL ownership tag removed", "edge", "tags",
           lambda w: w.waf.untag_resource(ResourceARN=w.state["web_acl_arn"], TagKeys=["managed-by"]),
           lambda w: any(t["Key"] == "managed-by" for t in
                         w.waf.list_tags_for_resource(ResourceARN=w.state["web_acl_arn"])
                         ["TagInfoForResource"]["TagList"])),
    Change("the data-events trail stopped", "audit_trail", "trail_logging",
           lambda w: w.ct.stop_logging(Name=f"{PREFIX}-data-events"),
           lambda w: w.ct.get_trail_status(Name=f"{PREFIX}-data-events")["IsLogging"] is True),
]

SECOND_ROUND = [
    Change("TLS-only bucket policy deleted", "audit_storage", "bucket_policy",
           lambda w: w.s3.delete_bucket_policy(Bucket=w.bucket), _no_public_grant),
    Change("one public access setting turned off", "audit_storage", "public_access_block",
           lambda w: w.s3.put_public_access_block(Bucket=w.bucket, PublicAccessBlockConfiguration={
               "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": False}),
           lambda w: all(_pab(w).values())),
    Change("database moved to another security group", "database", "network_access",
           lambda w: w.rds.modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", ApplyImmediately=True,
                                              VpcSecurityGroupIds=[w.group[f"{PREFIX}-cluster"]]),
           lambda w: [g["VpcSecurityGroupId"] for g in w.db()["VpcSecurityGroups"]]
           == [w.group[f"{PREFIX}-database"]]),
    Change("rule group overridden to count only", "edge", "web_acl",
           lambda w: w.put_acl(rules=_count_only("AWSManagedRulesKnownBadInputsRuleSet")),
           lambda w: all("None" in r.get("OverrideAction", {"None": {}}) for r in w.acl()[0]["Rules"])),
    Change("public subnet disassociated from its route table", "network", "route_tables",
           lambda w: w.ec2.disassociate_route_table(AssociationId=next(
               a["RouteTableAssociationId"] for a in w.table(f"{PREFIX}-public")["Associations"]
               if a.get("SubnetId") == _subnet(w, f"{PREFIX}-public-us-east-1a")["SubnetId"])),
           lambda w: any(a.get("SubnetId") == _subnet(w, f"{PREFIX}-public-us-east-1a")["SubnetId"]
                         for a in w.table(f"{PREFIX}-public")["Associations"])),
    Change("cache security group lets everything in from 10.0.0.0/8", "network", "security_groups",
           lambda w: w.ec2.authorize_security_group_ingress(GroupId=w.group[f"{PREFIX}-cache"], IpPermissions=[
               {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]),
           lambda w: _ingress_cidrs(w, "cache") == []),
    Change("inline policy put on the cluster role", "cluster", "roles",
           lambda w: w.iam.put_role_policy(RoleName=f"{PREFIX}-eks-cluster", PolicyName="everything",
                                           PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                               {"Effect": "Allow", "Action": "*", "Resource": "*"}]})),
           lambda w: w.iam.list_role_policies(RoleName=f"{PREFIX}-eks-cluster")["PolicyNames"] == []),
    Change("IDIS_JWT_SECRET scheduled for deletion", "app_secrets", "secrets",
           lambda w: w.sm.delete_secret(SecretId=f"idis/{ENV}/jwt-secret", RecoveryWindowInDays=7),
           lambda w: _secret_live(w, "jwt-secret")),
    Change("documents lifecycle rule removed", "documents_storage", "lifecycle",
           lambda w: w.s3.delete_bucket_lifecycle(Bucket=w.documents),
           lambda w: [r["ID"] for r in w.s3.get_bucket_lifecycle_configuration(Bucket=w.documents)["Rules"]]
           == ["idis-expire-noncurrent-versions"]),
    Change("AdministratorAccess attached to the API role", "workload_identity", "permissions",
           lambda w: w.iam.attach_role_policy(RoleName=f"{PREFIX}-api",
                                              PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"),
           lambda w: _attached(w, f"{PREFIX}-api") == []),
    Change("the /api/* behaviour removed from the distribution", "edge", "distribution",
           _drop_api_behaviour, _api_behaviour),
    Change("an access entry with cluster admin added by hand", "cluster", "access_entries",
           _hand_added_admin, lambda w: _policies_of(w, INTRUDER) is None),
    Change("EBS CSI driver add-on deleted", "cluster", "ebs_csi_driver",
           lambda w: w.proxy_eks.delete_addon(clusterName=PREFIX, addonName="aws-ebs-csi-driver"),
           lambda w: (_ebs_csi(w) or {}).get("serviceAccountRoleArn") == w.state["ebs_csi_driver_role_arn"]),
    Change("alarm topic ownership tag removed", "monitoring", "tags",
           lambda w: w.sns.untag_resource(ResourceArn=w.topic, TagKeys=["managed-by"]),
           lambda w: any(t["Key"] == "managed-by" for t in w.sns.list_tags_for_resource(ResourceArn=w.topic)["Tags"])),
    Change("a cache node's evictions alarm deleted", "monitoring", "alarms",
           lambda w: w.cw.delete_alarms(AlarmNames=[f"{PREFIX}-cache-002-evictions"]),
           lambda w: w.alarm(f"{PREFIX}-cache-002-evictions")["AlarmActions"] == [w.topic]),
    Change("bucket key turned off", "audit_storage", "default_encryption",
           lambda w: w.s3.put_bucket_encryption(Bucket=w.bucket, ServerSideEncryptionConfiguration={
               "Rules": [{"ApplyServerSideEncryptionByDefault": {
                   "SSEAlgorithm": "aws:kms",
                   "KMSMasterKeyID": _encryption(w)["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]},
                   "BucketKeyEnabled": False}]}),
           lambda w: _encryption(w).get("BucketKeyEnabled") is True),
    Change("access logging of the documents bucket turned off", "audit_trail", "access_logging",
           lambda w: w.s3.put_bucket_logging(Bucket=w.documents, BucketLoggingStatus={}),
           lambda w: w.s3.get_bucket_logging(Bucket=w.documents).get("LoggingEnabled", {}).get("TargetPrefix")
           == "documents/"),
]


def _round(production, aws, proxy_eks, proxy_cf, changes: list[Change]) -> None:
    __tracebackhide__ = True
    world = World(aws, state_of(production), proxy_eks, proxy_cf)
    for change in changes:
        change.make(world)
    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("terraform plan -refresh-only -detailed-exitcode")
    for change in changes:
        # The block it belongs to, the setting, and words for what is wrong.
        assert f'"{change.key}"' in drift.stdout, f"{change.what}: {change.key} not in the plan:\n{drift.stdout}"
        assert f"{change.component}: {change.key} changed outside Terraform" in drift.stdout + drift.stderr, \
            f"{change.what}: no warning naming {change.component}.{change.key}:\n{drift.stdout}"
    production.apply()
    world = World(aws, state_of(production), proxy_eks, proxy_cf)
    broken = [change.what for change in changes if not change.repaired(world)]
    assert broken == [], f"not put back by apply: {broken}"
    clean = production.plan("-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("terraform plan -detailed-exitcode after the repair")


def test_every_setting_the_provider_makes_is_read_back_shown_and_repaired(production, aws, aws_proxy):
    production.apply()
    clean = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan -refresh-only right after apply")
    proxy_eks = boto3.client("eks", region_name="us-east-1", endpoint_url=aws_proxy.endpoint,
                             aws_access_key_id="testing", aws_secret_access_key="testing")
    proxy_cf = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=aws_proxy.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    _round(production, aws, proxy_eks, proxy_cf, FIRST_ROUND)
    _round(production, aws, proxy_eks, proxy_cf, SECOND_ROUND)
    distinct = {(c.component, c.what) for c in FIRST_ROUND + SECOND_ROUND}
    assert len(distinct) >= 45
    assert {c.component for c in FIRST_ROUND + SECOND_ROUND} == {
        "network", "keys", "cluster", "database", "cache", "audit_storage", "edge",
        "documents_storage", "app_secrets", "workload_identity", "monitoring", "audit_trail"}
