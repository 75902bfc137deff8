//! Starting and stopping units, as `systemctl` itself does it on each call: dependencies
//! first, one start or stop per unit at a time (a lock file), a supervisor per service,
//! and a stop that ends the supervisor before it signals the service as `KillMode=` says.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::paths::Root;
use crate::service::{self, Invocation};
use crate::state::{group_members, ActiveState, Process, Record, Store};
use crate::supervisor::{self, FAILED, READY};
use crate::sys;
use crate::unit::{self, KillMode, Kind, Unit};

/// The hidden verb the supervisor runs under.
pub const SUPERVISE: &str = "__supervise";

#[derive(Debug)]
pub enum Failure {
    /// No unit file of that name (systemd's exit 5 for start and stop).
    NotFound,
    Masked,
    /// The unit file cannot be used.
    Bad(String),
    /// The service failed to start or a dependency did.
    Failed(String),
    /// The operation does not apply to the unit (reload without ExecReload=).
    NotApplicable,
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure::Io(error)
    }
}

pub struct Manager {
    pub root: Root,
    pub store: Store,
    pub no_block: bool,
    executable: PathBuf,
}

impl Manager {
    pub fn new(root: Root, no_block: bool) -> io::Result<Manager> {
        let store = Store::new(&root);
        Ok(Manager {
            root,
            store,
            no_block,
            executable: std::env::current_exe()?,
        })
    }

    pub fn load(&self, name: &str) -> Result<Unit, Failure> {
        Unit::load(&self.root, name).map_err(|error| Failure::Bad(error.0))
    }

    pub fn is_masked(&self, unit: &Unit) -> bool {
        unit.masked_by_file || self.store.has_mark("masked", &unit.name)
    }

    /// The unit's state as it is now.
    pub fn observe(&self, name: &str) -> (Record, ActiveState, String) {
        let record = self.store.read(name);
        let (active, sub) = record.observed();
        let sub = sub.to_owned();
        (record, active, sub)
    }

    pub fn start(&self, name: &str) -> Result<(), Failure> {
        self.start_with(name, &mut HashSet::new())
    }

    fn start_with(&self, name: &str, visiting: &mut HashSet<String>) -> Result<(), Failure> {
        if !visiting.insert(name.to_owned()) {
            return Ok(());
        }
        let unit = self.load(name)?;
        if !unit.exists() {
            return Err(Failure::NotFound);
        }
        if self.is_masked(&unit) {
            return Err(Failure::Masked);
        }
        unit.validate().map_err(|error| Failure::Bad(error.0))?;
        for dependency in unit
            .names("Requires")
            .into_iter()
            .chain(unit.names("BindsTo"))
        {
            self.start_with(&dependency, visiting).map_err(|failure| {
                Failure::Failed(format!(
                    "its dependency {dependency} failed to start: {}",
                    describe(&failure)
                ))
            })?;
        }
        for dependency in unit.names("Wants") {
            // Wanted units are started when they exist; their failure is not ours.
            let _ = self.start_with(&dependency, visiting);
        }
        if unit.kind() == Kind::Service {
            let socket = format!("{}.socket", unit::stem(name));
            if Unit::load(&self.root, &socket).is_ok_and(|socket| socket.exists()) {
                self.start_with(&socket, visiting)?;
            }
        }
        let _lock = self.store.lock(name)?;
        let (_, active, _) = self.observe(name);
        if matches!(active, ActiveState::Active | ActiveState::Activating) {
            return Ok(());
        }
        match unit.kind() {
            Kind::Service => self.spawn_supervisor(name),
            Kind::Socket => Ok(self
                .store
                .write(name, &Record::new(ActiveState::Active, "listening"))?),
            _ => Ok(self
                .store
                .write(name, &Record::new(ActiveState::Active, "target"))?),
        }
    }

    fn spawn_supervisor(&self, name: &str) -> Result<(), Failure> {
        let log = supervisor::open_log(&self.root, name)?;
        let mut command = Command::new(&self.executable);
        command
            .arg("--root")
            .arg(self.root.as_path())
            .arg(SUPERVISE)
            .arg(name)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // SAFETY: setsid, fcntl and close are async-signal-safe. The supervisor (and the
        // service it starts) leaves the caller's session and process group, and keeps none
        // of the caller's open descriptors beyond its standard streams.
        unsafe {
            command.pre_exec(|| {
                sys::setsid_in_child()?;
                sys::close_inherited_in_child()
            });
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        if self.no_block {
            return Ok(());
        }
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let line = line.trim_end();
        if line == READY {
            Ok(())
        } else if let Some(message) = line.strip_prefix(FAILED) {
            Err(Failure::Failed(message.to_owned()))
        } else {
            Err(Failure::Failed(
                "its supervisor ended without a word".to_owned(),
            ))
        }
    }

    pub fn stop(&self, name: &str) -> Result<(), Failure> {
        let unit = self.load(name)?;
        let record = self.store.read(name);
        if !unit.exists() && record == Record::default() {
            return Err(Failure::NotFound);
        }
        let _lock = self.store.lock(name)?;
        let record = self.store.read(name);
        let (active, _) = record.observed();
        if unit.kind() != Kind::Service {
            self.store.remove(name)?;
            return Ok(());
        }
        let supervisor = record.supervisor.filter(Process::is_alive);
        let main = record.main.filter(Process::is_alive);
        if supervisor.is_none() && main.is_none() {
            if active != ActiveState::Failed {
                self.store.remove(name)?;
            }
            return Ok(());
        }
        let mut stopping = record.clone();
        stopping.active = ActiveState::Deactivating;
        stopping.sub = "stop".to_owned();
        self.store.write(name, &stopping)?;

        // The supervisor goes first so that nothing restarts what we stop.
        if let Some(supervisor) = supervisor {
            sys::kill(supervisor.pid, sys::SIGKILL)?;
        }
        let environment = self.command_environment(&unit, main);
        self.run_commands(&unit, "ExecStop", &environment);

        let group = record.supervisor.map(|supervisor| supervisor.pid);
        let mode = unit.kill_mode().unwrap_or(KillMode::ControlGroup);
        let signal = unit.kill_signal().unwrap_or(sys::SIGTERM);
        let whole_group = matches!(mode, KillMode::ControlGroup);
        let signal_all = |signal: i32| {
            if let Some(main) = main {
                let _ = sys::kill(main.pid, signal);
            }
            if let (true, Some(group)) = (whole_group, group) {
                let _ = sys::kill(-group, signal);
            }
        };
        if mode != KillMode::None {
            signal_all(signal);
        }
        let gone = || {
            main.is_none_or(|main| !main.is_alive())
                && (!matches!(mode, KillMode::ControlGroup | KillMode::Mixed)
                    || group.is_none_or(|group| group_members(group).is_empty()))
        };
        let timeout = unit.stop_timeout().unwrap_or(None);
        let mut timed_out = false;
        if mode != KillMode::None && !wait_until(gone, timeout) {
            timed_out = true;
            if let Some(main) = main {
                let _ = sys::kill(main.pid, sys::SIGKILL);
            }
            if let (true, Some(group)) = (
                matches!(mode, KillMode::ControlGroup | KillMode::Mixed),
                group,
            ) {
                let _ = sys::kill(-group, sys::SIGKILL);
            }
            wait_until(gone, Some(Duration::from_secs(5)));
        }
        self.run_commands(&unit, "ExecStopPost", &environment);
        if timed_out {
            let mut failed = Record::new(ActiveState::Failed, "failed");
            failed.result = "timeout".to_owned();
            self.store.write(name, &failed)?;
        } else {
            self.store.remove(name)?;
        }
        Ok(())
    }

    pub fn restart(&self, name: &str) -> Result<(), Failure> {
        let unit = self.load(name)?;
        if !unit.exists() {
            return Err(Failure::NotFound);
        }
        if self.is_masked(&unit) {
            return Err(Failure::Masked);
        }
        self.stop(name)?;
        self.start(name)
    }

    pub fn reload(&self, name: &str) -> Result<(), Failure> {
        let unit = self.load(name)?;
        if !unit.exists() {
            return Err(Failure::NotFound);
        }
        let (record, active, _) = self.observe(name);
        if unit.get("Service", "ExecReload").is_none() {
            return Err(Failure::NotApplicable);
        }
        if !matches!(active, ActiveState::Active) {
            return Err(Failure::Failed("the unit is not active".to_owned()));
        }
        let environment = self.command_environment(&unit, record.main.filter(Process::is_alive));
        if self.run_commands(&unit, "ExecReload", &environment) {
            Ok(())
        } else {
            Err(Failure::Failed("its ExecReload= command failed".to_owned()))
        }
    }

    fn command_environment(&self, unit: &Unit, main: Option<Process>) -> BTreeMap<String, String> {
        let mut environment = service::environment(&self.root, unit).unwrap_or_default();
        if let Some(main) = main {
            environment.insert("MAINPID".to_owned(), main.pid.to_string());
        }
        environment
    }

    /// Run the commands of one `Exec*=` directive to completion; false if one failed.
    fn run_commands(&self, unit: &Unit, key: &str, environment: &BTreeMap<String, String>) -> bool {
        let Ok(invocations) = service::invocations(unit, key, environment) else {
            return false;
        };
        let Ok(log) = supervisor::open_log(&self.root, &unit.name) else {
            return false;
        };
        let timeout = unit.stop_timeout().unwrap_or(None);
        invocations.iter().all(|invocation: &Invocation| {
            let status = invocation
                .command(environment, &log)
                .and_then(|mut command| command.spawn())
                .ok()
                .and_then(|mut child| supervisor::wait_with_timeout(&mut child, timeout));
            invocation.ignore_failure || status.is_some_and(|status| status.success())
        })
    }
}

/// Poll `done` until it holds or the timeout passes; true if it holds.
fn wait_until(done: impl Fn() -> bool, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut interval = Duration::from_millis(2);
    loop {
        if done() {
            return true;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(50));
    }
}

pub fn describe(failure: &Failure) -> String {
    match failure {
        Failure::NotFound => "unit not found".to_owned(),
        Failure::Masked => "unit is masked".to_owned(),
        Failure::Bad(message) | Failure::Failed(message) => message.clone(),
        Failure::NotApplicable => "operation not applicable".to_owned(),
        Failure::Io(error) => error.to_string(),
    }
}
