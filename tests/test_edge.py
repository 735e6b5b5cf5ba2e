"""The edge protects what serves users, as AWS wires it:

- CloudFront can only use a CLOUDFRONT-scope web ACL, kept in us-east-1
  ("Working with web ACLs", AWS WAF Developer Guide); the provider makes
  `idis-<env>-cdn` there and sets it as the distribution's `WebACLId`.
- Shield Advanced protects the distribution, never the NAT gateways'
  Elastic IPs (they carry only egress).
- The regional web ACL is for the ingress load balancer, which the AWS Load
  Balancer Controller makes from the `ingress_annotations` output; WAF's
  list of what the ACL is attached to is read back, so a load balancer
  detached from it shows in `terraform plan -refresh-only`.

Checked with boto3 against moto directly (the CLOUDFRONT-scope ACL and the
protection), and through the proxy where it plays WAF
(`ListResourcesForWebACL`, which moto lacks)."""

from __future__ import annotations

import boto3

from test_environment import PREFIX, state_of

ORIGIN = "app.idis.example.com"
WITH_CDN = f"""
module "idis_production" {{
  cdn_origin_domain = "{ORIGIN}"
}}
"""


# examples/production serves static assets through a distribution; these
# tests look at the edge without one.
NO_CDN = """
module "idis_production" {
  cdn               = false
  cdn_origin_domain = null
}
"""


def _through(proxy, service: str):
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        service, region_name="us-east-1", endpoint_url=proxy.endpoint)


def test_the_distribution_is_behind_a_cloudfront_acl_and_shield_protects_it_not_an_elastic_ip(production, aws):
    # An override file sets the module's CDN input (Terraform's own override
    # mechanism), so the example stays the contract verbatim.
    production.write(WITH_CDN.replace("}\n", "  cdn = false\n}\n", 1), "edge_override.tf")
    production.apply()
    out = production.output_json()

    distributions = aws("cloudfront").list_distributions()["DistributionList"]["Items"]
    assert len(distributions) == 1
    distribution = aws("cloudfront").get_distribution(Id=distributions[0]["Id"])["Distribution"]
    cdn_acls = aws("wafv2").list_web_acls(Scope="CLOUDFRONT")["WebACLs"]
    assert [a["Name"] for a in cdn_acls] == [f"{PREFIX}-cdn"]
    assert distribution["DistributionConfig"]["WebACLId"] == cdn_acls[0]["ARN"]
    cdn_rules = aws("wafv2").get_web_acl(Name=f"{PREFIX}-cdn", Scope="CLOUDFRONT", Id=cdn_acls[0]["Id"])["WebACL"]["Rules"]
    assert len(cdn_rules) == 4

    protections = aws("shield").list_protections()["Protections"]
    assert [p["ResourceArn"] for p in protections] == [distribution["ARN"]]
    described = aws("shield").describe_protection(ProtectionId=protections[0]["Id"])["Protection"]
    assert described["ResourceArn"] == distribution["ARN"]
    assert ":eip-allocation/" not in described["ResourceArn"]

    regional = aws("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
    assert out["ingress_annotations"] == {
        "alb.ingress.kubernetes.io/wafv2-acl-arn": regional[0]["ARN"],
        "alb.ingress.kubernetes.io/shield-advanced-protection": "true",
    }
    again = production.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("terraform plan -detailed-exitcode")

    # Someone takes the distribution from behind its ACL and deletes the ACL:
    # the drift job sees it, and apply puts both back.
    cf = aws("cloudfront")
    current = cf.get_distribution_config(Id=distribution["Id"])
    config = current["DistributionConfig"]
    config["WebACLId"] = ""
    cf.update_distribution(Id=distribution["Id"], IfMatch=current["ETag"], DistributionConfig=config)
    lock = aws("wafv2").get_web_acl(Name=f"{PREFIX}-cdn", Scope="CLOUDFRONT", Id=cdn_acls[0]["Id"])["LockToken"]
    aws("wafv2").delete_web_acl(Name=f"{PREFIX}-cdn", Scope="CLOUDFRONT", Id=cdn_acls[0]["Id"], LockToken=lock)

    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("terraform plan -refresh-only")
    shown = " ".join(drift.stdout.split())
    assert "cdn_web_acl_arn" in shown and "waf = true -> false" in shown, drift.stdout
    production.apply()
    cdn_acls = aws("wafv2").list_web_acls(Scope="CLOUDFRONT")["WebACLs"]
    assert [a["Name"] for a in cdn_acls] == [f"{PREFIX}-cdn"]
    assert cf.get_distribution_config(Id=distribution["Id"])["DistributionConfig"]["WebACLId"] == cdn_acls[0]["ARN"]
    quiet = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert quiet.returncode == 0, quiet.describe("terraform plan -refresh-only after apply")


def test_without_a_distribution_nothing_egress_is_protected_and_a_detached_load_balancer_shows(production, aws, aws_proxy):
    production.write(NO_CDN, "edge_override.tf")
    production.apply()
    out = production.output_json()
    # No distribution: no protection of the provider's at all, none on a NAT
    # address; the ingress annotation asks for the load balancer's.
    assert aws("shield").list_protections().get("Protections", []) == []
    annotations = out["ingress_annotations"]
    assert annotations["alb.ingress.kubernetes.io/shield-advanced-protection"] == "true"
    acl_arn = annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"]
    assert acl_arn == out["web_acl_arn"]

    # The ingress controller makes a load balancer and attaches the ACL
    # (here: boto3, as the controller would).
    ec2, elb = aws("ec2"), aws("elbv2")
    vpc = out["vpc_id"]
    public = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [vpc]}, {"Name": "tag-key", "Values": ["kubernetes.io/role/elb"]}])["Subnets"]]
    alb = elb.create_load_balancer(Name="k8s-idis-ingress", Subnets=public[:2], Scheme="internet-facing",
                                   Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    _through(aws_proxy, "wafv2").associate_web_acl(WebACLArn=acl_arn, ResourceArn=alb)
    production.apply("-refresh-only")
    assert state_of(production)["web_acl_associations"] == [alb]

    # Detached: the drift job sees it.
    _through(aws_proxy, "wafv2").disassociate_web_acl(ResourceArn=alb)
    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("terraform plan -refresh-only")
    assert "web_acl_associations" in drift.stdout and alb in drift.stdout, drift.stdout
