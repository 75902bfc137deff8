//! The command line: clap types only. Nothing here talks to Docker or the file system;
//! `commands` turns these values into plain settings and runs them.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cluster::ClusterName;

/// A real Kubernetes cluster in one container.
///
/// kdind builds a node image (inner dockerd, minikube with the none driver, kubelet,
/// cri-dockerd and a systemctl of its own), starts it as one container, waits until the
/// node is Ready and writes a kubeconfig. Images built with `eval "$(kdind env)"` land
/// straight in the cluster's own docker: no registry, no load step.
#[derive(Debug, Parser)]
#[command(name = "kdind", version, propagate_version = true)]
#[command(after_help = "Quick start:\n  kdind up\n  kubectl get nodes\n  kdind down")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only errors and the command's data (no progress, no notes).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail about what kdind does (repeat for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the node image.
    ///
    /// Downloads pinned, checksum-verified artifacts into the local cache and streams the
    /// build context to the Docker engine.
    #[command(after_help = "Example:\n  kdind build")]
    Build,

    /// Start a cluster and wait until its node is Ready.
    ///
    /// Creates the node container `kdind-<name>`, waits for every stage of the node's
    /// start-up under one deadline and merges a kubeconfig context `kdind-<name>` into
    /// your kubeconfig.
    #[command(
        after_help = "Example:\n  kdind up --name dev\n  kubectl --context kdind-dev get nodes"
    )]
    Up(NameArgs),

    /// Print the kubeconfig of a cluster on stdout.
    #[command(
        after_help = "Examples:\n  kdind kubeconfig > kubeconfig.yaml\n  kdind kubeconfig --internal   # for containers on the kdind network"
    )]
    Kubeconfig(InternalArgs),

    /// Print shell `export` lines for the cluster's kubeconfig and its inner docker.
    ///
    /// After `eval "$(kdind env)"`, `docker build` builds straight into the cluster's
    /// own docker (over TLS) and kubectl talks to the cluster.
    #[command(
        after_help = "Example:\n  eval \"$(kdind env)\"\n  docker build -t app:dev .\n  kubectl run app --image=app:dev --image-pull-policy=Never"
    )]
    Env(InternalArgs),

    /// Remove a cluster and everything kdind created for it.
    ///
    /// Removes the node container, its volumes, the network when no other cluster uses it,
    /// and the cluster's kubeconfig entries. Running it again is harmless.
    #[command(after_help = "Examples:\n  kdind down --name dev\n  kdind down --all")]
    Down(DownArgs),

    /// List the clusters kdind created on this Docker engine.
    #[command(after_help = "Examples:\n  kdind list\n  kdind list -o json")]
    List(OutputArgs),

    /// Inspect kdind's configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the complete default kdind.toml, with comments.
    #[command(after_help = "Example:\n  kdind config defaults > kdind.toml")]
    Defaults,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The cluster's name: lower-case letters, digits and '-', at most 63 characters,
    /// starting and ending with a letter or digit.
    #[arg(long, default_value = "kdind", env = "KDIND_NAME")]
    pub name: ClusterName,
}

#[derive(Debug, Args)]
pub struct InternalArgs {
    #[command(flatten)]
    pub name: NameArgs,

    /// Use the addresses that containers on the `kdind` network reach the node by,
    /// instead of the ports published on the host.
    #[arg(long)]
    pub internal: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The cluster's name (see `kdind up --help`).
    #[arg(
        long,
        default_value = "kdind",
        env = "KDIND_NAME",
        conflicts_with = "all"
    )]
    pub name: ClusterName,

    /// Remove every cluster kdind created on this Docker engine.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable columns.
    Table,
    /// One JSON document, for scripts.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_cluster_name_is_a_usage_error_that_states_the_rule() {
        let error = Cli::try_parse_from(["kdind", "up", "--name", "Bad_Name"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        let text = error.to_string();
        assert!(
            text.contains("lower-case letters, digits and '-'"),
            "{text}"
        );
        assert!(text.contains("63"), "{text}");
    }

    #[test]
    fn name_defaults_to_kdind() {
        let cli = Cli::try_parse_from(["kdind", "down"]).unwrap();
        match cli.command {
            Command::Down(args) => {
                assert_eq!(args.name.to_string(), "kdind");
                assert!(!args.all);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn down_all_conflicts_with_an_explicit_name() {
        let error = Cli::try_parse_from(["kdind", "down", "--all", "--name", "x"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
