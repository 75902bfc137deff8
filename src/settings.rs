//! The plain settings commands run on. `cli.rs` turns the parsed command line into these at
//! the edge; commands never see clap types, and nothing here reads the environment.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::artifacts::Mirror;
use crate::cluster::spec::PortMapping;
use crate::cluster::ClusterName;
use crate::config::Arch;
use crate::provider::PrivilegedMode;

/// How a command prints its data on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Human-readable columns.
    Table,
    /// One JSON document, for scripts.
    Json,
}

/// Where the node image's artifacts come from (`build` and `up`).
#[derive(Debug, Clone, Default)]
pub struct ArtifactSource {
    /// kdind.toml; None means the defaults.
    pub config: Option<PathBuf>,
    pub mirror: Option<Mirror>,
    pub offline: bool,
    pub allow_unverified: bool,
    /// Asked for on the command line; otherwise the engine's (or this machine's when no
    /// engine is involved).
    pub arch: Option<Arch>,
    /// None means the default cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Over kdind.toml's `kubernetes_version`.
    pub kubernetes_version: Option<String>,
}

/// `kdind build`.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub source: ArtifactSource,
    pub action: BuildAction,
    pub base_image: Option<String>,
    pub tag: Option<String>,
}

/// What `kdind build` does with the artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildAction {
    Build,
    DownloadOnly,
    PrintArtifacts(OutputFormat),
    PrintDockerfile,
    /// Write the build context to a file, or to stdout for `-`.
    ContextOut(PathBuf),
}

/// `kdind up`.
#[derive(Debug, Clone)]
pub struct UpSettings {
    pub cluster: ClusterName,
    pub source: ArtifactSource,
    /// Run this image instead of the one kdind.toml describes.
    pub image: Option<String>,
    /// Over kdind.toml's `[cluster] wait`.
    pub wait: Option<Duration>,
    pub api_port: Option<u16>,
    /// None: 127.0.0.1, or 0.0.0.0 for a remote engine.
    pub listen_address: Option<IpAddr>,
    /// None: the remote engine's host, else the listen address.
    pub server_host: Option<String>,
    /// Node ports published on the host (`--port`); empty leaves kdind.toml's.
    pub ports: Vec<PortMapping>,
    pub privileged_mode: PrivilegedMode,
    pub retain: bool,
    /// None means the first file of $KUBECONFIG, or ~/.kube/config.
    pub kubeconfig: Option<PathBuf>,
    pub output: OutputFormat,
}

/// Which clusters `kdind down` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownTarget {
    One(ClusterName),
    All,
}

/// What `kdind load` loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadSource {
    /// Images from the engine, by the names `docker save` takes.
    Images(Vec<String>),
    /// A `docker save` archive; `-` is standard input.
    Archive(PathBuf),
}
