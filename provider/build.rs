//! Compiles the tfplugin5 and go-plugin protocol definitions in `../proto`
//! with protox (a pure-Rust protobuf compiler), so no `protoc` has to be
//! installed on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): cargo may reuse a compiled build
    // script across checkouts that share one target directory (as .ci/run's
    // cache does), and a path baked in at compile time is the other clone's.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let proto_dir = format!("{manifest_dir}/../proto");
    let files = [
        "tfplugin5.proto",
        "grpc_controller.proto",
        "grpc_stdio.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={proto_dir}/{file}");
    }
    let descriptors = protox::compile(files, [&proto_dir])?;
    // Terraform's comment on `legacy_type_system` holds an indented banner
    // that rustdoc would take for a doctest.
    let mut messages = prost_build::Config::new();
    messages.disable_comments([
        ".tfplugin5.PlanResourceChange.Response.legacy_type_system",
        ".tfplugin5.ApplyResourceChange.Response.legacy_type_system",
    ]);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Clients are only used by tests, over channels they build themselves.
        .build_transport(false)
        .compile_fds_with_config(descriptors, messages)?;
    Ok(())
}
