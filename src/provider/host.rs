//! What the engine's host offers a node, found out with throwaway containers of a node
//! image (they work the same on a remote engine): whether privileged containers are
//! granted, the inotify limits, and the free space where the engine keeps its data. The
//! doctor (`crate::doctor`) judges the facts.

use crate::cluster::labels;
use crate::cluster::spec::NETWORK;
use crate::docker::{Engine, RunOnce, StartRefusal};
use crate::doctor::{parse_probe, probe_script, HostProbe, NetworkFact, PROBE_DATA};

/// The newest node image on the engine, to probe with.
pub async fn probe_image(engine: &Engine) -> Result<Option<String>, String> {
    let images = engine
        .images_with_label(labels::CONFIG_HASH)
        .await
        .map_err(|error| error.to_string())?;
    Ok(images.into_iter().next().map(|(tag, _)| tag))
}

/// Inotify limits and free space, read in a container of `image` with the engine's data
/// directory mounted read-only.
pub async fn probe_host(
    engine: &Engine,
    image: &str,
    data_root: &str,
) -> Result<HostProbe, String> {
    if data_root.is_empty() {
        return Err("the engine does not say where it keeps its data".to_owned());
    }
    let script = probe_script();
    let (code, output) = engine
        .run_once(RunOnce {
            image,
            command: &["sh", "-c", &script],
            labels: labels::helper(),
            binds: vec![format!("{data_root}:{PROBE_DATA}:ro")],
            ..RunOnce::default()
        })
        .await
        .map_err(|error| error.to_string())?;
    match parse_probe(&output) {
        Some(probe) if code == 0 => Ok(probe),
        _ => Err(format!(
            "the probe in {image} exited {code}: {}",
            output.trim()
        )),
    }
}

/// Whether the engine starts a privileged container of `image`.
pub async fn privileged_granted(engine: &Engine, image: &str) -> Result<bool, String> {
    let outcome = engine
        .run_once(RunOnce {
            image,
            command: &["true"],
            labels: labels::helper(),
            privileged: true,
            ..RunOnce::default()
        })
        .await;
    match outcome {
        Ok(_) => Ok(true),
        Err(error) if error.start_refusal() == Some(StartRefusal::Privileged) => Ok(false),
        Err(error) => Err(error.to_string()),
    }
}

/// The networks named `kdind`, and whether kdind made the one there is.
pub async fn network_fact(engine: &Engine) -> Result<NetworkFact, String> {
    let named = engine
        .networks_named(NETWORK)
        .await
        .map_err(|error| error.to_string())?;
    let ours = engine
        .networks_with_label(&labels::Labels::role_filter(labels::Role::Network))
        .await
        .map_err(|error| error.to_string())?;
    Ok(match named.as_slice() {
        [] => NetworkFact::Missing,
        [one] if ours.contains(one) => NetworkFact::Ours,
        [_] => NetworkFact::Foreign,
        several => NetworkFact::Several(several.len()),
    })
}
