//! Everything that describes a cluster independently of how it is run: its validated name,
//! the labels that mark what kdind owns, and the names derived from them.

pub mod contract;
pub mod kubeconfig;
pub mod labels;
mod name;
pub mod node;
pub mod wait;

pub use labels::{Labels, Role};
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

/// The regular files of a tar (as the engine's archive API returns them), by path.
pub fn tar_files(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut archive = tar::Archive::new(bytes);
    let mut files = Vec::new();
    for entry in archive.entries().context("the engine sent no tar")? {
        let mut entry = entry.context("the engine sent a broken tar")?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content)?;
        files.push((path, content));
    }
    Ok(files)
}
