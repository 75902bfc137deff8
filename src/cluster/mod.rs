//! Everything that describes a cluster independently of how it is run: its validated name,
//! the labels that mark what kdind owns, and the names derived from them.

pub mod contract;
pub mod kubeconfig;
pub mod labels;
mod name;
pub mod spec;
pub mod wait;

pub use name::ClusterName;

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The host directory where `kdind env` keeps a cluster's kubeconfigs and docker client
/// certificates: `$XDG_CONFIG_HOME/kdind/clusters/<name>` (or `~/.config/...`). `down`
/// removes it.
pub fn host_dir(env: impl Fn(&str) -> Option<String>, cluster: &ClusterName) -> Result<PathBuf> {
    let base = match env("XDG_CONFIG_HOME").filter(|value| !value.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            env("HOME")
                .filter(|value| !value.is_empty())
                .context("cannot find a configuration directory: set HOME or XDG_CONFIG_HOME")?,
        )
        .join(".config"),
    };
    Ok(base
        .join("kdind")
        .join("clusters")
        .join(cluster.to_string()))
}
