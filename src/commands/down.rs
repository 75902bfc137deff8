//! `kdind down`: everything a cluster owns, found by label: the node (stopped gracefully,
//! then removed), its volumes, its kubeconfig entries and the files `kdind env` wrote; the
//! shared network once no node uses it. Running it twice is harmless.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::ExitStatus;
use crate::cluster::labels::{self, Labels, Role};
use crate::cluster::spec::{self, NETWORK};
use crate::cluster::{host_dir, kubeconfig, ClusterName};
use crate::docker::Engine;
use crate::progress::Printer;
use crate::settings::DownTarget;

/// Seconds the node gets to stop kubelet, cri-dockerd and dockerd before it is killed.
const STOP_TIMEOUT_SECONDS: i32 = 10;

pub async fn run(printer: &Printer, target: DownTarget) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let clusters: BTreeSet<ClusterName> = if let DownTarget::One(cluster) = &target {
        BTreeSet::from([cluster.clone()])
    } else {
        // Volumes too: a node that is gone may have left its volume behind.
        let containers = engine.containers_with_label(&Labels::filter(None)).await?;
        let volumes = engine.volumes_with_label(&Labels::filter(None)).await?;
        containers
            .iter()
            .map(|container| &container.labels)
            .chain(volumes.iter().map(|(_, labels)| labels))
            .filter_map(|marks| marks.get(labels::CLUSTER)?.parse().ok())
            .collect()
    };
    let mut removed_any = false;
    for cluster in &clusters {
        removed_any |= remove_cluster(&engine, cluster, printer).await?;
    }
    let ours: Vec<String> = engine
        .networks_with_label(&Labels::role_filter(Role::Network))
        .await?;
    for id in engine.networks_named(NETWORK).await? {
        // The engine keeps a network some node still uses.
        if ours.contains(&id) && engine.remove_network(&id).await? {
            printer.note(format!("removed network {NETWORK} (no node uses it)"));
        }
    }
    if !removed_any {
        match &target {
            DownTarget::All => printer.note("no kdind clusters on this engine; nothing to remove"),
            DownTarget::One(cluster) => printer.note(format!(
                "no cluster named {cluster} on this engine; nothing to remove"
            )),
        }
    }
    Ok(ExitStatus::Success)
}

async fn remove_cluster(engine: &Engine, cluster: &ClusterName, printer: &Printer) -> Result<bool> {
    let filter = Labels::filter(Some(cluster));
    let mut removed = Vec::new();
    let mut kubeconfigs: BTreeSet<PathBuf> = BTreeSet::new();
    for container in engine.containers_with_label(&filter).await? {
        if let Some(path) = container.labels.get(labels::KUBECONFIG) {
            kubeconfigs.insert(PathBuf::from(path));
        }
        engine
            .stop_container(&container.id, STOP_TIMEOUT_SECONDS)
            .await?;
        if engine.remove_container(&container.id).await? {
            removed.push(format!("container {}", container.name));
        }
    }
    for (volume, _) in engine.volumes_with_label(&filter).await? {
        if engine.remove_volume(&volume).await? {
            removed.push(format!("volume {volume}"));
        }
    }
    if let Ok(path) = kubeconfig::default_path(crate::environment::var) {
        kubeconfigs.insert(path);
    }
    let context = spec::container_name(cluster);
    for path in kubeconfigs {
        // kubectl's lock waits with a blocking sleep: off the async runtime's threads.
        let (target, name) = (path.clone(), context.clone());
        let edited =
            tokio::task::spawn_blocking(move || kubeconfig::remove_from_file(&target, &name))
                .await
                .context("the kubeconfig writer stopped")??;
        if edited {
            removed.push(format!("context {context} in {}", path.display()));
        }
    }
    if let Ok(dir) = host_dir(crate::environment::var, cluster) {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|error| anyhow::anyhow!("cannot remove {}: {error}", dir.display()))?;
            removed.push(dir.display().to_string());
        }
    }
    if removed.is_empty() {
        return Ok(false);
    }
    printer.note(format!("removed cluster {cluster}: {}", removed.join(", ")));
    Ok(true)
}
