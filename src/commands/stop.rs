//! `kdind stop`: stop a cluster's node and keep everything else (its volume, its state, its
//! ports and kubeconfig entries) for `kdind start`.

use anyhow::Result;

use super::ExitStatus;
use crate::cluster::ClusterName;
use crate::docker::Engine;
use crate::progress::Printer;
use crate::provider::find_node;

/// Seconds the node gets to stop kubelet, cri-dockerd and dockerd (and with them the
/// cluster's containers) before the engine kills it.
const STOP_TIMEOUT_SECONDS: i32 = 30;

pub async fn run(printer: &Printer, cluster: &ClusterName) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let node = find_node(&engine, cluster).await?;
    if node.state != "running" {
        printer.note(format!("cluster {cluster} is not running ({})", node.state));
        return Ok(ExitStatus::Success);
    }
    printer.note(format!("stopping cluster {cluster}"));
    engine
        .stop_container(&node.id, STOP_TIMEOUT_SECONDS)
        .await?;
    printer.note(format!(
        "stopped cluster {cluster}; `kdind start --name {cluster}` brings it back"
    ));
    Ok(ExitStatus::Success)
}
