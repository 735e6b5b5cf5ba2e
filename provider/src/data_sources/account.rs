//! `data "idis_account"`: which AWS account and partition the provider talks
//! to, in which region, and the availability zones an environment can use.
//! The module reads it to spread an environment across three zones.

use serde::Serialize;

use crate::protocol::cty::{self, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::provider::config::Aws;

pub const TYPE_NAME: &str = "idis_account";

pub fn schema() -> Schema {
    Schema::new(
        0,
        Block::new("The AWS account, partition and region the provider is configured for, and the availability zones available there (from STS GetCallerIdentity and EC2 DescribeAvailabilityZones).")
            .attr(Attribute::computed("id", Type::String, "The account id."))
            .attr(Attribute::computed("account_id", Type::String, "The 12-digit AWS account id."))
            .attr(Attribute::computed("arn", Type::String, "ARN of the identity the provider calls AWS as."))
            .attr(Attribute::computed("partition", Type::String, "The AWS partition (`aws`, `aws-cn`, `aws-us-gov`)."))
            .attr(Attribute::computed("region", Type::String, "The region the provider is configured for."))
            .attr(Attribute::computed("availability_zones", Type::list(Type::String), "Names of the region's available availability zones, sorted."))
            .attr(Attribute::computed("availability_zone_ids", Type::list(Type::String), "Zone ids (e.g. `use1-az1`) in the same order as `availability_zones`.")),
    )
}

#[derive(Serialize)]
struct Account {
    id: String,
    account_id: String,
    arn: String,
    partition: String,
    region: String,
    availability_zones: Vec<String>,
    availability_zone_ids: Vec<String>,
}

pub async fn read(aws: &Aws) -> Result<Value, Diagnostics> {
    let (identity, zones) = tokio::join!(
        aws.sts().get_caller_identity().send(),
        aws.ec2().describe_availability_zones().send()
    );
    let identity = identity.map_err(|e| aws.explain("sts", "read the caller identity", &e))?;
    let zones = zones.map_err(|e| aws.explain("ec2", "list availability zones", &e))?;

    let account_id = identity.account().unwrap_or_default().to_string();
    let arn = identity.arn().unwrap_or_default().to_string();
    let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();

    let mut available: Vec<(String, String)> = zones
        .availability_zones()
        .iter()
        .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| {
            Some((
                z.zone_name()?.to_string(),
                z.zone_id().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    available.sort();
    if account_id.is_empty() {
        return Err(Diagnostic::error(
            "AWS returned no account id",
            format!(
                "sts:GetCallerIdentity at {} answered without an account id.",
                aws.describe_endpoint("sts")
            ),
        )
        .into());
    }

    let account = Account {
        id: account_id.clone(),
        account_id,
        arn,
        partition,
        region: aws.region.clone(),
        availability_zones: available.iter().map(|(n, _)| n.clone()).collect(),
        availability_zone_ids: available.into_iter().map(|(_, id)| id).collect(),
    };
    cty::to_value(&account, &schema().value_type()).map_err(|e| Diagnostic::from(e).into())
}
