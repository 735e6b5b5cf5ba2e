//! `idis_environment`: the schema, validation, planning and refresh
//! composed from the components' descriptions, and the orchestrator that
//! applies, reads, imports and destroys the components in order.

pub mod app;
pub mod list;
pub mod manifests;
pub mod observe;
pub mod orchestrate;
pub mod plan;
pub mod preflight;
pub mod schema;
pub mod upgrade;
pub mod validate;
