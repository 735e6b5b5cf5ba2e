//! Read-only lookups.

pub mod account;
