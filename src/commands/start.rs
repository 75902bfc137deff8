//! `kdind start`: start a stopped cluster's node again and wait until it is Ready, under the
//! same wait as `up`; its ports and kubeconfig context stay what `up` made them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;

use super::{merge_kubeconfig, ExitStatus};
use crate::cluster::{labels, ClusterName};
use crate::docker::Engine;
use crate::progress::Printer;
use crate::provider::{find_node, wait_until_ready};

/// `wait` None: the wait `up` had (its label), else 5 minutes.
pub async fn run(
    printer: &Printer,
    cluster: &ClusterName,
    wait: Option<Duration>,
) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let node = find_node(&engine, cluster).await?;
    let wait = wait
        .or_else(|| {
            let seconds = node.labels.get(labels::WAIT)?.parse().ok()?;
            Some(Duration::from_secs(seconds))
        })
        .unwrap_or(Duration::from_secs(300));
    if node.state == "running" {
        printer.note(format!("cluster {cluster} is already running"));
        return Ok(ExitStatus::Success);
    }
    // The log keeps the earlier runs' lines: readiness is read from the new ones only.
    let earlier = engine.log_lines(&node.id, false, None).count().await;
    printer.note(format!("starting cluster {cluster}"));
    engine.start_container(&node.id).await?;
    let node_kubeconfig = wait_until_ready(&engine, &node.name, wait, printer, earlier).await?;
    // The node keeps its certificates; the entry is written again in case it was removed.
    if let (Some(path), Some(server)) = (
        node.labels.get(labels::KUBECONFIG),
        node.labels.get(labels::API_ENDPOINT),
    ) {
        merge_kubeconfig(PathBuf::from(path), &node_kubeconfig, &node.name, server).await?;
    }
    printer.note(format!("cluster {cluster} is ready again"));
    Ok(ExitStatus::Success)
}
