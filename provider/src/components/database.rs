//! database: RDS PostgreSQL: subnet group, Multi-AZ instance (gp3, encrypted with the platform key, master password managed by Secrets Manager), backups, deletion protection, final snapshot, read replicas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::KeysState;
use super::network::NetworkState;
use super::{ComponentError, Ctx};
use crate::environment::spec::DatabaseSpec;

pub const COMPONENT: &str = "database";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseState {
    pub identifier: String,
    pub arn: String,
    pub endpoint: Option<String>,
    pub port: i64,
    pub master_secret_arn: Option<String>,
    /// The full version AWS runs, e.g. "16.4".
    pub engine_version_actual: String,
    pub instance_class: String,
    pub multi_az: bool,
    pub allocated_storage_gb: i64,
    pub backup_retention_days: i64,
    pub deletion_protection: bool,
    pub performance_insights: bool,
    pub storage_encrypted: bool,
    pub replica_endpoints: Vec<String>,
}

fn not_built() -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: "not implemented yet".to_string(),
    }
}

pub async fn find(ctx: &Ctx) -> Result<Option<DatabaseState>, ComponentError> {
    let _ = (ctx, BTreeMap::<String, String>::new());
    Err(not_built())
}

pub async fn ensure(
    ctx: &Ctx,
    _spec: &DatabaseSpec,
    _network: &NetworkState,
    _keys: &KeysState,
) -> Result<DatabaseState, ComponentError> {
    let _ = ctx;
    Err(not_built())
}

/// Returns warnings for the plan/apply output (e.g. what was kept).
pub async fn delete(ctx: &Ctx, _spec: &DatabaseSpec) -> Result<Vec<String>, ComponentError> {
    let _ = ctx;
    Err(not_built())
}
