//! The files the node image needs: resolved from the configuration into a plan (URL,
//! mirror, checksum source per artifact), then made present in the cache, verified.
//!
//! Order of work in [`ensure`]: refuse files with no checksum (unless allowed), read the
//! checksum files upstream publishes and record them in `kdind.lock`, find what the cache
//! already holds, stop with a list of what is missing when offline, then download the rest
//! in parallel.

pub mod cache;
pub mod fetch;
pub mod lock;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use self::cache::{Cache, Lookup};
use self::fetch::{FetchError, Fetcher, RetryPolicy};
use self::lock::LockFile;
use crate::config::{expand, Arch, ArtifactName, Config, Extract};
use crate::digest::{parse_checksum_file, Digest};
use crate::progress::{bytes, Printer, Transfers};

/// Downloads running at once.
const PARALLEL: usize = 4;

/// Where and how to get the artifacts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub arch: Arch,
    pub mirror: Option<Mirror>,
    pub offline: bool,
    pub allow_unverified: bool,
    pub cache: Cache,
    pub lock_path: PathBuf,
}

/// `--mirror URL`: `https://HOST/PATH` is fetched as `URL/HOST/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror(String);

impl std::str::FromStr for Mirror {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let base = text.trim_end_matches('/');
        let scheme_ok = ["https://", "http://", "file:///"]
            .iter()
            .any(|scheme| base.starts_with(scheme) && base.len() > scheme.len());
        if !scheme_ok || base.contains(['?', '#']) {
            return Err(format!(
                "`{text}` is not a mirror URL: use https://HOST/PATH, http://HOST/PATH or file:///DIR"
            ));
        }
        Ok(Self(base.to_owned()))
    }
}

impl Mirror {
    pub fn rewrite(&self, url: &str) -> String {
        match url.strip_prefix("https://") {
            Some(rest) => format!("{}/{rest}", self.0),
            None => url.to_owned(),
        }
    }
}

/// Where an artifact's checksum comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// `sha256` in the configuration.
    Pinned(Digest),
    /// Read from upstream earlier and recorded in the lock file.
    Locked(Digest),
    /// To be read from upstream's checksum file.
    Remote { url: String, fetch_url: String },
    /// Nothing: upstream publishes none and the user pinned none.
    Missing,
}

impl Checksum {
    pub fn digest(&self) -> Option<Digest> {
        match self {
            Self::Pinned(digest) | Self::Locked(digest) => Some(*digest),
            _ => None,
        }
    }

    pub fn source(&self) -> &'static str {
        match self {
            Self::Pinned(_) => "pinned",
            Self::Locked(_) => "locked",
            Self::Remote { .. } => "checksum_url",
            Self::Missing => "none",
        }
    }
}

/// One artifact, resolved for one architecture.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: ArtifactName,
    pub version: String,
    pub arch: Arch,
    /// The URL from the configuration (the key in the lock file).
    pub url: String,
    /// What is actually requested, after `--mirror`.
    pub fetch_url: String,
    pub checksum: Checksum,
    pub extract: Option<Extract>,
}

impl Artifact {
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.arch)
    }

    fn file_name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }
}

/// An artifact present in the cache.
#[derive(Debug, Clone)]
pub struct Present {
    pub artifact: Artifact,
    pub digest: Digest,
    pub path: PathBuf,
    /// False only for files accepted under --allow-unverified.
    pub verified: bool,
}

/// The resolved artifacts and the lock file their checksums are recorded in.
pub struct Plan {
    pub artifacts: Vec<Artifact>,
    pub settings: Settings,
    lock: LockFile,
}

impl Plan {
    pub fn new(config: &Config, settings: Settings) -> Result<Self> {
        let lock = LockFile::read(&settings.lock_path)?;
        let rewrite = |url: String| match &settings.mirror {
            Some(mirror) => mirror.rewrite(&url),
            None => url,
        };
        let artifacts = ArtifactName::ALL
            .into_iter()
            .map(|name| {
                let spec = config.artifact(name);
                let url = expand(&spec.url, &spec.version, settings.arch);
                let checksum = if let Some(pin) = spec.sha256.get(&settings.arch) {
                    Checksum::Pinned(*pin)
                } else if let Some(locked) = lock.get(&url) {
                    Checksum::Locked(locked)
                } else if let Some(template) = &spec.checksum_url {
                    let url = expand(template, &spec.version, settings.arch);
                    Checksum::Remote {
                        fetch_url: rewrite(url.clone()),
                        url,
                    }
                } else {
                    Checksum::Missing
                };
                Artifact {
                    name,
                    version: spec.version.clone(),
                    arch: settings.arch,
                    fetch_url: rewrite(url.clone()),
                    url,
                    checksum,
                    extract: spec.extract.clone(),
                }
            })
            .collect();
        Ok(Self {
            artifacts,
            settings,
            lock,
        })
    }

    /// Where the artifact is in the cache, if it is (without hashing it).
    pub fn cached_path(&self, artifact: &Artifact) -> Option<PathBuf> {
        let cache = &self.settings.cache;
        let digest = artifact.checksum.digest().or_else(|| {
            matches!(artifact.checksum, Checksum::Missing)
                .then(|| cache.recall_url(&artifact.url))
                .flatten()
        })?;
        cache.contains(&digest).then(|| cache.entry_path(&digest))
    }
}

/// Make every artifact of the plan present in the cache, verified.
pub async fn ensure(plan: &mut Plan, printer: &Printer) -> Result<Vec<Present>> {
    // Offline, everything that blocks the build is reported at once, below.
    if !plan.settings.offline {
        refuse_unverified(plan, printer)?;
    }
    // The HTTP client (and its TLS roots) is made only when something must be fetched: a
    // build from a warm cache starts no network machinery at all.
    let mut fetcher = None;
    let needs_checksums = plan
        .artifacts
        .iter()
        .any(|artifact| matches!(artifact.checksum, Checksum::Remote { .. }));
    if !plan.settings.offline && needs_checksums {
        let client = fetcher.insert(Fetcher::new(
            RetryPolicy::default(),
            plan.settings.mirror.is_some(),
        )?);
        resolve_checksums(plan, client).await?;
    }
    let cache = plan.settings.cache.clone();
    let mut present = Vec::new();
    let mut wanted = Vec::new();
    for artifact in &plan.artifacts {
        match find_cached(&cache, artifact, printer)? {
            Some(found) => present.push(found),
            None => wanted.push(artifact.clone()),
        }
    }
    if plan.settings.offline {
        let refused: Vec<&Artifact> = plan
            .artifacts
            .iter()
            .filter(|artifact| {
                artifact.checksum == Checksum::Missing && !plan.settings.allow_unverified
            })
            .collect();
        if !wanted.is_empty() || !refused.is_empty() {
            bail!(offline_report(&cache, &plan.artifacts, &wanted, &refused));
        }
        refuse_unverified(plan, printer)?;
    }
    let transfers = Transfers::new(*printer);
    for found in &present {
        transfers.line(format!("cached     {}", found.artifact.label()));
    }
    if wanted.is_empty() {
        present.sort_by_key(|found| found.artifact.name);
        return Ok(present);
    }
    let fetcher = match fetcher {
        Some(fetcher) => fetcher,
        None => Fetcher::new(RetryPolicy::default(), plan.settings.mirror.is_some())?,
    };
    let downloaded: Vec<Present> = stream::iter(wanted.iter())
        .map(|artifact| download(&fetcher, &cache, artifact, &transfers, printer))
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await
        .inspect_err(|_| transfers.finish())?;
    transfers.finish();
    present.extend(downloaded);
    present.sort_by_key(|found| found.artifact.name);
    Ok(present)
}

fn refuse_unverified(plan: &Plan, printer: &Printer) -> Result<()> {
    let unverified: Vec<&Artifact> = plan
        .artifacts
        .iter()
        .filter(|artifact| artifact.checksum == Checksum::Missing)
        .collect();
    if unverified.is_empty() {
        return Ok(());
    }
    if plan.settings.allow_unverified {
        for artifact in unverified {
            printer.warn(format!(
                "{} has no checksum to verify against (--allow-unverified): using {} as it comes",
                artifact.label(),
                artifact.url
            ));
        }
        return Ok(());
    }
    let mut message = String::from("refusing files with no checksum to verify against:\n");
    for artifact in &unverified {
        let _ = writeln!(
            message,
            "  {}: {}\n    pin it in kdind.toml:  [artifacts.{}] sha256 = {{ {} = \"<sha256 of the file>\" }}",
            artifact.label(),
            artifact.url,
            artifact.name,
            artifact.arch
        );
    }
    message.push_str("or accept them as they come with --allow-unverified");
    bail!(message)
}

async fn resolve_checksums(plan: &mut Plan, fetcher: &Fetcher) -> Result<()> {
    let remote: Vec<(usize, String, String, String)> = plan
        .artifacts
        .iter()
        .enumerate()
        .filter_map(|(index, artifact)| match &artifact.checksum {
            Checksum::Remote { url, fetch_url } => Some((
                index,
                url.clone(),
                fetch_url.clone(),
                artifact.file_name().to_owned(),
            )),
            _ => None,
        })
        .collect();
    let read: Vec<(usize, Digest, String)> = stream::iter(remote)
        .map(|(index, url, fetch_url, file_name)| async move {
            let text = fetcher
                .text(&fetch_url)
                .await
                .with_context(|| format!("cannot read the checksum file {fetch_url}"))?;
            let digest = parse_checksum_file(&text, &file_name).with_context(|| {
                format!("the checksum file {fetch_url} holds no sha256 for {file_name}")
            })?;
            anyhow::Ok((index, digest, url))
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    let mut records = Vec::new();
    for (index, digest, checksum_url) in read {
        let artifact = &mut plan.artifacts[index];
        records.push((artifact.url.clone(), digest, checksum_url));
        artifact.checksum = Checksum::Locked(digest);
    }
    records.sort();
    let lock_dir = plan.settings.cache.root().join("locks");
    plan.lock.record(&lock_dir, &records)
}

fn find_cached(cache: &Cache, artifact: &Artifact, printer: &Printer) -> Result<Option<Present>> {
    let (digest, verified) = match artifact.checksum.digest() {
        Some(digest) => (digest, true),
        None => match cache.recall_url(&artifact.url) {
            Some(digest) => (digest, false),
            None => return Ok(None),
        },
    };
    match cache.lookup(&digest)? {
        Lookup::Hit(path) => Ok(Some(Present {
            artifact: artifact.clone(),
            digest,
            path,
            verified,
        })),
        Lookup::Miss => Ok(None),
        Lookup::Corrupted => {
            printer.warn(format!(
                "the cached {} no longer matches sha256 {digest}; removed it, fetching it again",
                artifact.label()
            ));
            Ok(None)
        }
    }
}

/// Everything that blocks an offline build, one artifact a line with what to do: files not in
/// the cache, and files with no checksum to verify against (without --allow-unverified).
fn offline_report(
    cache: &Cache,
    artifacts: &[Artifact],
    missing: &[Artifact],
    refused: &[&Artifact],
) -> String {
    let blocked = artifacts
        .iter()
        .filter(|artifact| {
            missing.iter().any(|other| other.name == artifact.name)
                || refused.iter().any(|other| other.name == artifact.name)
        })
        .count();
    let mut message = format!(
        "--offline, and {blocked} of the artifacts block the build ({} of them are not in the cache {}):\n",
        missing.len(),
        cache.root().display()
    );
    for artifact in artifacts {
        let is_missing = missing.iter().any(|other| other.name == artifact.name);
        let is_refused = refused.iter().any(|other| other.name == artifact.name);
        if !is_missing && !is_refused {
            continue;
        }
        let _ = writeln!(message, "  {}", artifact.label());
        if is_missing {
            match artifact.checksum.digest() {
                Some(digest) => {
                    let _ = writeln!(
                        message,
                        "    not in the cache: download {}\n    and put it at {}",
                        artifact.url,
                        cache.entry_path(&digest).display()
                    );
                }
                None => {
                    let _ = writeln!(
                        message,
                        "    not in the cache, and no checksum is known for {} (nothing in kdind.lock, no pin):\n    \
                         pin sha256.{} in kdind.toml, then put the file at {}",
                        artifact.url,
                        artifact.arch,
                        cache.root().join("sha256").join("<sha256>").display()
                    );
                }
            }
        }
        if is_refused {
            let _ = writeln!(
                message,
                "    no checksum to verify it against: pin it in kdind.toml \
                 ([artifacts.{}] sha256 = {{ {} = \"<sha256 of the file>\" }}) or accept it with --allow-unverified",
                artifact.name,
                artifact.arch
            );
        }
    }
    message.push_str("or run once without --offline to fill the cache");
    message
}

async fn download(
    fetcher: &Fetcher,
    cache: &Cache,
    artifact: &Artifact,
    transfers: &Transfers,
    printer: &Printer,
) -> Result<Present> {
    let expected = artifact.checksum.digest();
    let key = match expected {
        Some(digest) => digest.to_string(),
        None => Cache::url_key(&artifact.url),
    };
    let lock = crate::fsutil::FileLock::acquire(cache.lock_path(&key)).await?;
    // Another build may have fetched it while this one waited for the lock.
    if let Some(found) = find_cached(cache, artifact, printer)? {
        transfers.line(format!("cached     {}", artifact.label()));
        return Ok(found);
    }
    let partial = cache.partial_path(&key);
    let transfer = transfers.start(&format!("{} {}", artifact.name, artifact.version));
    let mut fetched = fetch_into(fetcher, artifact, &partial, &transfer).await?;
    if let Some(expected) = expected {
        if fetched.digest != expected && fetched.resumed_from > 0 {
            // The earlier part may have been bad: one fresh try from byte zero.
            cache::remove_if_present(&partial)?;
            fetched = fetch_into(fetcher, artifact, &partial, &transfer).await?;
        }
        if fetched.digest != expected {
            cache::remove_if_present(&partial)?;
            bail!(
                "checksum mismatch for {} from {}:\n  expected sha256 {expected} ({})\n  computed sha256 {}\nThe file was discarded; nothing was cached.",
                artifact.label(),
                artifact.fetch_url,
                artifact.checksum.source(),
                fetched.digest
            );
        }
    }
    let path = cache.insert(&partial, &fetched.digest)?;
    if expected.is_none() {
        cache.remember_url(&artifact.url, &fetched.digest)?;
    }
    let seconds = transfer.elapsed().as_secs_f64();
    transfer.done(format!(
        "downloaded {}: {} in {seconds:.1} s{}",
        artifact.label(),
        bytes(fetched.len),
        if fetched.resumed_from > 0 {
            format!(" (resumed at {})", bytes(fetched.resumed_from))
        } else {
            String::new()
        }
    ));
    drop(lock);
    Ok(Present {
        artifact: artifact.clone(),
        digest: fetched.digest,
        path,
        verified: expected.is_some(),
    })
}

async fn fetch_into(
    fetcher: &Fetcher,
    artifact: &Artifact,
    partial: &std::path::Path,
    progress: &dyn crate::progress::TransferProgress,
) -> Result<fetch::Fetched> {
    fetcher
        .to_file(&artifact.fetch_url, partial, progress)
        .await
        .map_err(|error: FetchError| {
            anyhow::Error::new(error).context(format!("cannot fetch {}", artifact.label()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_rewrites_https_urls_only() {
        let mirror: Mirror = "http://mirror.local:8080/kdind/".parse().unwrap();
        assert_eq!(
            mirror.rewrite("https://dl.k8s.io/release/v1.35.1/bin/linux/amd64/kubelet"),
            "http://mirror.local:8080/kdind/dl.k8s.io/release/v1.35.1/bin/linux/amd64/kubelet"
        );
        assert_eq!(mirror.rewrite("file:///opt/x"), "file:///opt/x");
        assert!("mirror.local".parse::<Mirror>().is_err());
        assert!("https://".parse::<Mirror>().is_err());
        assert!("file:///srv/mirror".parse::<Mirror>().is_ok());
    }

    fn settings(dir: &std::path::Path) -> Settings {
        Settings {
            arch: Arch::Amd64,
            mirror: None,
            offline: false,
            allow_unverified: false,
            cache: Cache::new(dir.join("cache")),
            lock_path: dir.join("kdind.lock"),
        }
    }

    #[test]
    fn the_default_plan_reads_checksum_files_except_for_cri_dockerd() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::new(&Config::defaults(), settings(dir.path())).unwrap();
        let sources: Vec<(&str, &str)> = plan
            .artifacts
            .iter()
            .map(|artifact| (artifact.name.as_str(), artifact.checksum.source()))
            .collect();
        assert_eq!(
            sources,
            [
                ("minikube", "checksum_url"),
                ("kubectl", "checksum_url"),
                ("kubeadm", "checksum_url"),
                ("kubelet", "checksum_url"),
                ("cri-dockerd", "none"),
                ("crictl", "checksum_url"),
                ("cni-plugins", "checksum_url"),
            ]
        );
    }

    #[test]
    fn pins_win_over_the_lock_and_the_lock_over_checksum_files() {
        let dir = tempfile::tempdir().unwrap();
        let pin = crate::digest::hash_bytes(b"pin");
        let locked = crate::digest::hash_bytes(b"locked");
        let config = Config::from_user_text(
            "kdind.toml",
            &format!("[artifacts.minikube]\nsha256 = {{ amd64 = \"{pin}\" }}\n"),
        )
        .unwrap();
        let mut lock = LockFile::read(&dir.path().join("kdind.lock")).unwrap();
        let minikube_url =
            "https://storage.googleapis.com/minikube/releases/v1.38.1/minikube-linux-amd64";
        let crictl_url = "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz";
        lock.record(
            dir.path(),
            &[
                (minikube_url.into(), locked, "x".into()),
                (crictl_url.into(), locked, "y".into()),
            ],
        )
        .unwrap();
        let plan = Plan::new(&config, settings(dir.path())).unwrap();
        assert_eq!(plan.artifacts[0].checksum, Checksum::Pinned(pin));
        assert_eq!(plan.artifacts[5].checksum, Checksum::Locked(locked));
    }

    #[tokio::test]
    async fn offline_reports_every_blocking_artifact_in_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut offline = settings(dir.path());
        offline.offline = true;
        let mut plan = Plan::new(&Config::defaults(), offline).unwrap();
        let error = ensure(&mut plan, &Printer::new(true, 0))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("7 of the artifacts block the build (7 of them are not in the cache"),
            "{error}"
        );
        for name in ArtifactName::ALL {
            assert!(error.contains(&format!("  {name} ")), "{name}: {error}");
        }
        assert!(
            error.contains(
                "no checksum to verify it against: pin it in kdind.toml ([artifacts.cri-dockerd]"
            ),
            "{error}"
        );
        assert!(error.contains("--allow-unverified"), "{error}");
    }

    #[test]
    fn refusal_lists_each_unverified_file_and_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::new(&Config::defaults(), settings(dir.path())).unwrap();
        let error = refuse_unverified(&plan, &Printer::new(true, 0))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cri-dockerd 0.4.3 (amd64)"), "{error}");
        assert!(
            error.contains("[artifacts.cri-dockerd] sha256 = { amd64 ="),
            "{error}"
        );
        assert!(error.contains("--allow-unverified"), "{error}");
    }
}
