//! `kdind logs`: the node's logs in a directory: the entrypoint's output (the container
//! log) and the files under /var/log/kdind (dockerd, containerd, cri-dockerd, kubelet,
//! minikube), for bug reports and CI artifacts.

use std::path::PathBuf;

use anyhow::{Context, Result};
use futures_util::TryStreamExt;

use super::{output, ExitStatus};
use crate::cluster::ClusterName;
use crate::docker::Engine;
use crate::fsutil::write_atomic;
use crate::progress::Printer;
use crate::provider::{find_node, node_files};

use crate::cluster::contract::LOG_DIR as NODE_LOG_DIR;

/// Into `dir`, or ./kdind-logs-<name> when None.
pub async fn run(
    printer: &Printer,
    cluster: &ClusterName,
    dir: Option<PathBuf>,
) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let node = find_node(&engine, cluster).await?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(format!("kdind-logs-{cluster}")));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let lines: Vec<String> = engine
        .log_lines(&node.id, false, None)
        .try_collect()
        .await?;
    let mut entrypoint = lines.join("\n");
    entrypoint.push('\n');
    write_atomic(&dir.join("entrypoint.log"), entrypoint.as_bytes(), 0o644)?;
    let mut written = vec!["entrypoint.log".to_owned()];

    match node_files(&engine, &node.id, NODE_LOG_DIR).await {
        Ok(files) => {
            for (path, bytes) in files {
                let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
                if name.is_empty() || name.starts_with('.') {
                    continue;
                }
                write_atomic(&dir.join(&name), &bytes, 0o644)?;
                written.push(name);
            }
        }
        Err(error) => printer.warn(format!("no service logs in the node: {error:#}")),
    }
    printer.note(format!("wrote {} to {}", written.join(", "), dir.display()));
    output(&format!("{}\n", dir.display()))?;
    Ok(ExitStatus::Success)
}
