//! Unit files: the search path, drop-ins, parsing, and typed access to the directives
//! this service manager acts on. Units are read afresh on every call; there is no daemon
//! holding a parsed copy, so `daemon-reload` has nothing to do.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::paths::Root;
use crate::syntax::{self, ExecLine, Specifiers};

/// Where unit files are looked up, first match wins (relative to the root).
pub const SEARCH_PATH: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

const SUFFIXES: [&str; 8] = [
    ".service", ".socket", ".target", ".timer", ".mount", ".path", ".slice", ".scope",
];

/// `docker` and `docker.service` name the same unit.
pub fn normalize_name(name: &str) -> String {
    if SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

/// The unit name without its type suffix (`docker` for `docker.service`).
pub fn stem(name: &str) -> &str {
    SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service,
    Socket,
    Target,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    Simple,
    Exec,
    Notify,
    Forking,
    Oneshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    Always,
    OnSuccess,
    OnFailure,
    OnAbnormal,
    OnAbort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    ControlGroup,
    Process,
    Mixed,
    None,
}

/// A loaded unit: its file, its drop-ins and every assignment in file order.
#[derive(Debug, Clone)]
pub struct Unit {
    pub name: String,
    /// The main unit file, `None` when no file of that name exists.
    pub fragment: Option<PathBuf>,
    pub dropins: Vec<PathBuf>,
    /// The unit file is a link to /dev/null or empty: systemd's way of masking.
    pub masked_by_file: bool,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    section: String,
    key: String,
    value: String,
}

/// A unit file that cannot be used, with the reason.
#[derive(Debug)]
pub struct BadUnit(pub String);

impl Unit {
    /// Find and parse `name` (already normalized) under `root`.
    pub fn load(root: &Root, name: &str) -> Result<Unit, BadUnit> {
        let mut fragment = None;
        let mut masked_by_file = false;
        for dir in SEARCH_PATH {
            let candidate = root.join(dir).join(name);
            if let Ok(metadata) = fs::symlink_metadata(&candidate) {
                masked_by_file = fs::read_link(&candidate)
                    .is_ok_and(|target| target == Path::new("/dev/null"))
                    || (metadata.is_file() && metadata.len() == 0);
                fragment = Some(candidate);
                break;
            }
        }
        let dropins = find_dropins(root, name);
        let mut unit = Unit {
            name: name.to_owned(),
            fragment,
            dropins,
            masked_by_file,
            entries: Vec::new(),
        };
        if unit.masked_by_file {
            return Ok(unit);
        }
        let files: Vec<PathBuf> = unit
            .fragment
            .iter()
            .chain(unit.dropins.iter())
            .cloned()
            .collect();
        for file in files {
            let text = fs::read_to_string(&file)
                .map_err(|error| BadUnit(format!("cannot read {}: {error}", file.display())))?;
            unit.entries.extend(
                parse(&text).map_err(|error| BadUnit(format!("{}: {error}", file.display())))?,
            );
        }
        Ok(unit)
    }

    pub fn exists(&self) -> bool {
        self.fragment.is_some()
    }

    pub fn kind(&self) -> Kind {
        match self.name.rsplit_once('.').map(|(_, suffix)| suffix) {
            Some("service") => Kind::Service,
            Some("socket") => Kind::Socket,
            Some("target") => Kind::Target,
            _ => Kind::Other,
        }
    }

    /// The last value of a single-valued directive.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.section == section && entry.key == key)
            .map(|entry| entry.value.as_str())
    }

    /// Every value of a list directive, in order; an empty assignment resets the list.
    pub fn all(&self, section: &str, key: &str) -> Vec<&str> {
        let mut values = Vec::new();
        for entry in self
            .entries
            .iter()
            .filter(|entry| entry.section == section && entry.key == key)
        {
            if entry.value.trim().is_empty() {
                values.clear();
            } else {
                values.push(entry.value.as_str());
            }
        }
        values
    }

    /// A whitespace-separated list of unit names (`Requires=`, `Wants=`, `After=`, ...).
    pub fn names(&self, key: &str) -> Vec<String> {
        self.all("Unit", key)
            .iter()
            .flat_map(|value| value.split_whitespace())
            .map(normalize_name)
            .collect()
    }

    pub fn description(&self) -> &str {
        self.get("Unit", "Description").unwrap_or(&self.name)
    }

    pub fn has_install_section(&self) -> bool {
        self.entries.iter().any(|entry| entry.section == "Install")
    }

    pub fn specifiers(&self) -> Specifiers<'_> {
        Specifiers {
            unit: &self.name,
            runtime_dir: "/run",
        }
    }

    pub fn service_type(&self) -> Result<ServiceType, BadUnit> {
        Ok(match self.get("Service", "Type") {
            None if self.get("Service", "ExecStart").is_none() => ServiceType::Oneshot,
            None | Some("simple") | Some("idle") | Some("dbus") => ServiceType::Simple,
            Some("exec") => ServiceType::Exec,
            Some("notify") | Some("notify-reload") => ServiceType::Notify,
            Some("forking") => ServiceType::Forking,
            Some("oneshot") => ServiceType::Oneshot,
            Some(other) => return Err(BadUnit(format!("unknown Type={other}"))),
        })
    }

    pub fn restart_policy(&self) -> Result<RestartPolicy, BadUnit> {
        Ok(match self.get("Service", "Restart").unwrap_or("no") {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "on-success" => RestartPolicy::OnSuccess,
            "on-failure" => RestartPolicy::OnFailure,
            "on-abnormal" => RestartPolicy::OnAbnormal,
            "on-abort" | "on-watchdog" => RestartPolicy::OnAbort,
            other => return Err(BadUnit(format!("unknown Restart={other}"))),
        })
    }

    pub fn kill_mode(&self) -> Result<KillMode, BadUnit> {
        Ok(
            match self.get("Service", "KillMode").unwrap_or("control-group") {
                "control-group" => KillMode::ControlGroup,
                "process" => KillMode::Process,
                "mixed" => KillMode::Mixed,
                "none" => KillMode::None,
                other => return Err(BadUnit(format!("unknown KillMode={other}"))),
            },
        )
    }

    pub fn kill_signal(&self) -> Result<i32, BadUnit> {
        let value = self.get("Service", "KillSignal").unwrap_or("SIGTERM");
        crate::sys::signal_number(value)
            .ok_or_else(|| BadUnit(format!("unknown KillSignal={value}")))
    }

    pub fn remain_after_exit(&self) -> bool {
        self.get("Service", "RemainAfterExit")
            .and_then(syntax::parse_bool)
            .unwrap_or(false)
    }

    fn timespan(
        &self,
        keys: &[&str],
        default: Option<Duration>,
    ) -> Result<Option<Duration>, BadUnit> {
        for key in keys {
            if let Some(value) = self.get("Service", key) {
                let span = syntax::parse_timespan(value)
                    .map_err(|error| BadUnit(format!("{key}={value}: {error}")))?;
                // 0 means "no timeout" in systemd.
                return Ok(span.filter(|span| !span.is_zero()));
            }
        }
        Ok(default)
    }

    pub fn restart_delay(&self) -> Result<Duration, BadUnit> {
        Ok(self
            .timespan(&["RestartSec"], Some(Duration::from_millis(100)))?
            .unwrap_or(Duration::ZERO))
    }

    /// `None` waits forever.
    pub fn start_timeout(&self) -> Result<Option<Duration>, BadUnit> {
        self.timespan(
            &["TimeoutStartSec", "TimeoutSec"],
            Some(Duration::from_secs(90)),
        )
    }

    /// systemd waits 90 s by default; a container node is better served by a shorter wait.
    pub fn stop_timeout(&self) -> Result<Option<Duration>, BadUnit> {
        self.timespan(
            &["TimeoutStopSec", "TimeoutSec"],
            Some(Duration::from_secs(20)),
        )
    }

    /// Exit codes that count as success besides 0 (`SuccessExitStatus=`).
    pub fn success_exit_codes(&self) -> Vec<i32> {
        self.all("Service", "SuccessExitStatus")
            .iter()
            .flat_map(|value| value.split_whitespace())
            .filter_map(|word| word.parse().ok())
            .collect()
    }

    /// The commands of an `Exec*=` directive, with specifiers expanded and the prefixes
    /// parsed. Variables are expanded later, against the service's environment.
    pub fn exec(&self, key: &str) -> Result<Vec<(ExecLine, bool)>, BadUnit> {
        let specifiers = self.specifiers();
        self.all("Service", key)
            .iter()
            .map(|value| {
                let expanded = syntax::expand_specifiers(value, &specifiers)
                    .map_err(|error| BadUnit(format!("{key}: {error}")))?;
                syntax::parse_exec(&expanded).map_err(|error| BadUnit(format!("{key}: {error}")))
            })
            .collect()
    }

    /// The unit's file and drop-ins, as `systemctl cat` shows them.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.fragment.iter().chain(self.dropins.iter())
    }

    /// Check what starting the unit needs, so a bad file fails `start` up front.
    pub fn validate(&self) -> Result<(), BadUnit> {
        if self.kind() != Kind::Service {
            return Ok(());
        }
        let service_type = self.service_type()?;
        for key in ["User", "Group"] {
            // Running a service as root that asked for less would be a silent escalation.
            if let Some(value) = self
                .get("Service", key)
                .filter(|value| !matches!(*value, "" | "root" | "0"))
            {
                return Err(BadUnit(format!(
                    "{key}={value} is not supported: every service runs as root here"
                )));
            }
        }
        self.restart_policy()?;
        self.kill_mode()?;
        self.kill_signal()?;
        self.restart_delay()?;
        self.start_timeout()?;
        self.stop_timeout()?;
        for key in [
            "ExecStartPre",
            "ExecStartPost",
            "ExecStop",
            "ExecStopPost",
            "ExecReload",
        ] {
            self.exec(key)?;
        }
        let starts = self.exec("ExecStart")?;
        match (service_type, starts.len()) {
            (ServiceType::Oneshot, _) => Ok(()),
            (_, 1) => Ok(()),
            (_, 0) => Err(BadUnit("the service has no ExecStart= setting".to_owned())),
            (_, _) => Err(BadUnit(
                "only Type=oneshot services may have more than one ExecStart=".to_owned(),
            )),
        }
    }
}

/// Drop-ins `<unit>.d/*.conf` from every directory of the search path, applied in file-name
/// order; a file name found in an earlier directory hides the same name in later ones.
fn find_dropins(root: &Root, name: &str) -> Vec<PathBuf> {
    let mut by_name: Vec<(String, PathBuf)> = Vec::new();
    for dir in SEARCH_PATH {
        let Ok(entries) = fs::read_dir(root.join(dir).join(format!("{name}.d"))) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(".conf") && !by_name.iter().any(|(seen, _)| *seen == file_name) {
                by_name.push((file_name, entry.path()));
            }
        }
    }
    by_name.sort();
    by_name.into_iter().map(|(_, path)| path).collect()
}

/// Parse one unit file into (section, key, value) entries.
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut section = String::new();
    let mut pending = String::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        if pending.is_empty() {
            let trimmed = raw.trim_start();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
        }
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            section = name
                .strip_suffix(']')
                .ok_or_else(|| format!("line {line_number}: a section header must end with ]"))?
                .to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {line_number}: expected Key=Value, found {line:?}"))?;
        if section.is_empty() {
            return Err(format!(
                "line {line_number}: assignment outside of a section"
            ));
        }
        entries.push(Entry {
            section: section.clone(),
            key: key.trim().to_owned(),
            value: value.trim().to_owned(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[(&str, &str)]) -> (crate::tempdir::TempDir, Root) {
        let dir = crate::tempdir::TempDir::new();
        for (path, text) in files {
            let path = dir.path().join(path.trim_start_matches('/'));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let root = Root::new(dir.path());
        (dir, root)
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_name("docker"), "docker.service");
        assert_eq!(normalize_name("cri-docker.socket"), "cri-docker.socket");
        assert_eq!(stem("cri-docker.service"), "cri-docker");
    }

    #[test]
    fn dropins_reset_and_replace_exec_start() {
        let (_dir, root) = root_with(&[
            (
                "/lib/systemd/system/kubelet.service",
                "[Unit]\nDescription=kubelet\nStartLimitIntervalSec=0\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\nRestartSec=600ms\n",
            ),
            (
                "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
                "[Unit]\nWants=docker.socket\n[Service]\nExecStart=\nExecStart=/var/lib/minikube/binaries/v1.35.1/kubelet --config=/var/lib/kubelet/config.yaml \\\n  --node-ip=10.0.0.2\n",
            ),
        ]);
        let unit = Unit::load(&root, "kubelet.service").unwrap();
        assert!(unit.exists());
        assert_eq!(unit.dropins.len(), 1);
        let starts = unit.exec("ExecStart").unwrap();
        assert_eq!(starts.len(), 1);
        let words: Vec<&str> = starts[0]
            .0
            .words
            .iter()
            .map(|word| word.text.as_str())
            .collect();
        assert_eq!(
            words,
            [
                "/var/lib/minikube/binaries/v1.35.1/kubelet",
                "--config=/var/lib/kubelet/config.yaml",
                "--node-ip=10.0.0.2"
            ]
        );
        assert_eq!(unit.names("Wants"), ["docker.socket"]);
        assert_eq!(unit.restart_policy().unwrap(), RestartPolicy::Always);
        assert_eq!(unit.restart_delay().unwrap(), Duration::from_millis(600));
        assert!(unit.validate().is_ok());
    }

    #[test]
    fn earlier_directory_wins_for_files_and_dropins() {
        let (_dir, root) = root_with(&[
            (
                "/etc/systemd/system/a.service",
                "[Service]\nExecStart=/bin/etc\n",
            ),
            (
                "/lib/systemd/system/a.service",
                "[Service]\nExecStart=/bin/lib\n",
            ),
            (
                "/etc/systemd/system/a.service.d/20-x.conf",
                "[Service]\nEnvironment=X=etc\n",
            ),
            (
                "/lib/systemd/system/a.service.d/20-x.conf",
                "[Service]\nEnvironment=X=lib\n",
            ),
            (
                "/lib/systemd/system/a.service.d/10-y.conf",
                "[Service]\nEnvironment=Y=lib\n",
            ),
        ]);
        let unit = Unit::load(&root, "a.service").unwrap();
        assert!(unit
            .fragment
            .as_ref()
            .unwrap()
            .ends_with("etc/systemd/system/a.service"));
        assert_eq!(unit.get("Service", "ExecStart"), Some("/bin/etc"));
        assert_eq!(unit.all("Service", "Environment"), ["Y=lib", "X=etc"]);
    }

    #[test]
    fn missing_unit_does_not_exist() {
        let (_dir, root) = root_with(&[]);
        let unit = Unit::load(&root, "nope.service").unwrap();
        assert!(!unit.exists());
    }

    #[test]
    fn dev_null_link_masks() {
        let (dir, root) = root_with(&[(
            "/lib/systemd/system/m.service",
            "[Service]\nExecStart=/bin/true\n",
        )]);
        let etc = dir.path().join("etc/systemd/system");
        fs::create_dir_all(&etc).unwrap();
        std::os::unix::fs::symlink("/dev/null", etc.join("m.service")).unwrap();
        assert!(Unit::load(&root, "m.service").unwrap().masked_by_file);
    }

    #[test]
    fn bad_files_are_reported_with_the_line() {
        let (_dir, root) = root_with(&[(
            "/etc/systemd/system/b.service",
            "[Service]\nthis is not an assignment\n",
        )]);
        let error = Unit::load(&root, "b.service").unwrap_err();
        assert!(error.0.contains("line 2"), "{}", error.0);
    }

    #[test]
    fn validation_catches_missing_exec_start_and_bad_values() {
        let (_dir, root) = root_with(&[
            (
                "/etc/systemd/system/none.service",
                "[Service]\nType=simple\n",
            ),
            (
                "/etc/systemd/system/restart.service",
                "[Service]\nExecStart=/bin/true\nRestart=sometimes\n",
            ),
            (
                "/etc/systemd/system/one.service",
                "[Service]\nType=oneshot\nExecStart=/bin/true\nExecStart=/bin/true\n",
            ),
            (
                "/etc/systemd/system/user.service",
                "[Service]\nUser=nobody\nExecStart=/bin/true\n",
            ),
            (
                "/etc/systemd/system/root.service",
                "[Service]\nUser=root\nGroup=0\nExecStart=/bin/true\n",
            ),
        ]);
        assert!(Unit::load(&root, "none.service")
            .unwrap()
            .validate()
            .unwrap_err()
            .0
            .contains("ExecStart"));
        assert!(Unit::load(&root, "restart.service")
            .unwrap()
            .validate()
            .unwrap_err()
            .0
            .contains("Restart=sometimes"));
        assert!(Unit::load(&root, "one.service").unwrap().validate().is_ok());
        assert!(Unit::load(&root, "user.service")
            .unwrap()
            .validate()
            .unwrap_err()
            .0
            .contains("User=nobody"));
        assert!(Unit::load(&root, "root.service")
            .unwrap()
            .validate()
            .is_ok());
    }

    #[test]
    fn specifiers_apply_to_exec_lines() {
        let (_dir, root) = root_with(&[(
            "/etc/systemd/system/s.service",
            "[Service]\nExecStart=/bin/echo %t/x %n 100%%\n",
        )]);
        let unit = Unit::load(&root, "s.service").unwrap();
        let (line, _) = &unit.exec("ExecStart").unwrap()[0];
        let words: Vec<&str> = line.words.iter().map(|word| word.text.as_str()).collect();
        assert_eq!(words, ["/bin/echo", "/run/x", "s.service", "100%"]);
    }
}
