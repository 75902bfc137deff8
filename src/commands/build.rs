//! `kdind build`: the artifacts (`--download-only`, `--print-artifacts`) and the node image.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{columns, output, ExitStatus, NotImplemented};
use crate::artifacts::cache::Cache;
use crate::artifacts::{ensure, Plan, Settings};
use crate::cli::{ArtifactArgs, BuildArgs, OutputFormat};
use crate::config::{Arch, Config};
use crate::progress::Printer;

pub async fn run(printer: &Printer, args: BuildArgs) -> Result<ExitStatus> {
    let (config, settings) = load(&args.artifacts)?;
    let mut plan = Plan::new(&config, settings)?;
    if args.print_artifacts {
        print_artifacts(&plan, args.output)?;
        return Ok(ExitStatus::Success);
    }
    let present = ensure(&mut plan, printer).await?;
    if args.download_only {
        // For scripts: what is where, one artifact a line.
        let mut listing = String::new();
        for found in &present {
            listing.push_str(&format!(
                "{}\t{}\t{}\t{}{}\n",
                found.artifact.name,
                found.artifact.version,
                found.digest,
                found.path.display(),
                if found.verified { "" } else { "\tunverified" }
            ));
        }
        output(&listing)?;
        return Ok(ExitStatus::Success);
    }
    Err(NotImplemented("build (the image; use --download-only for the artifacts)").into())
}

/// The configuration and download settings the artifact options describe.
pub fn load(args: &ArtifactArgs) -> Result<(Config, Settings)> {
    let config = Config::load(args.config.as_deref())?;
    let cache = match &args.cache_dir {
        Some(dir) => Cache::new(dir.clone()),
        None => Cache::locate(|key| std::env::var(key).ok())?,
    };
    let arch = match args.arch {
        Some(arch) => arch,
        None => Arch::host().with_context(|| {
            format!(
                "kdind builds node images for amd64 and arm64, not for this machine's {}; choose one with --arch",
                std::env::consts::ARCH
            )
        })?,
    };
    let lock_path = match &args.config {
        Some(path) => path
            .parent()
            .map(|dir| dir.join("kdind.lock"))
            .unwrap_or_else(|| PathBuf::from("kdind.lock")),
        None => cache.root().join("kdind.lock"),
    };
    let settings = Settings {
        arch,
        mirror: args.mirror.clone(),
        offline: args.offline,
        allow_unverified: args.allow_unverified,
        cache,
        lock_path,
    };
    Ok((config, settings))
}

#[derive(Debug, Serialize)]
struct ArtifactRow {
    name: String,
    version: String,
    arch: String,
    url: String,
    fetch_url: String,
    sha256: Option<String>,
    checksum: &'static str,
    checksum_url: Option<String>,
    extract: Option<String>,
    cached: bool,
    path: Option<PathBuf>,
}

fn print_artifacts(plan: &Plan, format: OutputFormat) -> Result<()> {
    let rows: Vec<ArtifactRow> = plan
        .artifacts
        .iter()
        .map(|artifact| {
            let path = plan.cached_path(artifact);
            ArtifactRow {
                name: artifact.name.to_string(),
                version: artifact.version.clone(),
                arch: artifact.arch.to_string(),
                url: artifact.url.clone(),
                fetch_url: artifact.fetch_url.clone(),
                sha256: artifact.checksum.digest().map(|digest| digest.to_string()),
                checksum: artifact.checksum.source(),
                checksum_url: match &artifact.checksum {
                    crate::artifacts::Checksum::Remote { fetch_url, .. } => Some(fetch_url.clone()),
                    _ => None,
                },
                extract: artifact.extract.as_ref().map(|extract| match extract {
                    crate::config::Extract::Member(member) => member.clone(),
                    crate::config::Extract::All => "*".to_owned(),
                }),
                cached: path.is_some(),
                path,
            }
        })
        .collect();
    match format {
        OutputFormat::Json => output(&format!("{}\n", serde_json::to_string_pretty(&rows)?)),
        OutputFormat::Table => {
            let mut lines = vec![["NAME", "VERSION", "ARCH", "CACHED", "SHA256", "URL"]
                .map(String::from)
                .to_vec()];
            for row in &rows {
                let sha256 = match (&row.sha256, row.checksum) {
                    (Some(sha256), _) => sha256.clone(),
                    (None, "checksum_url") => "(read from checksum_url at download)".to_owned(),
                    (None, _) => "(none: pin one or --allow-unverified)".to_owned(),
                };
                lines.push(vec![
                    row.name.clone(),
                    row.version.clone(),
                    row.arch.clone(),
                    if row.cached { "yes" } else { "no" }.to_owned(),
                    sha256,
                    row.fetch_url.clone(),
                ]);
            }
            output(&columns(&lines))
        }
    }
}
