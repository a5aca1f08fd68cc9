//! One module per resource noun: its verbs (clap types), the RPCs they send, and the
//! human views of the answers. Every RPC goes through [`Context::conn`], so failover and
//! auth are the same everywhere.

pub mod cluster;
pub mod endpoint;
pub mod experiment;
pub mod image;
pub mod instance_type;
pub mod model;
pub mod node;
pub mod pki;
pub mod project;
pub mod training;

use crate::cli::{Cli, Command};
use crate::config::{Config, Env};
use crate::connect::Connector;
use crate::output::Format;

/// What every command needs: where to send requests, for which project, and how to print.
#[derive(Debug, Clone)]
pub struct Context {
    pub conn: Connector,
    pub project: String,
    pub format: Format,
    /// The bearer token requests carry (`endpoint invoke` presents it to the gateway
    /// when no API key is given).
    pub token: Option<String>,
}

/// Resolves the settings and runs the chosen command.
pub async fn run(cli: Cli, env: Env<'_>) -> anyhow::Result<()> {
    // Local files only: needs no server, token or client config.
    if let Command::Pki(cmd) = cli.command {
        return pki::run(cli.global.output, cmd);
    }
    let config = Config::load(&cli.global, env)?;
    let ctx = Context {
        conn: Connector::new(&config)?,
        project: config.project,
        format: cli.global.output,
        token: config.token,
    };
    match cli.command {
        Command::Cluster(cmd) => cluster::run(&ctx, cmd).await,
        Command::InstanceType(cmd) => instance_type::run(&ctx, cmd).await,
        Command::Image(cmd) => image::run(&ctx, cmd).await,
        Command::Node(cmd) => node::run(&ctx, cmd).await,
        Command::Project(cmd) => project::run(&ctx, cmd).await,
        Command::Experiment(cmd) => experiment::run(&ctx, cmd).await,
        Command::Training(cmd) => training::run(&ctx, cmd).await,
        Command::Model(cmd) => model::run(&ctx, cmd).await,
        Command::Endpoint(cmd) => endpoint::run(&ctx, cmd).await,
        Command::Pki(_) => unreachable!("handled before the config is loaded"),
    }
}
