//! The command tree: global flags and one subcommand per resource noun. Each noun's own
//! verbs and flags live beside its handler in `commands/<noun>.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::commands::{cluster, endpoint, experiment, image, instance_type, model, node, pki, project, training};
use crate::output::Format;
use crate::parse;

#[derive(Debug, Parser)]
#[command(
    name = "gantryctl",
    version,
    about = "Administer a Gantry cluster: catalogs, nodes, experiments and trainings",
    after_help = "Settings come from flags, then GANTRY_* environment variables, then the client \
                  config file (~/.config/gantry/client.toml, written by the scheduler on its first start)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

// Connection and output settings, accepted before or after the subcommand. Plain
// comments, not docs: clap would show a doc comment here as the program's description.
//
// Environment variables are read by `Config::load`, not by clap, so that the precedence
// (flags > env > file) lives in one place and is testable without touching the process
// environment.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Client config file [env: GANTRY_CONFIG] [default:
    /// $XDG_CONFIG_HOME/gantry/client.toml or ~/.config/gantry/client.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Scheduler URL; repeat or comma-separate to list replicas, tried in order
    /// [env: GANTRY_SERVERS]
    #[arg(long = "server", global = true, value_name = "URL", value_delimiter = ',')]
    pub servers: Vec<String>,

    /// API token, sent as `authorization: Bearer <token>` [env: GANTRY_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// CA certificate (PEM) that signed the servers' certificates; without it the
    /// system roots are trusted [env: GANTRY_CA_CERT]
    #[arg(long, global = true, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,

    /// Project of experiments and trainings [env: GANTRY_PROJECT] [default: default]
    #[arg(short, long, global = true, value_name = "NAME")]
    pub project: Option<String>,

    /// Output format
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Time limit for connecting to a server and for each request (e.g. 10s, 500ms)
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = parse::duration)]
    pub timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Raft cluster status
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Instance types: named resource shapes (CPU, memory, GPUs)
    #[command(subcommand)]
    InstanceType(instance_type::InstanceTypeCommand),
    /// Images: what training containers run
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Nodes registered by agents
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Projects: the storage roots each may read and write
    #[command(subcommand)]
    Project(project::ProjectCommand),
    /// Experiments: groups of trainings
    #[command(subcommand)]
    Experiment(experiment::ExperimentCommand),
    /// Trainings: runs of an algorithm on one or more instances
    #[command(subcommand)]
    Training(training::TrainingCommand),
    /// Models: trained artifacts registered for serving
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Serving endpoints, stages, stage resources and API keys
    #[command(subcommand)]
    Endpoint(endpoint::EndpointCommand),
    /// The cluster's certificates: create the CA, issue replica certificates (local
    /// files; no server is contacted)
    #[command(subcommand)]
    Pki(pki::PkiCommand),
}

/// `--stale`, accepted by every list and get.
#[derive(Debug, Clone, Copy, Args)]
pub struct ReadArgs {
    /// Answer from the contacted replica's local state, without confirming it is the
    /// leader (faster, works without a quorum, may lag behind)
    #[arg(long)]
    pub stale: bool,
}

impl ReadArgs {
    pub fn options(self) -> Option<gantry_proto::v1::ReadOptions> {
        Some(gantry_proto::v1::ReadOptions { stale: self.stale })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli =
            Cli::try_parse_from(["gantryctl", "node", "list", "-o", "json", "--server", "https://a:1,https://b:2"])
                .unwrap();
        assert_eq!(cli.global.output, Format::Json);
        assert_eq!(cli.global.servers, ["https://a:1", "https://b:2"]);
        assert_eq!(cli.global.timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let err = Cli::try_parse_from(["gantryctl", "instance-type", "put", "m1", "--cpu", "x", "--memory", "1Gi"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
