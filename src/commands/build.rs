//! `kdind build`: the artifacts (`--download-only`, `--print-artifacts`) and the node image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;

use super::{columns, output, ExitStatus};
use crate::artifacts::{ensure, Plan, Present};
use crate::config::Config;
use crate::docker::Engine;
use crate::fsutil::AtomicFile;
use crate::image;
use crate::image::ensure::{artifact_settings, build_and_report, preloaded_spec, target_arch};
use crate::progress::Printer;
use crate::settings::{BuildAction, BuildSettings, OutputFormat};

pub async fn run(printer: &Printer, settings: BuildSettings) -> Result<ExitStatus> {
    let mut config = Config::load(
        settings.source.config.as_deref(),
        settings.source.kubernetes_version.as_deref(),
    )?;
    if let Some(base_image) = &settings.base_image {
        config.base_image = base_image.clone();
    }
    let action = &settings.action;
    let building = *action == BuildAction::Build;
    // The preloaded images come from an engine, so a context written for another builder
    // needs one too when preloading is on.
    let exporting = matches!(action, BuildAction::ContextOut(_)) && config.preload.enabled;
    let engine = if building || exporting {
        Some(Engine::connect().await?)
    } else {
        None
    };
    // Only a build runs on the engine; a context for another builder may be for another
    // architecture.
    let arch = target_arch(settings.source.arch, engine.as_ref().filter(|_| building))?;
    let mut plan = Plan::new(&config, artifact_settings(&settings.source, arch)?)?;
    if let BuildAction::PrintArtifacts(format) = action {
        print_artifacts(&plan, *format)?;
        return Ok(ExitStatus::Success);
    }
    let present = ensure(&mut plan, printer).await?;
    if *action == BuildAction::DownloadOnly {
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
    let tag = settings.tag.as_deref();
    let cache = plan.settings.cache.root();
    let spec = match &engine {
        Some(engine) => preloaded_spec(engine, &config, &present, cache, printer, tag).await?,
        None => image::spec(&config, &present, image::preload::Preload::none(), tag),
    };
    match (action, &engine) {
        (BuildAction::PrintDockerfile, _) => output(&spec.dockerfile)?,
        (BuildAction::ContextOut(path), engine) => {
            if let Some(engine) = engine {
                image::preload::export_if_missing(engine, &spec.preload, printer).await?;
            }
            write_context_out(&spec, &present, path)?;
            printer.note(format!(
                "wrote the build context of {} to {}",
                spec.reference,
                if path.as_os_str() == "-" {
                    "stdout".to_owned()
                } else {
                    path.display().to_string()
                }
            ));
        }
        (_, Some(engine)) => {
            build_and_report(engine, &spec, &present, printer).await?;
            output(&format!("{}\n", spec.reference))?;
        }
        (_, None) => bail!("no engine to build on"),
    }
    Ok(ExitStatus::Success)
}

fn write_context_out(spec: &image::ImageSpec, present: &[Present], path: &Path) -> Result<()> {
    if path.as_os_str() == "-" {
        let stdout = std::io::stdout().lock();
        return image::write_context(spec, present, std::io::BufWriter::new(stdout));
    }
    // Into a temporary file beside the target, renamed when complete.
    let mut file = AtomicFile::create(path)?;
    image::write_context(spec, present, std::io::BufWriter::new(file.file()))?;
    file.commit()
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
