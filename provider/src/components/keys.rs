//! keys: The platform KMS key and one customer-managed key per tenant, aliases `alias/idis/<env>/<tenant>`, rotation on; removed tenants' keys are scheduled for deletion, never deleted at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ComponentError, Ctx};
use crate::environment::spec::KeysSpec;

pub const COMPONENT: &str = "keys";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeysState {
    pub platform_key_arn: String,
    pub platform_key_id: String,
    /// Tenant name to key ARN, for every tenant alias that exists.
    pub tenant_key_arns: BTreeMap<String, String>,
    /// True only when rotation is on for every key.
    pub rotation_enabled: bool,
}

fn not_built() -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: "not implemented yet".to_string(),
    }
}

pub async fn find(ctx: &Ctx) -> Result<Option<KeysState>, ComponentError> {
    let _ = (ctx, BTreeMap::<String, String>::new());
    Err(not_built())
}

pub async fn ensure(ctx: &Ctx, _spec: &KeysSpec) -> Result<KeysState, ComponentError> {
    let _ = ctx;
    Err(not_built())
}

/// Returns warnings for the plan/apply output (e.g. what was kept).
pub async fn delete(ctx: &Ctx, _spec: &KeysSpec) -> Result<Vec<String>, ComponentError> {
    let _ = ctx;
    Err(not_built())
}
