//! The build context: a tar stream written entry by entry (nothing large is held in memory)
//! with a fixed order, fixed modes, owner 0 and one fixed mtime, so that an unchanged
//! configuration produces the same bytes and the engine's layer cache is hit every time.
//!
//! ```text
//! Dockerfile
//! rootfs/...                   assets/rootfs, copied over the image's /
//! systemctl/...                the replacement's crate, compiled in the first stage
//! artifacts/bin/               minikube, cri-dockerd, crictl
//! artifacts/kubernetes/        kubectl, kubeadm, kubelet (for /var/lib/minikube/binaries/<v>/)
//! artifacts/cni/               the CNI plugins
//! preload/images.list          what is preloaded (see preload.rs), always present
//! preload/images.tar           their `docker save` archive, when preloading is on
//! ```

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::artifacts::Present;
use crate::config::{ArtifactName, Extract};
use crate::digest::{hash_bytes, Digest};
use crate::image::preload::Preload;

/// A file built into the kdind binary from `assets/` (see build.rs).
#[derive(Debug)]
pub struct Embedded {
    pub path: &'static str,
    pub mode: u32,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Every entry's mtime: 2024-01-01T00:00:00Z.
const MTIME: u64 = 1_704_067_200;

/// Where an artifact goes in the context.
pub fn destination(name: ArtifactName) -> &'static str {
    match name {
        ArtifactName::Minikube | ArtifactName::CriDockerd | ArtifactName::Crictl => "artifacts/bin",
        ArtifactName::Kubectl | ArtifactName::Kubeadm | ArtifactName::Kubelet => {
            "artifacts/kubernetes"
        }
        ArtifactName::CniPlugins => "artifacts/cni",
    }
}

/// A digest of everything the context holds, from the inputs rather than the bytes (the
/// artifacts are known by their verified digests). It names the image's tag.
pub fn inputs_digest(dockerfile: &str, artifacts: &[Present], preload: &Preload) -> Digest {
    let mut manifest = String::from("kdind build context v1\n");
    manifest.push_str(&format!(
        "Dockerfile {}\n",
        hash_bytes(dockerfile.as_bytes())
    ));
    for file in EMBEDDED {
        manifest.push_str(&format!(
            "{} {:o} {}\n",
            file.path,
            file.mode,
            hash_bytes(file.bytes)
        ));
    }
    for present in artifacts {
        let extract = match &present.artifact.extract {
            None => String::new(),
            Some(Extract::All) => "*".to_owned(),
            Some(Extract::Member(member)) => member.clone(),
        };
        manifest.push_str(&format!(
            "{} {} {} {extract}\n",
            present.artifact.name, present.artifact.version, present.digest
        ));
    }
    manifest.push_str(&preload.list_file());
    hash_bytes(manifest.as_bytes())
}

/// Write the whole context as an uncompressed tar to `out`.
pub fn write(
    dockerfile: &str,
    artifacts: &[Present],
    preload: &Preload,
    out: impl Write,
) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    append(&mut builder, "Dockerfile", 0o644, dockerfile.as_bytes())?;
    for file in EMBEDDED {
        append(&mut builder, file.path, file.mode, file.bytes)?;
    }
    for present in artifacts {
        append_artifact(&mut builder, present).with_context(|| {
            format!(
                "cannot add {} to the build context",
                present.artifact.label()
            )
        })?;
    }
    append(
        &mut builder,
        "preload/images.list",
        0o644,
        preload.list_file().as_bytes(),
    )?;
    if let Some(archive) = &preload.archive {
        let file =
            File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
        let size = file.metadata()?.len();
        append_reader(
            &mut builder,
            "preload/images.tar",
            0o644,
            size,
            BufReader::with_capacity(1 << 20, file),
        )?;
    }
    builder
        .into_inner()
        .context("cannot finish the build context")?
        .flush()
        .context("cannot finish the build context")
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    bytes: &[u8],
) -> Result<()> {
    append_reader(builder, path, mode, bytes.len() as u64, bytes)
}

fn append_reader<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    size: u64,
    reader: impl Read,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    builder
        .append_data(&mut header, path, reader)
        .with_context(|| format!("cannot write {path} into the build context"))
}

fn append_artifact<W: Write>(builder: &mut tar::Builder<W>, present: &Present) -> Result<()> {
    let artifact = &present.artifact;
    let dir = destination(artifact.name);
    let file = File::open(&present.path)
        .with_context(|| format!("cannot open {}", present.path.display()))?;
    match &artifact.extract {
        None => {
            if artifact.name == ArtifactName::CniPlugins {
                bail!("the CNI plugins come as an archive: set `extract = \"*\"` in [artifacts.cni-plugins]");
            }
            let size = file.metadata()?.len();
            let path = format!("{dir}/{}", artifact.name);
            append_reader(builder, &path, 0o755, size, BufReader::new(file))
        }
        Some(extract) => {
            let mut archive = tar::Archive::new(decompressed(file, &present.path)?);
            let mut found = Vec::new();
            let mut taken = 0;
            for entry in archive
                .entries()
                .with_context(|| format!("{} is not a tar archive", present.path.display()))?
            {
                let entry =
                    entry.with_context(|| format!("cannot read {}", present.path.display()))?;
                if entry.header().entry_type() != tar::EntryType::Regular {
                    continue;
                }
                let member = normalise(&entry.path()?.to_string_lossy());
                let base = member.rsplit('/').next().unwrap_or(&member).to_owned();
                let wanted = match extract {
                    Extract::All => true,
                    Extract::Member(wanted) => normalise(wanted) == member,
                };
                if !wanted {
                    if found.len() < 20 {
                        found.push(member);
                    }
                    continue;
                }
                let name = match extract {
                    Extract::All => base,
                    Extract::Member(_) => artifact.name.to_string(),
                };
                let size = entry.header().size()?;
                append_reader(builder, &format!("{dir}/{name}"), 0o755, size, entry)?;
                taken += 1;
            }
            if taken == 0 {
                let wanted = match extract {
                    Extract::All => "any regular file".to_owned(),
                    Extract::Member(member) => format!("`{member}`"),
                };
                bail!(
                    "{} holds no {wanted}; it holds: {}",
                    present.path.display(),
                    if found.is_empty() {
                        "nothing".to_owned()
                    } else {
                        found.join(", ")
                    }
                );
            }
            Ok(())
        }
    }
}

fn normalise(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .to_owned()
}

/// gzip is recognised by its magic bytes; anything else is read as a plain tar.
fn decompressed(file: File, path: &Path) -> Result<Box<dyn Read>> {
    let mut reader = BufReader::new(file);
    let gzip = std::io::BufRead::fill_buf(&mut reader)
        .with_context(|| format!("cannot read {}", path.display()))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// The entries of a context tar: (path, mode, size), for tests and `--context-out` checks.
#[cfg(test)]
pub fn list(bytes: &[u8]) -> Vec<(String, u32, u64)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry.header().mode().unwrap(),
                entry.header().size().unwrap(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::{Artifact, Checksum};
    use crate::config::Arch;

    fn present(dir: &Path, name: ArtifactName, bytes: &[u8], extract: Option<Extract>) -> Present {
        let path = dir.join(name.as_str());
        std::fs::write(&path, bytes).unwrap();
        let digest = hash_bytes(bytes);
        Present {
            artifact: Artifact {
                name,
                version: "v1".into(),
                arch: Arch::Amd64,
                url: format!("https://example.invalid/{name}"),
                fetch_url: format!("https://example.invalid/{name}"),
                checksum: Checksum::Pinned(digest),
                extract,
            },
            digest,
            path,
            verified: true,
        }
    }

    fn tgz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        for (path, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn the_context_is_deterministic_and_lays_out_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = vec![
            present(dir.path(), ArtifactName::Minikube, b"#!/bin/sh\n", None),
            present(dir.path(), ArtifactName::Kubelet, b"kubelet", None),
            present(
                dir.path(),
                ArtifactName::CriDockerd,
                &tgz(&[
                    ("cri-dockerd/cri-dockerd", b"cri"),
                    ("cri-dockerd/README", b"r"),
                ]),
                Some(Extract::Member("cri-dockerd/cri-dockerd".into())),
            ),
            present(
                dir.path(),
                ArtifactName::CniPlugins,
                &tgz(&[("./bridge", b"b"), ("./loopback", b"l")]),
                Some(Extract::All),
            ),
        ];
        let mut first = Vec::new();
        write("FROM x\n", &artifacts, &Preload::none(), &mut first).unwrap();
        let mut second = Vec::new();
        write("FROM x\n", &artifacts, &Preload::none(), &mut second).unwrap();
        assert_eq!(first, second, "same inputs, same bytes");
        let entries = list(&first);
        assert_eq!(entries[0], ("Dockerfile".into(), 0o644, 7));
        let artifacts_part: Vec<(String, u32, u64)> = entries
            .iter()
            .filter(|(path, _, _)| path.starts_with("artifacts/"))
            .cloned()
            .collect();
        assert_eq!(
            artifacts_part,
            [
                ("artifacts/bin/minikube".into(), 0o755, 10),
                ("artifacts/kubernetes/kubelet".into(), 0o755, 7),
                ("artifacts/bin/cri-dockerd".into(), 0o755, 3),
                ("artifacts/cni/bridge".into(), 0o755, 1),
                ("artifacts/cni/loopback".into(), 0o755, 1),
            ]
        );
        assert!(entries.iter().any(|(path, mode, _)| path
            == "rootfs/usr/local/bin/kdind-entrypoint"
            && *mode == 0o755));
        assert!(entries
            .iter()
            .any(|(path, _, _)| path == "systemctl/src/main.rs"));
        let mut archive = tar::Archive::new(&first[..]);
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), MTIME);
            assert_eq!(entry.header().uid().unwrap(), 0);
        }
    }

    #[test]
    fn a_missing_member_lists_what_the_archive_holds() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = vec![present(
            dir.path(),
            ArtifactName::Crictl,
            &tgz(&[("bin/crictl", b"c"), ("LICENSE", b"l")]),
            Some(Extract::Member("crictl".into())),
        )];
        let error = format!(
            "{:#}",
            write("", &artifacts, &Preload::none(), std::io::sink()).unwrap_err()
        );
        assert!(error.contains("holds no `crictl`"), "{error}");
        assert!(error.contains("bin/crictl, LICENSE"), "{error}");
    }

    #[test]
    fn the_inputs_digest_follows_each_input() {
        let dir = tempfile::tempdir().unwrap();
        let one = vec![present(dir.path(), ArtifactName::Minikube, b"a", None)];
        let two = vec![present(dir.path(), ArtifactName::Minikube, b"b", None)];
        assert_eq!(
            inputs_digest("x", &one, &Preload::none()),
            inputs_digest("x", &one, &Preload::none())
        );
        assert_ne!(
            inputs_digest("x", &one, &Preload::none()),
            inputs_digest("y", &one, &Preload::none())
        );
        assert_ne!(
            inputs_digest("x", &one, &Preload::none()),
            inputs_digest("x", &two, &Preload::none())
        );
    }
}
