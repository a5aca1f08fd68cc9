//! The `gantryctl` process: crypto provider, argument parsing, a runtime, and the exit
//! code. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use gantryctl::cli::Cli;
use gantryctl::{commands, report};

fn main() -> ExitCode {
    // Before anything touches TLS: with more than one rustls provider compiled in,
    // rustls cannot choose and panics. `Err` only means one is already installed.
    let _already_installed = rustls::crypto::aws_lc_rs::default_provider().install_default();

    // Exits with code 2 on a usage error, 0 for --help/--version.
    let cli = Cli::parse();

    // One request at a time: a single-threaded runtime is enough and starts faster.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return report::print(&anyhow::Error::new(e).context("starting the async runtime")),
    };
    let env = |name: &str| std::env::var(name).ok();
    match runtime.block_on(commands::run(cli, &env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report::print(&e),
    }
}
