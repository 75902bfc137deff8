//! Following a node's log to Ready: its phase lines drive the display, a failure or a stop
//! is explained from the node's own words, and the kubeconfig it publishes is fetched while
//! readiness is decided.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;

use super::files::node_file;
use crate::cluster::contract;
use crate::cluster::wait::{Phase, Startup};
use crate::digest::hash_bytes;
use crate::docker::Engine;
use crate::progress::{Printer, Spinner};

/// Follow the node's log until it says `ready`, fails, stops, or the deadline passes, and
/// return the kubeconfig it published. The first `skip_lines` lines are an earlier run's
/// (a node started again). The staged kubeconfig is fetched while readiness is
/// decided and used when its sha256 is the one the node published.
pub async fn wait_until_ready(
    engine: &Engine,
    container: &str,
    deadline: Duration,
    printer: &Printer,
    skip_lines: usize,
) -> Result<String> {
    let mut startup = Startup::default();
    let mut prefetch = None;
    let spinner = printer
        .animated()
        .then(|| Spinner::new("node: container start"));
    let followed = tokio::time::timeout(deadline, async {
        let mut lines = std::pin::pin!(engine.log_lines(container, true, None).skip(skip_lines));
        while let Some(line) = lines.next().await {
            let line = line?;
            if printer.verbose() > 0 {
                match &spinner {
                    Some(spinner) => spinner.println(&line),
                    None => printer.detail(&line),
                }
            }
            match startup.line(&line) {
                Some(Phase::Stage(stage)) => {
                    let message = format!("node: {stage}");
                    match &spinner {
                        Some(spinner) => spinner.set(&message),
                        None => printer.note(&message),
                    }
                }
                Some(Phase::ShuttingDown) => {
                    let message = format!("node: shutting down during stage {}", startup.stage());
                    match &spinner {
                        Some(spinner) => spinner.set(&message),
                        None => printer.note(&message),
                    }
                }
                Some(Phase::KubeconfigStaged) => {
                    let engine = engine.clone();
                    let container = container.to_owned();
                    prefetch = Some(tokio::spawn(async move {
                        node_file(&engine, &container, contract::STAGED_KUBECONFIG).await
                    }));
                }
                Some(Phase::Ready) => {
                    match &spinner {
                        Some(spinner) => spinner.set("node: ready"),
                        None => printer.note("node: ready"),
                    }
                    return anyhow::Ok(true);
                }
                _ => {}
            }
        }
        anyhow::Ok(false)
    })
    .await;
    if let Some(spinner) = spinner {
        spinner.clear();
    }
    match followed {
        Ok(Ok(true)) => {
            if let (Some(prefetched), Some(published)) = (prefetch, startup.published()) {
                if let Ok(Ok(bytes)) = prefetched.await {
                    if hash_bytes(&bytes) == published {
                        return String::from_utf8(bytes)
                            .context("the node's kubeconfig is not UTF-8");
                    }
                }
            }
            let bytes = node_file(engine, container, contract::KUBECONFIG).await?;
            String::from_utf8(bytes).context("the node's kubeconfig is not UTF-8")
        }
        Ok(Ok(false)) => {
            // The log ended: the node stopped.
            let state = engine.container_state(container).await?;
            let why = match &state {
                Some(state) if state.oom_killed => {
                    format!(
                        "was killed for lack of memory (exit code {})",
                        state.exit_code
                    )
                }
                Some(state) => format!("exited with code {}", state.exit_code),
                None => "was removed".to_owned(),
            };
            let reason = match startup.failure() {
                Some((stage, reason)) if !reason.is_empty() => {
                    format!("the node failed at stage `{stage}`: {reason}")
                }
                _ if startup.shut_down() => format!(
                    "the node was shut down from outside (`docker stop`, `kdind down` or an \
                     engine restart) during stage `{}`",
                    startup.stage()
                ),
                _ => format!("the node stopped during stage `{}`", startup.stage()),
            };
            bail!(
                "{reason}; the container {why}. Its last log lines:\n{}",
                startup.tail()
            )
        }
        Ok(Err(error)) => Err(error),
        Err(_) => bail!(
            "the node was not Ready within {}: it is stuck in stage `{}`. Its last log lines:\n{}",
            humanize(deadline),
            startup.stage(),
            startup.tail()
        ),
    }
}

fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
