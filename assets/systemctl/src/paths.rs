//! Every path this program reads or writes, under one root (`--root`, or
//! `KDIND_SYSTEMCTL_ROOT`), so it can be exercised on a host without touching the system.

use std::path::{Path, PathBuf};

use crate::unit;

#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The root directory itself (`/` on a real node).
    pub fn as_path(&self) -> &Path {
        &self.0
    }

    /// An absolute path as seen from inside the root.
    pub fn join(&self, absolute: impl AsRef<Path>) -> PathBuf {
        let absolute = absolute.as_ref();
        self.0.join(absolute.strip_prefix("/").unwrap_or(absolute))
    }

    /// Per-unit runtime state: PIDs, start times, enabled and masked marks.
    pub fn state_dir(&self) -> PathBuf {
        self.join("/run/kdind-systemctl")
    }

    /// A service's log: everything its processes write, and the supervisor's notes.
    pub fn log_file(&self, unit_name: &str) -> PathBuf {
        self.join("/var/log/kdind")
            .join(format!("{}.log", unit::stem(unit_name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_land_under_the_root() {
        let root = Root::new("/tmp/r");
        assert_eq!(
            root.join("/etc/docker/daemon.json"),
            PathBuf::from("/tmp/r/etc/docker/daemon.json")
        );
        assert_eq!(
            root.log_file("kubelet.service"),
            PathBuf::from("/tmp/r/var/log/kdind/kubelet.log")
        );
        assert_eq!(Root::new("/").join("/run/x"), PathBuf::from("/run/x"));
    }
}
