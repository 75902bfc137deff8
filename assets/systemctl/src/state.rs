//! Per-unit runtime state under `/run/kdind-systemctl/`: what the supervisor last
//! recorded (state, PIDs with their start times), the per-unit lock, and the enabled and
//! masked marks.
//!
//! A PID is only trusted together with the start time the kernel reports for it in
//! `/proc/<pid>/stat`, and a record only together with the start time of PID 1 when it was
//! written: after a container restart both differ, so leftover files never make a dead
//! service look alive.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::paths::Root;
use crate::sys;

/// A process identified by PID and kernel start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub start: u64,
}

impl Process {
    /// The process with this PID now, if there is one and it is not a zombie.
    pub fn find(pid: i32) -> Option<Process> {
        let (state, start, _) = read_stat(pid)?;
        (state != 'Z' && state != 'X').then_some(Process { pid, start })
    }

    pub fn is_alive(&self) -> bool {
        Process::find(self.pid).is_some_and(|now| now.start == self.start)
    }
}

/// State letter, start time and process group of a PID, from `/proc/<pid>/stat`.
fn read_stat(pid: i32) -> Option<(char, u64, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, pgrp field 5, starttime field 22 (1-based).
    let state = fields.first()?.chars().next()?;
    let group = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start, group))
}

/// Live processes whose process group is `group`.
pub fn group_members(group: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| matches!(read_stat(*pid), Some((state, _, g)) if g == group && state != 'Z' && state != 'X'))
        .collect()
}

fn init_start() -> u64 {
    read_stat(1).map(|(_, start, _)| start).unwrap_or(0)
}

/// systemd's ActiveState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveState {
    Inactive,
    Activating,
    Active,
    Deactivating,
    Failed,
}

impl ActiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveState::Inactive => "inactive",
            ActiveState::Activating => "activating",
            ActiveState::Active => "active",
            ActiveState::Deactivating => "deactivating",
            ActiveState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> ActiveState {
        match text {
            "activating" => ActiveState::Activating,
            "active" => ActiveState::Active,
            "deactivating" => ActiveState::Deactivating,
            "failed" => ActiveState::Failed,
            _ => ActiveState::Inactive,
        }
    }
}

/// What the supervisor (or `systemctl` itself, for sockets and targets) last recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub active: ActiveState,
    /// systemd's SubState: running, exited, dead, failed, start, auto-restart, listening...
    pub sub: String,
    pub supervisor: Option<Process>,
    pub main: Option<Process>,
    /// systemd's Result: success, exit-code, signal, timeout, exec-condition...
    pub result: String,
    pub exit_status: Option<i32>,
    pub restarts: u32,
    /// Unix time of the last state change.
    pub since: u64,
    init_start: u64,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            active: ActiveState::Inactive,
            sub: "dead".to_owned(),
            supervisor: None,
            main: None,
            result: "success".to_owned(),
            exit_status: None,
            restarts: 0,
            since: 0,
            init_start: 0,
        }
    }
}

impl Record {
    pub fn new(active: ActiveState, sub: &str) -> Record {
        Record {
            active,
            sub: sub.to_owned(),
            since: unix_now(),
            init_start: init_start(),
            ..Record::default()
        }
    }

    /// The state as it is now: the record corrected by what is actually running.
    pub fn observed(&self) -> (ActiveState, &str) {
        if self.init_start != init_start() {
            return (ActiveState::Inactive, "dead");
        }
        let supervisor_alive = self.supervisor.is_some_and(|process| process.is_alive());
        let main_alive = self.main.is_some_and(|process| process.is_alive());
        match self.active {
            ActiveState::Active if self.sub == "exited" => (ActiveState::Active, "exited"),
            ActiveState::Active if self.sub == "listening" || self.sub == "target" => {
                (self.active, &self.sub)
            }
            ActiveState::Active | ActiveState::Activating | ActiveState::Deactivating => {
                if self.active == ActiveState::Active && main_alive {
                    (ActiveState::Active, "running")
                } else if supervisor_alive {
                    if self.active == ActiveState::Active {
                        (ActiveState::Activating, "auto-restart")
                    } else {
                        (self.active, &self.sub)
                    }
                } else if main_alive {
                    (ActiveState::Active, "running")
                } else {
                    // Neither the supervisor nor the service is left: something killed
                    // them behind our back.
                    (ActiveState::Failed, "failed")
                }
            }
            ActiveState::Failed => (ActiveState::Failed, "failed"),
            ActiveState::Inactive => (ActiveState::Inactive, "dead"),
        }
    }

    fn to_text(&self) -> String {
        let process = |p: &Option<Process>| {
            p.map(|p| format!("{} {}", p.pid, p.start))
                .unwrap_or_default()
        };
        format!(
            "active={}\nsub={}\nsupervisor={}\nmain={}\nresult={}\nexit_status={}\nrestarts={}\nsince={}\ninit_start={}\n",
            self.active.as_str(),
            self.sub,
            process(&self.supervisor),
            process(&self.main),
            self.result,
            self.exit_status.map(|s| s.to_string()).unwrap_or_default(),
            self.restarts,
            self.since,
            self.init_start,
        )
    }

    fn from_text(text: &str) -> Record {
        let mut record = Record::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let process = || {
                let (pid, start) = value.split_once(' ')?;
                Some(Process {
                    pid: pid.parse().ok()?,
                    start: start.parse().ok()?,
                })
            };
            match key {
                "active" => record.active = ActiveState::parse(value),
                "sub" => record.sub = value.to_owned(),
                "supervisor" => record.supervisor = process(),
                "main" => record.main = process(),
                "result" => record.result = value.to_owned(),
                "exit_status" => record.exit_status = value.parse().ok(),
                "restarts" => record.restarts = value.parse().unwrap_or(0),
                "since" => record.since = value.parse().unwrap_or(0),
                "init_start" => record.init_start = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        record
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The state files of one root.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(root: &Root) -> Store {
        Store {
            dir: root.state_dir(),
        }
    }

    fn record_path(&self, unit: &str) -> PathBuf {
        self.dir.join("units").join(format!("{unit}.state"))
    }

    pub fn notify_socket(&self, unit: &str) -> PathBuf {
        self.dir.join("notify").join(unit)
    }

    pub fn read(&self, unit: &str) -> Record {
        fs::read_to_string(self.record_path(unit))
            .map(|text| Record::from_text(&text))
            .unwrap_or_default()
    }

    pub fn write(&self, unit: &str, record: &Record) -> io::Result<()> {
        write_atomically(&self.record_path(unit), record.to_text().as_bytes())
    }

    pub fn remove(&self, unit: &str) -> io::Result<()> {
        remove_if_present(&self.record_path(unit))
    }

    /// Hold the unit's lock until the returned file is dropped: one start or stop at a time.
    pub fn lock(&self, unit: &str) -> io::Result<File> {
        let path = self.dir.join("locks").join(unit);
        fs::create_dir_all(self.dir.join("locks"))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        sys::lock_exclusive(file.as_raw_fd())?;
        Ok(file)
    }

    fn mark_path(&self, kind: &str, unit: &str) -> PathBuf {
        self.dir.join(kind).join(unit)
    }

    pub fn has_mark(&self, kind: &str, unit: &str) -> bool {
        self.mark_path(kind, unit).exists()
    }

    pub fn set_mark(&self, kind: &str, unit: &str, on: bool) -> io::Result<()> {
        let path = self.mark_path(kind, unit);
        if on {
            write_atomically(&path, b"")
        } else {
            remove_if_present(&path)
        }
    }

    /// Every unit with a record, for `list-units`.
    pub fn recorded_units(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.dir.join("units")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()?
                    .strip_suffix(".state")
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// Remove a file; one that is already gone is not an error.
pub fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Write a file through a temporary file in the same directory, then rename it into place,
/// so readers see the old or the new content, never a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("file");
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut record = Record::new(ActiveState::Active, "running");
        record.main = Some(Process {
            pid: 42,
            start: 1234,
        });
        record.exit_status = Some(3);
        record.restarts = 2;
        assert_eq!(Record::from_text(&record.to_text()), record);
    }

    #[test]
    fn own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Process::find(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        assert!(!Process {
            start: me.start + 1,
            ..me
        }
        .is_alive());
    }

    #[test]
    fn a_record_of_live_processes_is_active_and_of_dead_ones_failed() {
        let me = Process::find(std::process::id() as i32).unwrap();
        let mut record = Record::new(ActiveState::Active, "running");
        record.main = Some(me);
        assert_eq!(record.observed(), (ActiveState::Active, "running"));
        record.main = Some(Process {
            start: me.start + 1,
            ..me
        });
        assert_eq!(record.observed().0, ActiveState::Failed);
    }

    #[test]
    fn a_record_from_another_container_life_is_inactive() {
        let me = Process::find(std::process::id() as i32).unwrap();
        let mut record = Record::new(ActiveState::Active, "running");
        record.main = Some(me);
        record.init_start += 1;
        assert_eq!(record.observed(), (ActiveState::Inactive, "dead"));
    }

    #[test]
    fn zombie_processes_are_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Not waited for: once it exits it stays a zombie until this test ends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while Process::find(pid).is_some() {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(child);
    }

    #[test]
    fn atomic_writes_replace_content() {
        let dir = crate::tempdir::TempDir::new();
        let path = dir.path().join("sub/file");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
