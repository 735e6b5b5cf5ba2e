//! Which environments exist in a region: the names in the ownership tag
//! `idis:environment` of objects that also carry `managed-by =
//! terraform-provider-idis`, read from the Resource Groups Tagging API one
//! page at a time (for `terraform query`).
//!
//! Only objects of the region count: the API of a region also lists what
//! is global (CloudFront distributions, Shield protections, IAM, the
//! CLOUDFRONT-scope web ACL kept in us-east-1), which says nothing about
//! where an environment is, as `orchestrate::exists_in_region` judges it.

use std::collections::BTreeSet;

use super::{aws_error, ComponentError, MANAGED_BY, TAG_ENVIRONMENT, TAG_MANAGED_BY};
use crate::provider::config::Aws;

const COMPONENT: &str = "inventory";

/// Services whose tagged objects are global, whatever region lists them.
const GLOBAL_SERVICES: &[&str] = &["cloudfront", "iam", "shield", "route53"];

/// Whether `arn` names an object that lives in `region`.
pub fn regional_in(arn: &str, region: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, service, arn_region, _, resource] = parts.as_slice() else {
        return false;
    };
    // A CLOUDFRONT-scope web ACL: arn:aws:wafv2:us-east-1:...:global/webacl/...
    let global_waf = *service == "wafv2" && resource.starts_with("global/");
    *arn_region == region && !GLOBAL_SERVICES.contains(service) && !global_waf
}

/// Pages through the tagging API of one region.
pub struct Inventory<'a> {
    aws: &'a Aws,
    region: String,
    token: Option<String>,
    done: bool,
    seen: BTreeSet<String>,
}

impl<'a> Inventory<'a> {
    pub fn new(aws: &'a Aws, region: &str) -> Self {
        Inventory {
            aws,
            region: region.to_string(),
            token: None,
            done: false,
            seen: BTreeSet::new(),
        }
    }

    /// The environment names first seen on the next page, sorted; None
    /// once every page was read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, ComponentError> {
        if self.done {
            return Ok(None);
        }
        let tagging = if self.aws.region == self.region {
            self.aws.tagging()
        } else {
            self.aws.with_region(&self.region).tagging()
        };
        let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
            .key(TAG_MANAGED_BY)
            .values(MANAGED_BY)
            .build();
        let page = tagging
            .get_resources()
            .tag_filters(filter)
            .resources_per_page(100)
            .set_pagination_token(self.token.clone())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("list tagged resources in {}", self.region),
                    e,
                )
            })?;
        self.token = page
            .pagination_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        self.done = self.token.is_none();
        let mut fresh = BTreeSet::new();
        for mapping in page.resource_tag_mapping_list() {
            let Some(arn) = mapping.resource_arn() else {
                continue;
            };
            if !regional_in(arn, &self.region) {
                continue;
            }
            let name = mapping
                .tags()
                .iter()
                .find(|t| t.key() == TAG_ENVIRONMENT)
                .map(|t| t.value().to_string());
            if let Some(name) = name {
                if self.seen.insert(name.clone()) {
                    fresh.insert(name);
                }
            }
        }
        Ok(Some(fresh.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_of_the_region_place_an_environment_there() {
        let r = "us-east-1";
        assert!(regional_in(
            "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1",
            r
        ));
        assert!(regional_in(
            "arn:aws:rds:us-east-1:123456789012:db:idis-prod",
            r
        ));
        assert!(regional_in(
            "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/idis-prod/1",
            r
        ));
        assert!(!regional_in(
            "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1",
            r
        ));
        assert!(!regional_in(
            "arn:aws:wafv2:us-east-1:123456789012:global/webacl/idis-prod-cdn/1",
            r
        ));
        assert!(!regional_in(
            "arn:aws:cloudfront::123456789012:distribution/E1",
            r
        ));
        assert!(!regional_in(
            "arn:aws:iam::123456789012:role/idis-prod-cluster",
            r
        ));
        assert!(!regional_in("arn:aws:shield::123456789012:protection/p", r));
        assert!(!regional_in("not an arn", r));
    }
}
