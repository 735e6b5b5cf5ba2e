//! `idis_environment`: schema, validation, planning and the apply
//! orchestrator over the components.

pub mod spec;
