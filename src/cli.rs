//! The command line: clap types only. Nothing here talks to Docker or the file system;
//! `commands` turns these values into plain settings and runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::artifacts::Mirror;
use crate::cluster::spec::PortMapping;
use crate::cluster::ClusterName;
use crate::config::{parse_duration, Arch};
use crate::provider::PrivilegedMode;
use crate::settings::{
    ArtifactSource, BuildAction, BuildSettings, DownTarget, LoadSource, OutputFormat, UpSettings,
};

/// A real Kubernetes cluster in one container.
///
/// kdind builds a node image (inner dockerd, minikube with the none driver, kubelet,
/// cri-dockerd and a systemctl of its own), starts it as one container, waits until the
/// node is Ready and writes a kubeconfig. Images built with `eval "$(kdind env)"` land
/// straight in the cluster's own docker: no registry, no load step.
#[derive(Debug, Parser)]
#[command(name = "kdind", version, propagate_version = true)]
#[command(
    after_help = "Quick start (the main job), on a host with Docker and internet:\n  \
kdind up --allow-unverified   # build the node image when missing, start it, wait until Ready\n  \
kubectl get nodes             # the kubeconfig context kdind-kdind is now current\n  \
kdind down                    # remove everything kdind created\n\n\
--allow-unverified is there for cri-dockerd only, whose releases publish no checksum: pin its \
sha256 in kdind.toml (kdind config defaults shows where) and drop the flag."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// No bars, spinners or notes: only errors, warnings, one line per download and the
    /// command's data.
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
    #[command(
        after_help = "Examples:\n  kdind build\n  kdind build --download-only            # fill the cache, e.g. before going offline\n  kdind build --offline                  # from the cache only\n  kdind build --print-artifacts -o json\n  kdind build --context-out ctx.tar && docker buildx build -t node - < ctx.tar\n  kdind build --mirror https://mirror.example.com/kdind --config kdind.toml"
    )]
    Build(BuildArgs),

    /// Start a cluster and wait until its node is Ready.
    ///
    /// Creates the node container `kdind-<name>`, waits for every stage of the node's
    /// start-up under one deadline and merges a kubeconfig context `kdind-<name>` into
    /// your kubeconfig.
    #[command(
        after_help = "Examples:\n  kdind up --name dev\n  kubectl --context kdind-dev get nodes\n  kdind up --wait 10m --kubeconfig ./kubeconfig   # CI: a file of its own"
    )]
    Up(UpArgs),

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

    /// Stop a cluster's node, keeping its volume, state, ports and kubeconfig context.
    ///
    /// `kdind start` brings the same cluster back. A node kdind did not stop comes back by
    /// itself when the engine restarts (restart policy unless-stopped).
    #[command(after_help = "Example:\n  kdind stop --name dev && kdind start --name dev")]
    Stop(NameArgs),

    /// Start a stopped cluster again and wait until its node is Ready.
    ///
    /// Same ports, same kubeconfig context; the wait is `up`'s.
    #[command(after_help = "Example:\n  kdind start --name dev --wait 10m")]
    Start(StartArgs),

    /// Load images into the cluster's own docker, from this engine or a `docker save` archive.
    ///
    /// The images stream from the engine kdind talks to (or from the archive) into
    /// `docker load` in the node, through the engine: no temporary file, no registry. Every named image
    /// must exist first; a missing one is named and nothing is loaded. Pods then run them
    /// with `imagePullPolicy: IfNotPresent` or `Never`.
    #[command(
        after_help = "Examples:\n  kdind load myapp:dev\n  kdind load --name ci myapp:dev worker:dev\n  kdind load --archive images.tar"
    )]
    Load(LoadArgs),

    /// Collect the node's logs into a directory, for bug reports and CI artifacts.
    ///
    /// The entrypoint's output and the logs of dockerd, containerd, cri-dockerd, kubelet
    /// and minikube. Prints the directory on stdout.
    #[command(after_help = "Example:\n  kdind logs --name dev ./kdind-logs")]
    Logs(LogsArgs),

    /// Check what the engine and its host offer a cluster, each finding with its fix.
    ///
    /// The engine and its version, privileged containers or the capability fallback, the
    /// cgroup version, inotify limits, free disk where the engine keeps its data, and the
    /// `kdind` network. Exits 1 when something would make `kdind up` fail; `up` stops on
    /// the same blocking findings before it creates anything.
    #[command(after_help = "Examples:\n  kdind doctor\n  kdind doctor -o json")]
    Doctor(OutputArgs),

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
pub struct BuildArgs {
    #[command(flatten)]
    pub artifacts: ArtifactArgs,

    /// Download and verify every artifact into the cache, then stop.
    #[arg(long, conflicts_with_all = ["print_artifacts", "print_dockerfile", "context_out"])]
    pub download_only: bool,

    /// List each artifact with its URL, sha256 and whether it is cached; download nothing.
    #[arg(long, conflicts_with_all = ["print_dockerfile", "context_out"])]
    pub print_artifacts: bool,

    /// Print the Dockerfile the build would use (with its labels, which name the artifacts'
    /// checksums: the artifacts are made present first) and stop.
    #[arg(long, conflicts_with = "context_out")]
    pub print_dockerfile: bool,

    /// Write the build context (an uncompressed tar) to FILE, or to stdout with `-`, instead
    /// of building: for `docker buildx build - < FILE` and remote builders.
    #[arg(long, value_name = "FILE")]
    pub context_out: Option<PathBuf>,

    /// The image both build stages start from [default: base_image in kdind.toml].
    #[arg(long, value_name = "IMAGE")]
    pub base_image: Option<String>,

    /// The image reference to build [default: kdind/node:<kubernetes version>-<config hash>].
    #[arg(long, value_name = "REFERENCE")]
    pub tag: Option<String>,

    /// Output format of --print-artifacts.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Table, requires = "print_artifacts")]
    pub output: FormatArg,
}

/// Where the node image's artifacts come from.
#[derive(Debug, Args)]
pub struct ArtifactArgs {
    /// The configuration file (`kdind config defaults` prints a complete one). Checksums
    /// read from upstream are recorded in kdind.lock next to it.
    #[arg(long, env = "KDIND_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Fetch every https://HOST/PATH as URL/HOST/PATH (an internal mirror or proxy cache).
    #[arg(long, env = "KDIND_MIRROR", value_name = "URL")]
    pub mirror: Option<Mirror>,

    /// Use no network at all: every artifact must already be in the cache.
    #[arg(long)]
    pub offline: bool,

    /// Accept artifacts that have no checksum to verify against (a warning names each).
    #[arg(long)]
    pub allow_unverified: bool,

    /// The architecture of the node image [default: the engine's; this machine's when no
    /// engine is involved].
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,

    /// The download cache [default: $XDG_CACHE_HOME/kdind, else ~/.cache/kdind].
    #[arg(long, env = "KDIND_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The Kubernetes version, e.g. v1.35.1 [default: kubernetes_version in kdind.toml].
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub name: NameArgs,

    #[command(flatten)]
    pub artifacts: ArtifactArgs,

    /// Run this node image instead of building (or reusing) the one kdind.toml describes.
    #[arg(long, value_name = "REFERENCE")]
    pub image: Option<String>,

    /// How long to wait for the node to be Ready, e.g. 90s, 5m, 1h [default: `[cluster]
    /// wait` in kdind.toml, 5m].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Option<std::time::Duration>,

    /// The host port for the API server [default: a free port, chosen once and kept].
    #[arg(long, value_name = "PORT")]
    pub api_port: Option<u16>,

    /// The host address the API server and the inner docker's TLS port are published on.
    /// Anything but a loopback address exposes the cluster to the network (kdind warns).
    /// [default: 127.0.0.1; all of the engine host's addresses when the engine is remote]
    #[arg(long, value_name = "ADDRESS")]
    pub listen_address: Option<std::net::IpAddr>,

    /// The name or address clients reach the published ports by, written into the
    /// kubeconfig and `kdind env` and into the API server's and inner docker's certificates
    /// [default: the engine's host for a remote engine (DOCKER_HOST=tcp://HOST:PORT or the
    /// Docker context), else the listen address].
    #[arg(long, value_name = "HOST")]
    pub server_host: Option<String>,

    /// Publish a node port on the host: [ADDRESS:]HOST_PORT:NODE_PORT[/tcp|udp], e.g.
    /// `8080:30080` for a NodePort Service on 30080. Repeatable; replaces `[cluster] ports`
    /// of kdind.toml. On 127.0.0.1 unless ADDRESS says otherwise (kdind warns when it is
    /// not a loopback address).
    #[arg(long = "port", value_name = "MAPPING")]
    pub ports: Vec<PortMapping>,

    /// How the node gets its privileges: `auto` asks for a privileged container and, when
    /// the engine cannot grant one, retries with the explicit capability set and says so.
    #[arg(long, value_enum, default_value_t = PrivilegedArg::Auto)]
    pub privileged_mode: PrivilegedArg,

    /// Keep a node that failed to become Ready, to inspect it (kdind says how).
    #[arg(long)]
    pub retain: bool,

    /// Merge the cluster into this kubeconfig file instead of the first file of
    /// $KUBECONFIG (or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Output format of the report on stdout.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Table)]
    pub output: FormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrivilegedArg {
    /// Privileged, falling back to the capability set when the engine refuses.
    Auto,
    /// Privileged only.
    Always,
    /// The explicit capability set only.
    Caps,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub name: NameArgs,

    /// How long to wait for the node to be Ready, e.g. 90s, 5m, 1h [default: the wait
    /// `up` had].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub name: NameArgs,

    /// Where to write the logs [default: ./kdind-logs-<name>].
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub name: NameArgs,

    /// Images on this engine to load (as `docker save` names them: NAME[:TAG] or an ID).
    #[arg(required_unless_present = "archive", conflicts_with = "archive")]
    pub images: Vec<String>,

    /// A `docker save` archive to load instead (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
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
    #[arg(short, long, value_enum, default_value_t = FormatArg::Table)]
    pub output: FormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Human-readable columns.
    Table,
    /// One JSON document, for scripts.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    Amd64,
    Arm64,
}

// The parsed command line into the plain settings commands take.

impl From<FormatArg> for OutputFormat {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Table => OutputFormat::Table,
            FormatArg::Json => OutputFormat::Json,
        }
    }
}

impl From<ArchArg> for Arch {
    fn from(arch: ArchArg) -> Self {
        match arch {
            ArchArg::Amd64 => Arch::Amd64,
            ArchArg::Arm64 => Arch::Arm64,
        }
    }
}

impl From<PrivilegedArg> for PrivilegedMode {
    fn from(mode: PrivilegedArg) -> Self {
        match mode {
            PrivilegedArg::Auto => PrivilegedMode::Auto,
            PrivilegedArg::Always => PrivilegedMode::Always,
            PrivilegedArg::Caps => PrivilegedMode::Caps,
        }
    }
}

impl From<ArtifactArgs> for ArtifactSource {
    fn from(args: ArtifactArgs) -> Self {
        ArtifactSource {
            config: args.config,
            mirror: args.mirror,
            offline: args.offline,
            allow_unverified: args.allow_unverified,
            arch: args.arch.map(Arch::from),
            cache_dir: args.cache_dir,
            kubernetes_version: args.kubernetes_version,
        }
    }
}

impl From<BuildArgs> for BuildSettings {
    fn from(args: BuildArgs) -> Self {
        let action = if args.download_only {
            BuildAction::DownloadOnly
        } else if args.print_artifacts {
            BuildAction::PrintArtifacts(args.output.into())
        } else if args.print_dockerfile {
            BuildAction::PrintDockerfile
        } else if let Some(path) = args.context_out {
            BuildAction::ContextOut(path)
        } else {
            BuildAction::Build
        };
        BuildSettings {
            source: args.artifacts.into(),
            action,
            base_image: args.base_image,
            tag: args.tag,
        }
    }
}

impl From<UpArgs> for UpSettings {
    fn from(args: UpArgs) -> Self {
        UpSettings {
            cluster: args.name.name,
            source: args.artifacts.into(),
            image: args.image,
            wait: args.wait,
            api_port: args.api_port,
            listen_address: args.listen_address,
            server_host: args.server_host,
            ports: args.ports,
            privileged_mode: args.privileged_mode.into(),
            retain: args.retain,
            kubeconfig: args.kubeconfig,
            output: args.output.into(),
        }
    }
}

impl From<DownArgs> for DownTarget {
    fn from(args: DownArgs) -> Self {
        if args.all {
            DownTarget::All
        } else {
            DownTarget::One(args.name)
        }
    }
}

impl From<LoadArgs> for LoadSource {
    fn from(args: LoadArgs) -> Self {
        match args.archive {
            Some(path) => LoadSource::Archive(path),
            None => LoadSource::Images(args.images),
        }
    }
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
    fn output_format_belongs_to_print_artifacts() {
        let error = Cli::try_parse_from(["kdind", "build", "-o", "json"]).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        let error =
            Cli::try_parse_from(["kdind", "build", "--mirror", "mirror.local"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn down_all_conflicts_with_an_explicit_name() {
        let error = Cli::try_parse_from(["kdind", "down", "--all", "--name", "x"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
