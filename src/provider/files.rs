//! Reaching a cluster's node: finding its container by label, and reading files out of it
//! through the engine's archive API.

use anyhow::{Context, Result};

use crate::cluster::contract::KUBECONFIG as NODE_KUBECONFIG;
use crate::cluster::labels::{self, Labels, Role};
use crate::cluster::{kubeconfig, ClusterName};
use crate::docker::{ContainerInfo, Engine};

/// The node container of a cluster, or an error that says how to make one.
pub async fn find_node(engine: &Engine, cluster: &ClusterName) -> Result<ContainerInfo> {
    let containers = engine
        .containers_with_label(&Labels::filter(Some(cluster)))
        .await?;
    containers
        .into_iter()
        .find(|container| {
            container.labels.get(labels::ROLE).map(String::as_str) == Some(Role::Node.as_str())
        })
        .with_context(|| format!("no cluster named {cluster} on this engine (`kdind list` shows the clusters; `kdind up --name {cluster}` makes one)"))
}

/// The regular files under `path` in the node (a file, or a directory), by their path in
/// the archive (which starts with `path`'s last component).
pub async fn node_files(
    engine: &Engine,
    container: &str,
    path: &str,
) -> Result<Vec<(String, Vec<u8>)>> {
    let archive = engine
        .copy_from(container, path)
        .await
        .with_context(|| format!("the node has no {path}; is it ready?"))?;
    tar_files(&archive)
}

/// One file out of the node.
pub async fn node_file(engine: &Engine, container: &str, path: &str) -> Result<Vec<u8>> {
    let (_, bytes) = node_files(engine, container, path)
        .await?
        .into_iter()
        .next()
        .with_context(|| format!("{path} came back empty from the node"))?;
    Ok(bytes)
}

/// The node's published kubeconfig, rewritten for `server` with everything named `context`.
pub async fn read_kubeconfig(
    engine: &Engine,
    container: &str,
    context: &str,
    server: &str,
) -> Result<String> {
    let bytes = node_file(engine, container, NODE_KUBECONFIG).await?;
    rewrite_kubeconfig(bytes, context, server)
}

/// The node's kubeconfig bytes, rewritten for `server` with everything named `context`.
pub fn rewrite_kubeconfig(bytes: Vec<u8>, context: &str, server: &str) -> Result<String> {
    let text = String::from_utf8(bytes).context("the node's kubeconfig is not UTF-8")?;
    kubeconfig::rewrite(&text, context, server)
}

/// The regular files of a tar (as the engine's archive API returns them), by path.
fn tar_files(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
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
