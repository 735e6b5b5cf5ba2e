//! Read-only lookups.

pub mod account;
pub mod environment;
