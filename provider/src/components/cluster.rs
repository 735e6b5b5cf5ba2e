//! cluster: IAM roles, the EKS cluster with secrets encrypted by the platform key, and its managed node group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::KeysState;
use super::network::NetworkState;
use super::{ComponentError, Ctx};
use crate::environment::spec::ClusterSpec;

pub const COMPONENT: &str = "cluster";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub name: String,
    pub arn: String,
    pub endpoint: Option<String>,
    pub certificate_authority_data: Option<String>,
    pub oidc_issuer: Option<String>,
    pub kubernetes_version: String,
    pub endpoint_public_access: bool,
    pub secrets_key_arn: Option<String>,
    /// None when the node group is missing.
    pub node_group_arn: Option<String>,
    pub node_instance_types: Vec<String>,
    pub node_min_size: i64,
    pub node_max_size: i64,
    pub node_desired_size: i64,
}

fn not_built() -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: "not implemented yet".to_string(),
    }
}

pub async fn find(ctx: &Ctx) -> Result<Option<ClusterState>, ComponentError> {
    let _ = (ctx, BTreeMap::<String, String>::new());
    Err(not_built())
}

pub async fn ensure(
    ctx: &Ctx,
    _spec: &ClusterSpec,
    _network: &NetworkState,
    _keys: &KeysState,
) -> Result<ClusterState, ComponentError> {
    let _ = ctx;
    Err(not_built())
}

/// Returns warnings for the plan/apply output (e.g. what was kept).
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let _ = ctx;
    Err(not_built())
}
