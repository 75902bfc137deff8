//! Preloaded images: every image the node needs at start (kubeadm's list for the configured
//! Kubernetes version, what minikube adds, and the user's own), taken from the engine that
//! builds the node image and carried inside it as one `docker save` archive, which the node
//! loads into its own docker before minikube starts. So `kdind up` pulls nothing: it works
//! without a registry, and faster.
//!
//! Why an archive: the node's `/var/lib/docker` is a volume made at `up`, so whatever the
//! image carries must be copied or loaded into it at first boot; a pre-filled overlay2 tree
//! cannot travel in an image (its whiteouts are character devices, which a build cannot add
//! on engines without the right to make device nodes). The archive shares layers between
//! images. docs/real-boot.md has the measurements.
//!
//! The archive is cached by the images' IDs, so an unchanged rebuild exports nothing; the
//! cache keeps the newest archive only.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;

use crate::artifacts::Present;
use crate::cluster::labels;
use crate::config::{ArtifactName, Config};
use crate::digest::{hash_bytes, Digest};
use crate::docker::{Engine, RunOnce};
use crate::fsutil::AtomicFile;
use crate::progress::Printer;

/// The images minikube's none driver adds to kubeadm's: its storage provisioner (the
/// `storage-provisioner` addon, on by default), whose tag minikube v1.20 and later stamp
/// as v5.
pub const MINIKUBE_IMAGES: &[&str] = &["gcr.io/k8s-minikube/storage-provisioner:v5"];

/// The first line of `preload/images.list` (kdind-entrypoint reads the rest of it).
const LIST_HEADER: &str = "# kdind preload";

/// What is preloaded: the references, and the archive holding them (None when preloading is
/// off; made by `export_if_missing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    pub images: Vec<String>,
    pub archive: Option<PathBuf>,
    /// Names the set: the references and their image IDs.
    pub digest: Option<Digest>,
}

impl Preload {
    pub fn none() -> Self {
        Self {
            images: Vec::new(),
            archive: None,
            digest: None,
        }
    }

    /// `preload/images.list` in the context: a header with the digest, then one reference a
    /// line. The node compares the digest with what it loaded last.
    pub fn list_file(&self) -> String {
        let mut text = match &self.digest {
            Some(digest) => format!("{LIST_HEADER} sha256:{digest}\n"),
            None => format!("{LIST_HEADER} off\n"),
        };
        for image in &self.images {
            text.push_str(image);
            text.push('\n');
        }
        text
    }
}

/// The images to preload for `config`, present on `engine` (pulled when missing). Their
/// archive is made by `export_if_missing`, only when an image is built from them.
pub async fn prepare(
    engine: &Engine,
    config: &Config,
    artifacts: &[Present],
    cache_root: &Path,
    printer: &Printer,
) -> Result<Preload> {
    if !config.preload.enabled {
        return Ok(Preload::none());
    }
    let kubeadm = artifacts
        .iter()
        .find(|present| present.artifact.name == ArtifactName::Kubeadm)
        .context("kubeadm is not among the artifacts")?;
    let dir = cache_root.join("preload");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut images = kubeadm_images(engine, config, kubeadm, &dir).await?;
    images.extend(MINIKUBE_IMAGES.iter().map(|image| (*image).to_owned()));
    images.extend(config.preload.images.iter().cloned());
    images.sort();
    images.dedup();

    let mut manifest = String::from("kdind preload v1\n");
    for image in &images {
        let id = match engine.image(image).await? {
            Some(found) => found.id,
            None => {
                printer.note(format!("pulling {image} to preload it"));
                engine.pull_image(image).await.with_context(|| {
                    format!(
                        "{image} is needed in the node image but the engine at {} has it not and \
                         cannot pull it; build it there (scripts/build-upstream.sh builds every \
                         image kubeadm and minikube need) or set `enabled = false` in [preload]",
                        engine.host()
                    )
                })?;
                engine
                    .image(image)
                    .await?
                    .with_context(|| format!("{image} is still missing after its pull"))?
                    .id
            }
        };
        manifest.push_str(&format!("{image} {id}\n"));
    }
    let digest = hash_bytes(manifest.as_bytes());
    let archive = dir.join(format!("{digest}.tar"));
    Ok(Preload {
        images,
        archive: Some(archive),
        digest: Some(digest),
    })
}

/// `kubeadm config images list` for the configured version, asked of the kubeadm that goes
/// into the image (in a throwaway container of the base image, so any host works), and
/// remembered per kubeadm binary.
async fn kubeadm_images(
    engine: &Engine,
    config: &Config,
    kubeadm: &Present,
    dir: &Path,
) -> Result<Vec<String>> {
    let remembered = dir.join(format!(
        "kubeadm-{}-{}.list",
        kubeadm.digest, config.kubernetes_version
    ));
    if let Ok(text) = std::fs::read_to_string(&remembered) {
        return Ok(text.lines().map(str::to_owned).collect());
    }
    if engine.image(&config.base_image).await?.is_none() {
        engine
            .pull_image(&config.base_image)
            .await
            .with_context(|| format!("the base image {} is missing", config.base_image))?;
    }
    let bytes = std::fs::read(&kubeadm.path)
        .with_context(|| format!("cannot read {}", kubeadm.path.display()))?;
    let mut files = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o755);
    header.set_entry_type(tar::EntryType::Regular);
    files.append_data(&mut header, "kdind-kubeadm", bytes.as_slice())?;
    let files = files.into_inner()?;
    let command = [
        "/kdind-kubeadm",
        "config",
        "images",
        "list",
        "--kubernetes-version",
        &config.kubernetes_version,
    ];
    let (code, stdout) = engine
        .run_once(RunOnce {
            image: &config.base_image,
            command: &command,
            labels: labels::helper(),
            files,
            ..RunOnce::default()
        })
        .await?;
    let images = parse_image_list(&stdout);
    if code != 0 || images.is_empty() {
        bail!(
            "kubeadm config images list --kubernetes-version {} failed (exit {code}): {}",
            config.kubernetes_version,
            stdout.trim()
        );
    }
    crate::fsutil::write_atomic(&remembered, images.join("\n").as_bytes(), 0o644)?;
    Ok(images)
}

/// The references in kubeadm's output: one a line, anything else skipped.
fn parse_image_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.contains(char::is_whitespace)
                && line.contains('/')
                && line.contains(':')
        })
        .map(str::to_owned)
        .collect()
}

/// Make the preload's archive in the cache unless an identical one is there already.
pub async fn export_if_missing(
    engine: &Engine,
    preload: &Preload,
    printer: &Printer,
) -> Result<()> {
    match &preload.archive {
        Some(archive) if !archive.is_file() => {
            export(engine, &preload.images, archive, printer).await?;
            remove_other_archives(archive);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Archives are large and named by their images: an older one is removed when a new one is
/// made, so the cache holds one. (A build still reading an older one keeps its open file.)
fn remove_other_archives(kept: &Path) {
    let Some(dir) = kept.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path != kept && path.extension().is_some_and(|extension| extension == "tar") {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Export the images into `archive` (a temporary file beside it, synced, then renamed).
async fn export(
    engine: &Engine,
    images: &[String],
    archive: &Path,
    printer: &Printer,
) -> Result<()> {
    let started = std::time::Instant::now();
    printer.note(format!(
        "exporting {} images to preload them into the node",
        images.len()
    ));
    let mut file = AtomicFile::create(archive)?;
    let references: Vec<&str> = images.iter().map(String::as_str).collect();
    let mut stream = std::pin::pin!(engine.export_images(&references));
    let mut size = 0u64;
    {
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file.file());
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            size += piece.len() as u64;
            writer
                .write_all(&piece)
                .with_context(|| format!("cannot write {}", archive.display()))?;
        }
        writer
            .flush()
            .with_context(|| format!("cannot write {}", archive.display()))?;
    }
    file.commit()?;
    printer.note(format!(
        "exported {} MiB in {:.1} s",
        size >> 20,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_output_gives_references_only() {
        let text = "W1126 warning about something\nregistry.k8s.io/kube-apiserver:v1.35.1\n\
                    registry.k8s.io/coredns/coredns:v1.13.1\n\nregistry.k8s.io/pause:3.10.1\n";
        assert_eq!(
            parse_image_list(text),
            [
                "registry.k8s.io/kube-apiserver:v1.35.1",
                "registry.k8s.io/coredns/coredns:v1.13.1",
                "registry.k8s.io/pause:3.10.1"
            ]
        );
    }

    #[test]
    fn a_new_archive_replaces_the_older_ones_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["old.tar", "new.tar", "kubeadm-x-v1.35.1.list"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_other_archives(&dir.path().join("new.tar"));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["kubeadm-x-v1.35.1.list", "new.tar"]);
    }

    #[test]
    fn the_list_file_names_the_set_or_says_off() {
        assert_eq!(Preload::none().list_file(), "# kdind preload off\n");
        let digest = hash_bytes(b"x");
        let preload = Preload {
            images: vec!["a/b:1".into(), "c/d:2".into()],
            archive: Some(PathBuf::from("/cache/x.tar")),
            digest: Some(digest),
        };
        assert_eq!(
            preload.list_file(),
            format!("# kdind preload sha256:{digest}\na/b:1\nc/d:2\n")
        );
    }
}
