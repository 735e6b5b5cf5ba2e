//! `idis_environment`: schema, validation, planning and the apply
//! orchestrator over the components.

pub mod observe;
pub mod orchestrate;
pub mod plan;
pub mod schema;
pub mod spec;
pub mod validate;
