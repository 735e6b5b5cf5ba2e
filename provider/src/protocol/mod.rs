//! Everything Terraform sees: the go-plugin handshake, mutual TLS, the
//! tfplugin5 gRPC service and the values on its wire. Layers below this one
//! get typed Rust values and return [`diag::Diagnostics`]; they never see a
//! protobuf type.

pub mod cty;
pub mod diag;
pub mod handshake;
pub mod schema;
pub mod server;
pub mod tls;

/// Code generated from `proto/` by `build.rs`.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]

    pub mod tfplugin5 {
        tonic::include_proto!("tfplugin5");
    }
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}
