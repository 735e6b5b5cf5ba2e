//! network: VPC from the CIDR, public and private subnets in three zones, internet gateway, NAT gateways, route tables, and the security groups of the cluster, database and cache.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ComponentError, Ctx};
use crate::environment::spec::NetworkSpec;

pub const COMPONENT: &str = "network";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    pub vpc_id: String,
    /// As AWS reports it (drift on the CIDR shows here).
    pub vpc_cidr: String,
    /// Zones of the private subnets, in subnet order.
    pub availability_zones: Vec<String>,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
    pub nat_gateway_per_az: bool,
    pub nat_gateway_ids: Vec<String>,
    /// Elastic IP allocation ids of the NAT gateways.
    pub nat_eip_allocation_ids: Vec<String>,
    pub cluster_security_group_id: String,
    pub database_security_group_id: String,
    pub cache_security_group_id: String,
    /// The VPC's user-visible tags (no ownership or aws:* tags).
    pub tags: BTreeMap<String, String>,
}

fn not_built() -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: "not implemented yet".to_string(),
    }
}

pub async fn find(ctx: &Ctx) -> Result<Option<NetworkState>, ComponentError> {
    let _ = (ctx, BTreeMap::<String, String>::new());
    Err(not_built())
}

pub async fn ensure(ctx: &Ctx, _spec: &NetworkSpec) -> Result<NetworkState, ComponentError> {
    let _ = ctx;
    Err(not_built())
}

/// Returns warnings for the plan/apply output (e.g. what was kept).
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let _ = ctx;
    Err(not_built())
}
