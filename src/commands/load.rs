//! `kdind load`: images into the cluster's own docker, streamed from the engine kdind talks
//! to (`docker save` through the API) or from an archive, into the node's docker over its
//! TLS port. Nothing is written to disk on the way, and memory stays flat.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures_util::{Stream, StreamExt};

use super::kubeconfig::inner_docker;
use super::{output, ExitStatus};
use crate::cli::LoadArgs;
use crate::docker::Engine;
use crate::progress::Printer;

pub async fn run(printer: &Printer, args: LoadArgs) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let cluster = &args.name.name;
    // Every image must be there before anything is sent: nothing is half-loaded.
    let mut missing = Vec::new();
    for image in &args.images {
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
    let inner = inner_docker(&engine, cluster).await?;
    let started = std::time::Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let loaded = match &args.archive {
        Some(path) => {
            let body = archive_stream(path)?;
            inner.load_images(counted(body, sent.clone())).await?
        }
        None => {
            let references: Vec<&str> = args.images.iter().map(String::as_str).collect();
            let exported = engine
                .export_images(&references)
                .map(|piece| piece.map_err(std::io::Error::other));
            // The export borrows `engine`; the body must own its stream, so it is boxed
            // into a channel fed from here.
            let (sender, receiver) = tokio::sync::mpsc::channel(4);
            let body = tokio_stream_of(receiver);
            let feeding = async move {
                let mut exported = std::pin::pin!(exported);
                while let Some(piece) = exported.next().await {
                    if sender.send(piece).await.is_err() {
                        break;
                    }
                }
            };
            let (loaded, ()) =
                tokio::join!(inner.load_images(counted(body, sent.clone())), feeding);
            loaded?
        }
    };
    if loaded.is_empty() {
        bail!("the node's docker loaded nothing from the archive");
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

/// The receiving end of a channel as a stream.
fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Count the bytes that pass.
fn counted(
    body: impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    sent: Arc<AtomicU64>,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    body.inspect(move |piece| {
        if let Ok(piece) = piece {
            sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
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
