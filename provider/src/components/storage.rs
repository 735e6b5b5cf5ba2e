//! audit_storage: The audit bucket: created with Object Lock, versioning, default retention, SSE-KMS with a bucket key, public access blocked, TLS-only policy; kept on destroy by default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::KeysState;
use super::{ComponentError, Ctx};
use crate::environment::spec::AuditStorageSpec;

pub const COMPONENT: &str = "audit_storage";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditStorageState {
    pub bucket: String,
    pub arn: String,
    pub versioning: bool,
    pub worm: bool,
    pub retention_mode: Option<String>,
    pub retention_days: Option<i64>,
    pub kms_key_arn: Option<String>,
    pub public_access_blocked: bool,
}

fn not_built() -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: "not implemented yet".to_string(),
    }
}

pub async fn find(ctx: &Ctx) -> Result<Option<AuditStorageState>, ComponentError> {
    let _ = (ctx, BTreeMap::<String, String>::new());
    Err(not_built())
}

pub async fn ensure(
    ctx: &Ctx,
    _spec: &AuditStorageSpec,
    _keys: &KeysState,
) -> Result<AuditStorageState, ComponentError> {
    let _ = ctx;
    Err(not_built())
}

/// Returns warnings for the plan/apply output (e.g. what was kept).
pub async fn delete(ctx: &Ctx, _spec: &AuditStorageSpec) -> Result<Vec<String>, ComponentError> {
    let _ = ctx;
    Err(not_built())
}
