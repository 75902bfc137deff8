//! `kdind.lock`: the checksums kdind read from upstream checksum files, so that the next
//! build verifies against the same values instead of asking upstream again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsutil::{write_atomic, FileLock};

const HEADER: &str = "\
# kdind.lock: sha256 checksums kdind read from upstream checksum files.
# Keep it next to kdind.toml (and commit it): later builds verify against these values.
# Delete an entry to read it from upstream again.
";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    url: String,
    sha256: Digest,
    from: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    checksum: Vec<Entry>,
}

/// The lock file's entries, keyed by the artifact's upstream URL.
#[derive(Debug, Clone)]
pub struct LockFile {
    path: PathBuf,
    entries: BTreeMap<String, (Digest, String)>,
}

impl LockFile {
    /// Read `path`; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Self> {
        let entries = match std::fs::read_to_string(path) {
            Ok(text) => parse(&text).with_context(|| format!("{} is not valid", path.display()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()))
            }
        };
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    pub fn get(&self, url: &str) -> Option<Digest> {
        self.entries.get(url).map(|(digest, _)| *digest)
    }

    /// Record new checksums. The file is re-read under a lock and merged, so two builds
    /// recording at once both keep their entries.
    pub fn record(&mut self, lock_dir: &Path, new: &[(String, Digest, String)]) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let key = crate::digest::hash_bytes(self.path.to_string_lossy().as_bytes());
        let _guard = FileLock::acquire_blocking(lock_dir.join(format!("lockfile-{key}.lock")))?;
        let mut current = Self::read(&self.path)?;
        for (url, digest, from) in new {
            current.entries.insert(url.clone(), (*digest, from.clone()));
        }
        let file = File {
            checksum: current
                .entries
                .iter()
                .map(|(url, (sha256, from))| Entry {
                    url: url.clone(),
                    sha256: *sha256,
                    from: from.clone(),
                })
                .collect(),
        };
        let body = toml::to_string(&file).context("cannot write the lock file")?;
        write_atomic(&self.path, format!("{HEADER}\n{body}").as_bytes(), 0o644)?;
        self.entries = current.entries;
        Ok(())
    }
}

fn parse(text: &str) -> Result<BTreeMap<String, (Digest, String)>> {
    let file: File = toml::from_str(text)?;
    Ok(file
        .checksum
        .into_iter()
        .map(|entry| (entry.url, (entry.sha256, entry.from)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::hash_bytes;

    #[test]
    fn records_merge_with_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kdind.lock");
        let mut first = LockFile::read(&path).unwrap();
        let mut second = LockFile::read(&path).unwrap();
        first
            .record(
                dir.path(),
                &[(
                    "https://a/x".into(),
                    hash_bytes(b"x"),
                    "https://a/x.sha256".into(),
                )],
            )
            .unwrap();
        second
            .record(
                dir.path(),
                &[(
                    "https://a/y".into(),
                    hash_bytes(b"y"),
                    "https://a/y.sha256".into(),
                )],
            )
            .unwrap();
        let reread = LockFile::read(&path).unwrap();
        assert_eq!(reread.get("https://a/x"), Some(hash_bytes(b"x")));
        assert_eq!(reread.get("https://a/y"), Some(hash_bytes(b"y")));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# kdind.lock"), "{text}");
        assert!(text.contains("from = \"https://a/y.sha256\""), "{text}");
    }

    #[test]
    fn a_broken_lock_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kdind.lock");
        std::fs::write(&path, "[[checksum]]\nurl = 1\n").unwrap();
        let error = format!("{:#}", LockFile::read(&path).unwrap_err());
        assert!(error.contains("kdind.lock is not valid"), "{error}");
    }
}
