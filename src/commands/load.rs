//! `kdind load`: images into the cluster's own docker, streamed from the engine kdind talks
//! to (`docker save` through its API) or from an archive, into `docker load` run in the node
//! through the engine's exec API. Nothing is written to disk on the way, and memory stays
//! flat; it works the same against a remote engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures_util::{Stream, StreamExt};

use super::{output, ExitStatus};
use crate::cluster::ClusterName;
use crate::docker::Engine;
use crate::progress::{Printer, Spinner};
use crate::provider::find_node;
use crate::settings::LoadSource;

pub async fn run(
    printer: &Printer,
    cluster: &ClusterName,
    source: LoadSource,
) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let node = find_node(&engine, cluster).await?;
    // Every image must be there before anything is sent: nothing is half-loaded.
    let mut missing = Vec::new();
    let images: &[String] = match &source {
        LoadSource::Images(images) => images,
        LoadSource::Archive(_) => &[],
    };
    for image in images {
        if engine.image(image).await?.is_none() {
            missing.push(image.as_str());
        }
    }
    if !missing.is_empty() {
        bail!(
            "the engine at {} has no {}; nothing was loaded into cluster {cluster}",
            engine.host(),
            missing.join(", ")
        );
    }
    let started = std::time::Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let spinner = printer
        .animated()
        .then(|| Spinner::new(&format!("loading into cluster {cluster}")));
    let shown = spinner.clone();
    let report = move |total: u64| {
        if let Some(spinner) = &shown {
            spinner.set(&format!(
                "loading into cluster {cluster}: {} MiB streamed into docker load",
                total >> 20
            ));
        }
    };
    let load = ["docker", "load"];
    let outcome = match &source {
        LoadSource::Archive(path) => {
            let body = counted(archive_stream(path)?, sent.clone(), report);
            engine.exec_with_input(&node.name, &load, body).await
        }
        LoadSource::Images(images) => {
            let references: Vec<&str> = images.iter().map(String::as_str).collect();
            // The export is read on a task of its own, so that taking it from the engine and
            // writing it into the node go on at once, as the two ends of a pipe would.
            let exported = engine
                .export_images(&references)
                .map(|piece| piece.map_err(std::io::Error::other));
            let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
            tokio::spawn(async move {
                let mut exported = std::pin::pin!(exported);
                while let Some(piece) = exported.next().await {
                    if sender.send(piece).await.is_err() {
                        break;
                    }
                }
            });
            let body = counted(
                futures_util::stream::poll_fn(move |context| receiver.poll_recv(context)),
                sent.clone(),
                report,
            );
            engine.exec_with_input(&node.name, &load, body).await
        }
    };
    if let Some(spinner) = spinner {
        spinner.clear();
    }
    let (code, said) = outcome?;
    let loaded = loaded_names(&said);
    if code != 0 || loaded.is_empty() {
        bail!(
            "`docker load` in {} failed (exit {code}): {}",
            node.name,
            said.trim()
        );
    }
    printer.note(format!(
        "loaded {} into cluster {cluster} ({} MiB in {:.1} s)",
        loaded.join(", "),
        sent.load(Ordering::Relaxed) >> 20,
        started.elapsed().as_secs_f64()
    ));
    output(&format!("{}\n", loaded.join("\n")))?;
    Ok(ExitStatus::Success)
}

/// The names in `docker load`'s output.
fn loaded_names(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            line.strip_prefix("Loaded image: ")
                .or_else(|| line.strip_prefix("Loaded image ID: "))
        })
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Count the bytes that pass, telling `report` the total.
fn counted<S>(
    body: S,
    sent: Arc<AtomicU64>,
    report: impl Fn(u64),
) -> impl Stream<Item = std::io::Result<bytes::Bytes>>
where
    S: Stream<Item = std::io::Result<bytes::Bytes>>,
{
    body.inspect(move |piece| {
        if let Ok(piece) = piece {
            let total = sent.fetch_add(piece.len() as u64, Ordering::Relaxed) + piece.len() as u64;
            report(total);
        }
    })
}

/// An archive file (or standard input for `-`) in 1 MiB pieces.
fn archive_stream(
    path: &std::path::Path,
) -> Result<impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static> {
    use tokio::io::AsyncReadExt;
    let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = if path.as_os_str() == "-" {
        Box::new(tokio::io::stdin())
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Box::new(tokio::fs::File::from_std(file))
    };
    Ok(futures_util::stream::unfold(
        reader,
        |mut reader| async move {
            let mut buffer = vec![0u8; 1 << 20];
            match reader.read(&mut buffer).await {
                Ok(0) => None,
                Ok(read) => {
                    buffer.truncate(read);
                    Some((Ok(bytes::Bytes::from(buffer)), reader))
                }
                Err(error) => Some((Err(error), reader)),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaded_names_come_from_docker_loads_output() {
        let said = "Loaded image: a/b:1\nsomething else\nLoaded image ID: sha256:abc\n";
        assert_eq!(loaded_names(said), ["a/b:1", "sha256:abc"]);
    }
}
