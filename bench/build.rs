//! Generates the etcd v3 gRPC client from `proto/etcd.proto` with protox (pure Rust: no
//! `protoc` or Google's .proto includes needed). Client only: the benchmark never serves etcd.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "proto/etcd.proto";
    println!("cargo:rerun-if-changed={file}");
    let fds = protox::compile([file], ["proto"])?;
    tonic_prost_build::configure().build_server(false).compile_fds(fds)?;
    Ok(())
}
