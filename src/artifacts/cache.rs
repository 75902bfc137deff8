//! The download cache: files addressed by their sha256.
//!
//! ```text
//! <cache>/sha256/<hex>        verified files, read-only
//! <cache>/verified/<hex>      "<len> <mtime_ns> <inode>" of the file when it was last hashed
//! <cache>/by-url/<hex(url)>   the digest an unverified download had (--allow-unverified only)
//! <cache>/partial/<key>       a download in progress; kept across runs so it can resume
//! <cache>/locks/<key>.lock    one per entry: two builds at once share one download
//! ```

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::digest::{hash_bytes, hash_file, Digest};
use crate::fsutil::write_atomic;

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit(PathBuf),
    Miss,
    /// The file was there but no longer hashes to its name; it has been removed.
    Corrupted,
}

impl Cache {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `KDIND_CACHE_DIR`, else `$XDG_CACHE_HOME/kdind`, else `~/.cache/kdind`.
    pub fn locate(env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let nonempty = |key: &str| env(key).filter(|value| !value.is_empty());
        let root = if let Some(dir) = nonempty("KDIND_CACHE_DIR") {
            PathBuf::from(dir)
        } else if let Some(dir) = nonempty("XDG_CACHE_HOME") {
            PathBuf::from(dir).join("kdind")
        } else if let Some(home) = nonempty("HOME") {
            PathBuf::from(home).join(".cache").join("kdind")
        } else {
            anyhow::bail!("cannot find a cache directory: set KDIND_CACHE_DIR or HOME");
        };
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file with this digest lives (whether or not it is there).
    pub fn entry_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.to_string())
    }

    pub fn partial_path(&self, key: &str) -> PathBuf {
        self.root.join("partial").join(key)
    }

    pub fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.lock"))
    }

    fn stamp_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("verified").join(digest.to_string())
    }

    fn url_index_path(&self, url: &str) -> PathBuf {
        self.root
            .join("by-url")
            .join(hash_bytes(url.as_bytes()).to_string())
    }

    /// The key for locks and partial files of a download whose digest is not known.
    pub fn url_key(url: &str) -> String {
        format!("url-{}", hash_bytes(url.as_bytes()))
    }

    /// Whether the entry is present, without hashing it (for listings).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.entry_path(digest).is_file()
    }

    /// Find a verified entry. The file is hashed again unless it is unchanged since it was
    /// last hashed; a file that no longer matches is removed.
    pub fn lookup(&self, digest: &Digest) -> Result<Lookup> {
        let path = self.entry_path(digest);
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()))
            }
        };
        let stamp = stamp_of(&metadata);
        let stamp_path = self.stamp_path(digest);
        if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
            return Ok(Lookup::Hit(path));
        }
        let actual = hash_file(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if actual == *digest {
            write_atomic(&stamp_path, stamp.as_bytes(), 0o644)?;
            return Ok(Lookup::Hit(path));
        }
        remove_if_present(&path)?;
        remove_if_present(&stamp_path)?;
        Ok(Lookup::Corrupted)
    }

    /// Move a finished, verified download into place.
    pub fn insert(&self, partial: &Path, digest: &Digest) -> Result<PathBuf> {
        let path = self.entry_path(digest);
        let dir = path.parent().expect("entries live in a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o444))
            .with_context(|| format!("cannot set the mode of {}", partial.display()))?;
        std::fs::rename(partial, &path)
            .with_context(|| format!("cannot move {} to {}", partial.display(), path.display()))?;
        let metadata =
            std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        write_atomic(
            &self.stamp_path(digest),
            stamp_of(&metadata).as_bytes(),
            0o644,
        )?;
        Ok(path)
    }

    /// Remember the digest an unverified download from `url` had.
    pub fn remember_url(&self, url: &str, digest: &Digest) -> Result<()> {
        write_atomic(
            &self.url_index_path(url),
            format!("{digest}\n").as_bytes(),
            0o644,
        )
    }

    /// The digest an earlier unverified download from `url` had, if any.
    pub fn recall_url(&self, url: &str) -> Option<Digest> {
        std::fs::read_to_string(self.url_index_path(url))
            .ok()?
            .parse()
            .ok()
    }
}

fn stamp_of(metadata: &std::fs::Metadata) -> String {
    format!(
        "{} {}.{:09} {}",
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ino()
    )
}

pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn location_follows_the_environment() {
        let cache = Cache::locate(env_of(&[("KDIND_CACHE_DIR", "/c"), ("HOME", "/h")])).unwrap();
        assert_eq!(cache.root(), Path::new("/c"));
        let cache = Cache::locate(env_of(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])).unwrap();
        assert_eq!(cache.root(), Path::new("/x/kdind"));
        let cache = Cache::locate(env_of(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")])).unwrap();
        assert_eq!(cache.root(), Path::new("/h/.cache/kdind"));
        assert!(Cache::locate(env_of(&[])).is_err());
    }

    #[test]
    fn insert_then_lookup_then_corruption_is_detected_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned());
        let digest = hash_bytes(b"payload");
        assert_eq!(cache.lookup(&digest).unwrap(), Lookup::Miss);
        let partial = cache.partial_path("x");
        std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
        std::fs::write(&partial, b"payload").unwrap();
        let path = cache.insert(&partial, &digest).unwrap();
        assert_eq!(cache.lookup(&digest).unwrap(), Lookup::Hit(path.clone()));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o444
        );
        // Same length, other bytes: the stamp no longer matches, the hash is checked.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, b"PAYLOAD").unwrap();
        assert_eq!(cache.lookup(&digest).unwrap(), Lookup::Corrupted);
        assert!(!path.exists());
    }

    #[test]
    fn url_index_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned());
        let digest = hash_bytes(b"x");
        assert_eq!(cache.recall_url("https://a/b"), None);
        cache.remember_url("https://a/b", &digest).unwrap();
        assert_eq!(cache.recall_url("https://a/b"), Some(digest));
    }
}
