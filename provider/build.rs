//! Compiles the tfplugin5 and go-plugin protocol definitions in `../proto`
//! with protox (a pure-Rust protobuf compiler), so no `protoc` has to be
//! installed on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto");
    let files = [
        "tfplugin5.proto",
        "grpc_controller.proto",
        "grpc_stdio.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={proto_dir}/{file}");
    }
    let descriptors = protox::compile(files, [proto_dir])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Clients are only used by tests, over channels they build themselves.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
