//! `kdind build`: the artifacts (`--download-only`, `--print-artifacts`) and the node image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{columns, output, ExitStatus};
use crate::artifacts::cache::Cache;
use crate::artifacts::{ensure, Plan, Present, Settings};
use crate::cli::{ArtifactArgs, BuildArgs, OutputFormat};
use crate::config::{Arch, Config};
use crate::docker::Engine;
use crate::fsutil::AtomicFile;
use crate::image;
use crate::progress::Printer;

pub async fn run(printer: &Printer, args: BuildArgs) -> Result<ExitStatus> {
    let (mut config, mut settings) = load(&args.artifacts)?;
    if let Some(base_image) = &args.base_image {
        config.base_image = base_image.clone();
    }
    let building = !(args.print_artifacts
        || args.download_only
        || args.print_dockerfile
        || args.context_out.is_some());
    // The preloaded images come from an engine, so a context written for another builder
    // needs one too when preloading is on.
    let exporting = args.context_out.is_some() && config.preload.enabled;
    let engine = if building || exporting {
        let engine = Engine::connect().await?;
        if building {
            settings.arch = engine_arch(&engine, args.artifacts.arch)?;
        }
        Some(engine)
    } else {
        None
    };
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
    let tag = args.tag.as_deref();
    let spec = match &engine {
        Some(engine) if !args.print_dockerfile => {
            preloaded_spec(engine, &config, &present, &plan, printer, tag).await?
        }
        _ => image::spec(&config, &present, image::preload::Preload::none(), tag),
    };
    if args.print_dockerfile {
        output(&spec.dockerfile)?;
        return Ok(ExitStatus::Success);
    }
    if let Some(path) = &args.context_out {
        if let Some(engine) = &engine {
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
        return Ok(ExitStatus::Success);
    }
    let engine = engine.expect("connected above when building");
    build_image(&engine, &spec, &present, printer).await?;
    output(&format!("{}\n", spec.reference))?;
    Ok(ExitStatus::Success)
}

async fn build_image(
    engine: &Engine,
    spec: &image::ImageSpec,
    present: &[Present],
    printer: &Printer,
) -> Result<()> {
    image::preload::export_if_missing(engine, &spec.preload, printer).await?;
    let started = std::time::Instant::now();
    printer.note(format!("building {} on {}", spec.reference, engine.host()));
    let report = image::build(engine, spec, present, printer).await?;
    printer.note(format!(
        "built {} ({}) in {:.1} s: {} steps ran, {} from the layer cache",
        spec.reference,
        short_id(&report.image_id),
        started.elapsed().as_secs_f64(),
        report.ran_steps,
        report.cached_steps
    ));
    Ok(())
}

/// The node image `kdind up` runs: the one the configuration describes, built when the
/// engine does not have it. Returns its reference and Kubernetes version.
pub async fn ensure_image(
    engine: &Engine,
    config: &Config,
    args: &ArtifactArgs,
    printer: &Printer,
) -> Result<(String, String)> {
    let mut settings = settings(args)?;
    settings.arch = engine_arch(engine, args.arch)?;
    let mut plan = Plan::new(config, settings)?;
    let present = ensure(&mut plan, printer).await?;
    let spec = preloaded_spec(engine, config, &present, &plan, printer, None).await?;
    if engine.image(&spec.reference).await?.is_some() {
        printer.note(format!("using the node image {}", spec.reference));
    } else {
        build_image(engine, &spec, &present, printer).await?;
    }
    Ok((spec.reference, config.kubernetes_version.clone()))
}

/// The image the configuration describes, with the images it preloads asked of `engine`.
async fn preloaded_spec(
    engine: &Engine,
    config: &Config,
    present: &[Present],
    plan: &Plan,
    printer: &Printer,
    tag: Option<&str>,
) -> Result<image::ImageSpec> {
    let cache = plan.settings.cache.root();
    let preload = image::preload::prepare(engine, config, present, cache, printer).await?;
    Ok(image::spec(config, present, preload, tag))
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// The architecture to build for: the one asked for, which must be the engine's, or else
/// the engine's.
fn engine_arch(engine: &Engine, asked: Option<Arch>) -> Result<Arch> {
    let machine = engine.architecture();
    let engine_arch = Arch::from_machine(machine).with_context(|| {
        format!(
            "the engine at {} runs on {machine}; kdind builds node images for amd64 and arm64",
            engine.host()
        )
    })?;
    match asked {
        Some(asked) if asked != engine_arch => bail!(
            "--arch {asked} does not match the engine's architecture ({engine_arch}); use --context-out to build elsewhere"
        ),
        _ => Ok(engine_arch),
    }
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

/// The configuration and download settings the artifact options describe.
pub fn load(args: &ArtifactArgs) -> Result<(Config, Settings)> {
    let config = Config::load(args.config.as_deref())?;
    Ok((config, settings(args)?))
}

/// The download settings the artifact options describe.
fn settings(args: &ArtifactArgs) -> Result<Settings> {
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
    Ok(settings)
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
