//! File-system helpers every writer in kdind shares: atomic replacement with a chosen mode,
//! and advisory locks that wait without blocking the async runtime.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Replace `path` with `bytes`: written to a temporary file in the same directory, synced,
/// given `mode`, then renamed over the target. Readers see the old file or the new one,
/// never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut file = AtomicFile::create(path)?;
    file.file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of a file in {}", dir.display()))?;
    file.file()
        .write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.commit()
}

/// A file written beside its target (in a temporary file) and renamed over it by
/// `commit`, after a sync; dropped without a commit, it leaves the target alone.
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = parent_dir(path);
        let temp = tempfile::Builder::new()
            .prefix(".kdind-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Self {
            temp,
            path: path.to_owned(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.temp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.temp
            .persist(&path)
            .map_err(|error| error.error)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// An exclusive advisory lock on a file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Wait for the lock on `path` (created when missing) on a blocking thread.
    pub async fn acquire(path: PathBuf) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::acquire_blocking(path))
            .await
            .context("the lock waiter stopped")?
    }

    pub fn acquire_blocking(path: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(parent_dir(&path))
            .with_context(|| format!("cannot create {}", parent_dir(&path).display()))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn atomic_write_sets_the_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["config"]);
    }

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry.lock");
        let first = FileLock::acquire_blocking(path.clone()).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _second = FileLock::acquire_blocking(path).unwrap();
            sender.send(()).unwrap();
        });
        assert!(receiver
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(first);
        receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the second lock is taken once the first is released");
        waiter.join().unwrap();
    }
}
