//! terraform-provider-idis: one Terraform resource that builds and keeps a
//! whole IDIS environment on AWS.
//!
//! Layers, each with one job:
//! - [`protocol`]: tfplugin5 over gRPC, the go-plugin handshake, values on
//!   the wire. Nothing below it sees a protobuf type.
//! - [`provider`]: the provider block, AWS configuration and clients, and
//!   dispatch to data sources and resources.
//! - [`environment`]: `idis_environment`: schema, plan, orchestration.
//! - [`components`]: one module per AWS component (find / ensure / delete).
//! - [`data_sources`]: read-only lookups (`idis_account`).
//! - [`actions`]: drills Terraform 1.14+ invokes (`idis_restore_check`,
//!   `idis_failover_drill`), also a subcommand for 1.11.
//! - [`ephemeral`]: short-lived values never stored (`idis_cluster_auth`,
//!   `idis_database_credentials`).

pub mod actions;
pub mod components;
pub mod data_sources;
pub mod environment;
pub mod ephemeral;
pub mod logging;
pub mod protocol;
pub mod provider;

/// The provider's version, as Terraform's registry address records it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
