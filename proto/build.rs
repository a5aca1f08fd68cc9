//! Generates the gRPC code from `proto/` with protox (pure Rust: no `protoc` needed) and
//! keeps the encoded descriptor set for server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/gantry/v1/common.proto",
        "proto/gantry/v1/cluster.proto",
        "proto/gantry/v1/project.proto",
        "proto/gantry/v1/catalog.proto",
        "proto/gantry/v1/node.proto",
        "proto/gantry/v1/experiment.proto",
        "proto/gantry/v1/training.proto",
        "proto/gantry/v1/endpoint.proto",
        "proto/gantry/v1/agent.proto",
        "proto/gantry/v1/raft.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("gantry_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
