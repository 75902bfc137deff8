//! The node image a command needs: the download settings and the image's architecture
//! resolved once (the engine's, when an engine is involved), and the image the
//! configuration describes, built when the engine does not have it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{preload, ImageSpec};
use crate::artifacts::cache::Cache;
use crate::artifacts::{ensure, Plan, Present, Settings};
use crate::config::{Arch, Config};
use crate::docker::Engine;
use crate::progress::Printer;
use crate::settings::ArtifactSource;

/// The architecture to build for: the engine's (the one asked for must be it), or without
/// an engine the one asked for, else this machine's.
pub fn target_arch(asked: Option<Arch>, engine: Option<&Engine>) -> Result<Arch> {
    let Some(engine) = engine else {
        return match asked {
            Some(arch) => Ok(arch),
            None => Arch::host().with_context(|| {
                format!(
                    "kdind builds node images for amd64 and arm64, not for this machine's {}; choose one with --arch",
                    std::env::consts::ARCH
                )
            }),
        };
    };
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

/// The download settings of `source` for `arch`.
pub fn artifact_settings(source: &ArtifactSource, arch: Arch) -> Result<Settings> {
    let cache = match &source.cache_dir {
        Some(dir) => Cache::new(dir.clone()),
        None => Cache::locate(crate::environment::var)?,
    };
    let lock_path = match &source.config {
        Some(path) => path
            .parent()
            .map(|dir| dir.join("kdind.lock"))
            .unwrap_or_else(|| PathBuf::from("kdind.lock")),
        None => cache.root().join("kdind.lock"),
    };
    Ok(Settings {
        arch,
        mirror: source.mirror.clone(),
        offline: source.offline,
        allow_unverified: source.allow_unverified,
        cache,
        lock_path,
    })
}

/// The node image `config` describes, built when the engine does not have it. Returns its
/// reference.
pub async fn ensure_image(
    engine: &Engine,
    config: &Config,
    source: &ArtifactSource,
    printer: &Printer,
) -> Result<String> {
    let arch = target_arch(source.arch, Some(engine))?;
    let mut plan = Plan::new(config, artifact_settings(source, arch)?)?;
    let present = ensure(&mut plan, printer).await?;
    let spec = preloaded_spec(
        engine,
        config,
        &present,
        plan.settings.cache.root(),
        printer,
        None,
    )
    .await?;
    if engine.image(&spec.reference).await?.is_some() {
        printer.note(format!("using the node image {}", spec.reference));
    } else {
        build_and_report(engine, &spec, &present, printer).await?;
    }
    Ok(spec.reference)
}

/// Export the preloaded images when needed, build, and say what the build did.
pub async fn build_and_report(
    engine: &Engine,
    spec: &ImageSpec,
    present: &[Present],
    printer: &Printer,
) -> Result<()> {
    preload::export_if_missing(engine, &spec.preload, printer).await?;
    let started = std::time::Instant::now();
    printer.note(format!("building {} on {}", spec.reference, engine.host()));
    let report = super::build(engine, spec, present, printer).await?;
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

/// The image the configuration describes, with the images it preloads asked of `engine`.
pub async fn preloaded_spec(
    engine: &Engine,
    config: &Config,
    present: &[Present],
    cache: &Path,
    printer: &Printer,
    tag: Option<&str>,
) -> Result<ImageSpec> {
    let preload = preload::prepare(engine, config, present, cache, printer).await?;
    Ok(super::spec(config, present, preload, tag))
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_engine_the_asked_architecture_wins() {
        assert_eq!(target_arch(Some(Arch::Arm64), None).unwrap(), Arch::Arm64);
    }

    #[test]
    fn the_lock_file_sits_beside_the_configuration_or_in_the_cache() {
        let source = ArtifactSource {
            config: Some(PathBuf::from("/repo/kdind.toml")),
            cache_dir: Some(PathBuf::from("/cache")),
            ..ArtifactSource::default()
        };
        let settings = artifact_settings(&source, Arch::Amd64).unwrap();
        assert_eq!(settings.lock_path, PathBuf::from("/repo/kdind.lock"));
        let source = ArtifactSource {
            cache_dir: Some(PathBuf::from("/cache")),
            ..ArtifactSource::default()
        };
        let settings = artifact_settings(&source, Arch::Amd64).unwrap();
        assert_eq!(settings.lock_path, PathBuf::from("/cache/kdind.lock"));
    }
}
