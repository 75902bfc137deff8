//! The supervisor: one small detached process per started service. It runs the service's
//! commands, waits for readiness (`Type=`), records state, restarts the service as
//! `Restart=` and `RestartSec=` say, and keeps the socket-activation listeners open across
//! restarts. `systemctl stop` ends it before it signals the service, so nothing comes back.
//!
//! It tells the `systemctl start` that spawned it whether the first start succeeded with
//! one line on its stdout (a pipe), then points its stdout at the unit's log so the caller's
//! pipe closes and the caller can exit.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::paths::Root;
use crate::service::{self, Invocation, Listeners};
use crate::state::{ActiveState, Process, Record, Store};
use crate::sys;
use crate::unit::{RestartPolicy, ServiceType, Unit};

pub const READY: &str = "ready";
pub const FAILED: &str = "failed: ";

/// How one run of the service ended.
struct Outcome {
    /// systemd's Result value.
    result: &'static str,
    exit_status: Option<i32>,
    /// Whether the exit counts as clean for `Restart=`.
    clean: bool,
    /// Whether the policy may restart it at all (not for a bad unit file).
    restartable: bool,
    message: String,
}

impl Outcome {
    fn broken(message: String) -> Outcome {
        Outcome {
            result: "resources",
            exit_status: None,
            clean: false,
            restartable: false,
            message,
        }
    }
}

struct Reporter {
    reported: bool,
}

impl Reporter {
    fn report(&mut self, log: &File, line: &str) {
        if self.reported {
            return;
        }
        self.reported = true;
        let mut stdout = io::stdout().lock();
        // The caller may have gone (--no-block): a failed write changes nothing.
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
        let _ = sys::redirect(log.as_raw_fd(), 1);
    }
}

pub fn open_log(root: &Root, unit: &str) -> io::Result<File> {
    let path = root.log_file(unit);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Entry point of `systemctl __supervise UNIT`.
pub fn run(root: &Root, name: &str) -> i32 {
    let store = Store::new(root);
    let mut log = match open_log(root, name) {
        Ok(log) => log,
        Err(error) => {
            println!("{FAILED}cannot open the log of {name}: {error}");
            return 1;
        }
    };
    let me = Process::find(std::process::id() as i32);
    let mut reporter = Reporter { reported: false };
    let mut listeners: Option<Listeners> = None;
    let mut restarts = 0;
    loop {
        let _ = writeln!(log, "kdind-systemctl: starting {name}");
        let policy;
        let delay;
        let outcome = match Unit::load(root, name).and_then(|unit| unit.validate().map(|()| unit)) {
            Err(error) => {
                policy = RestartPolicy::No;
                delay = Duration::ZERO;
                Outcome::broken(error.0)
            }
            Ok(unit) => {
                policy = unit.restart_policy().unwrap_or(RestartPolicy::No);
                delay = unit.restart_delay().unwrap_or(Duration::from_millis(100));
                let mut attempt = Attempt {
                    root,
                    unit: &unit,
                    store: &store,
                    me,
                    log: &mut log,
                    restarts,
                };
                attempt.run(&mut listeners, &mut reporter)
            }
        };
        let _ = writeln!(log, "kdind-systemctl: {name}: {}", outcome.message);
        let restart = outcome.restartable
            && match policy {
                RestartPolicy::No => false,
                RestartPolicy::Always => true,
                RestartPolicy::OnSuccess => outcome.clean,
                RestartPolicy::OnFailure => !outcome.clean,
                RestartPolicy::OnAbnormal => !outcome.clean && outcome.result != "exit-code",
                RestartPolicy::OnAbort => !outcome.clean && outcome.result == "signal",
            };
        if !restart {
            let mut record = if outcome.clean {
                if outcome.result == "exited" {
                    Record::new(ActiveState::Active, "exited")
                } else {
                    Record::new(ActiveState::Inactive, "dead")
                }
            } else {
                Record::new(ActiveState::Failed, "failed")
            };
            record.result = if outcome.result == "exited" {
                "success"
            } else {
                outcome.result
            }
            .to_owned();
            record.exit_status = outcome.exit_status;
            record.restarts = restarts;
            let _ = store.write(name, &record);
            let line = if outcome.clean {
                READY.to_owned()
            } else {
                format!("{FAILED}{}", outcome.message)
            };
            reporter.report(&log, &line);
            return if outcome.clean { 0 } else { 1 };
        }
        restarts += 1;
        let mut record = Record::new(ActiveState::Activating, "auto-restart");
        record.supervisor = me;
        record.result = outcome.result.to_owned();
        record.exit_status = outcome.exit_status;
        record.restarts = restarts;
        let _ = store.write(name, &record);
        if !reporter.reported && !outcome.clean {
            reporter.report(&log, &format!("{FAILED}{}", outcome.message));
        }
        let _ = writeln!(
            log,
            "kdind-systemctl: {name}: restarting in {} ms",
            delay.as_millis()
        );
        sleep(delay);
    }
}

struct Attempt<'a> {
    root: &'a Root,
    unit: &'a Unit,
    store: &'a Store,
    me: Option<Process>,
    log: &'a mut File,
    restarts: u32,
}

impl Attempt<'_> {
    fn record(&self, active: ActiveState, sub: &str, main: Option<Process>) {
        let mut record = Record::new(active, sub);
        record.supervisor = self.me;
        record.main = main;
        record.restarts = self.restarts;
        let _ = self.store.write(&self.unit.name, &record);
    }

    fn run(&mut self, listeners: &mut Option<Listeners>, reporter: &mut Reporter) -> Outcome {
        let unit = self.unit;
        let mut environment = match service::environment(self.root, unit) {
            Ok(environment) => environment,
            Err(error) => return Outcome::broken(error.0),
        };
        let service_type = unit.service_type().unwrap_or(ServiceType::Simple);
        let timeout = unit.start_timeout().unwrap_or(None);
        let success_codes = unit.success_exit_codes();
        self.record(ActiveState::Activating, "start", None);

        if let Some(outcome) = self.run_all("ExecStartPre", &environment, timeout, &success_codes) {
            return outcome;
        }
        if listeners.is_none() {
            match Listeners::open(self.root, unit) {
                Ok(opened) => *listeners = Some(opened),
                Err(error) => {
                    return Outcome::broken(format!("cannot open its listening sockets: {error}"))
                }
            }
        }

        if service_type == ServiceType::Oneshot {
            if let Some(outcome) = self.run_all("ExecStart", &environment, timeout, &success_codes)
            {
                return outcome;
            }
            if let Some(outcome) =
                self.run_all("ExecStartPost", &environment, timeout, &success_codes)
            {
                return outcome;
            }
            if unit.remain_after_exit() {
                self.record(ActiveState::Active, "exited", None);
                reporter.report(self.log, READY);
                // The supervisor's work ends here; the unit stays active without processes.
                return Outcome {
                    result: "exited",
                    exit_status: Some(0),
                    clean: true,
                    restartable: false,
                    message: "finished".into(),
                };
            }
            return Outcome {
                result: "success",
                exit_status: Some(0),
                clean: true,
                restartable: false,
                message: "finished".into(),
            };
        }

        let mut invocation = match service::invocations(unit, "ExecStart", &environment) {
            Ok(mut all) if !all.is_empty() => all.remove(0),
            Ok(_) => return Outcome::broken("the service has no ExecStart= setting".into()),
            Err(error) => return Outcome::broken(error.0),
        };
        if let Err(error) = service::force_cgroupfs(self.root, &mut invocation, self.log) {
            return Outcome::broken(format!("cannot correct the cgroup driver: {error}"));
        }
        let notify = if service_type == ServiceType::Notify {
            match self.notify_socket() {
                Ok((socket, path)) => {
                    environment.insert("NOTIFY_SOCKET".into(), path);
                    Some(socket)
                }
                Err(error) => {
                    return Outcome::broken(format!(
                        "cannot create the notification socket: {error}"
                    ))
                }
            }
        } else {
            None
        };
        let mut child = match self.spawn(&invocation, &environment, listeners.as_ref()) {
            Ok(child) => child,
            Err(error) => {
                return Outcome {
                    result: "exit-code",
                    exit_status: Some(203),
                    clean: false,
                    restartable: true,
                    message: format!("failed to execute {}: {error}", invocation.program),
                }
            }
        };
        let _ = writeln!(
            self.log,
            "kdind-systemctl: {}: started {} (pid {})",
            unit.name,
            invocation.describe(),
            child.id()
        );
        let mut main = Process::find(child.id() as i32);
        let mut direct_child = true;

        match service_type {
            ServiceType::Notify => {
                self.record(ActiveState::Activating, "start", main);
                let socket = notify.expect("a notify service has a notification socket");
                match wait_for_ready(&socket, &mut child, timeout) {
                    Readiness::Ready => {}
                    Readiness::Exited(status) => {
                        return exit_outcome(status, &success_codes, "exited before it was ready")
                    }
                    Readiness::TimedOut => {
                        return timed_out(&mut child, "did not report READY=1 in time".into())
                    }
                }
                drop(socket);
                let _ = fs::remove_file(self.store.notify_socket(&unit.name));
            }
            ServiceType::Forking => match wait_with_timeout(&mut child, timeout) {
                Some(status) if exit_clean(status, &success_codes) => {
                    direct_child = false;
                    main = unit
                        .get("Service", "PIDFile")
                        .and_then(|path| fs::read_to_string(self.root.join(path)).ok())
                        .and_then(|text| text.trim().parse().ok())
                        .and_then(Process::find);
                    if main.is_none() {
                        return Outcome::broken(
                            "forked, but its PIDFile= names no running process".into(),
                        );
                    }
                }
                Some(status) => {
                    return exit_outcome(status, &success_codes, "failed while forking")
                }
                None => return timed_out(&mut child, "did not fork in time".into()),
            },
            _ => {}
        }

        if let Some(process) = main {
            environment.insert("MAINPID".into(), process.pid.to_string());
        }
        if let Some(outcome) = self.run_all("ExecStartPost", &environment, timeout, &success_codes)
        {
            if let Some(process) = main {
                let _ = sys::kill(process.pid, sys::SIGKILL);
            }
            if direct_child {
                let _ = child.wait();
            }
            return outcome;
        }
        self.record(ActiveState::Active, "running", main);
        reporter.report(self.log, READY);

        let outcome = if direct_child {
            match child.wait() {
                Ok(status) => exit_outcome(status, &success_codes, "main process exited"),
                Err(error) => Outcome::broken(format!("lost its main process: {error}")),
            }
        } else {
            while main.is_some_and(|process| process.is_alive()) {
                sleep(Duration::from_millis(200));
            }
            Outcome {
                result: "success",
                exit_status: None,
                clean: true,
                restartable: true,
                message: "main process is gone".into(),
            }
        };
        self.run_all("ExecStopPost", &environment, timeout, &success_codes);
        outcome
    }

    fn spawn(
        &mut self,
        invocation: &Invocation,
        environment: &BTreeMap<String, String>,
        listeners: Option<&Listeners>,
    ) -> io::Result<Child> {
        match listeners.filter(|listeners| !listeners.is_empty()) {
            Some(listeners) => {
                let mut command = invocation
                    .through_listen_exec()?
                    .command(environment, self.log)?;
                listeners.pass_to(&mut command)?;
                command.spawn()
            }
            None => invocation.command(environment, self.log)?.spawn(),
        }
    }

    /// Run every command of `key` to completion; the first failure (unless `-`) ends the attempt.
    fn run_all(
        &mut self,
        key: &str,
        environment: &BTreeMap<String, String>,
        timeout: Option<Duration>,
        success: &[i32],
    ) -> Option<Outcome> {
        let invocations = match service::invocations(self.unit, key, environment) {
            Ok(invocations) => invocations,
            Err(error) => return Some(Outcome::broken(error.0)),
        };
        for invocation in invocations {
            let mut child = match self.spawn(&invocation, environment, None) {
                Ok(child) => child,
                Err(error) if invocation.ignore_failure => {
                    let _ = writeln!(
                        self.log,
                        "kdind-systemctl: {key}: {}: {error} (ignored)",
                        invocation.program
                    );
                    continue;
                }
                Err(error) => {
                    return Some(Outcome {
                        result: "exit-code",
                        exit_status: Some(203),
                        clean: false,
                        restartable: true,
                        message: format!(
                            "{key}: failed to execute {}: {error}",
                            invocation.program
                        ),
                    })
                }
            };
            match wait_with_timeout(&mut child, timeout) {
                Some(status) if exit_clean(status, success) || invocation.ignore_failure => {}
                Some(status) => {
                    return Some(exit_outcome(
                        status,
                        success,
                        &format!("{key} {} failed", invocation.describe()),
                    ))
                }
                None => {
                    return Some(timed_out(
                        &mut child,
                        format!("{key} {} timed out", invocation.describe()),
                    ))
                }
            }
        }
        None
    }

    fn notify_socket(&self) -> io::Result<(UnixDatagram, String)> {
        let path = self.store.notify_socket(&self.unit.name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let _ = fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path)?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok((socket, path.to_string_lossy().into_owned()))
    }
}

enum Readiness {
    Ready,
    Exited(ExitStatus),
    TimedOut,
}

/// Wait for `READY=1` on the notification socket (sd_notify's protocol), the service's
/// exit, or the start timeout.
fn wait_for_ready(
    socket: &UnixDatagram,
    child: &mut Child,
    timeout: Option<Duration>,
) -> Readiness {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut buffer = [0u8; 4096];
    loop {
        if let Ok(length) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..length]);
            if message.lines().any(|line| line == "READY=1") {
                return Readiness::Ready;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Readiness::Exited(status);
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Readiness::TimedOut;
        }
    }
}

/// Wait for a child with an optional timeout, polling with a growing interval.
pub fn wait_with_timeout(child: &mut Child, timeout: Option<Duration>) -> Option<ExitStatus> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut interval = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
        sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(50));
    }
}

/// Kill a process that overran its start timeout and describe the outcome.
fn timed_out(child: &mut Child, message: String) -> Outcome {
    let _ = child.kill();
    let _ = child.wait();
    Outcome {
        result: "timeout",
        exit_status: None,
        clean: false,
        restartable: true,
        message: format!("{message}; killed"),
    }
}

const CLEAN_SIGNALS: [i32; 4] = [
    sys::SIGHUP,
    sys::SIGINT,
    sys::SIGTERM,
    13, /* SIGPIPE */
];

fn exit_clean(status: ExitStatus, success: &[i32]) -> bool {
    match (status.code(), status.signal()) {
        (Some(code), _) => code == 0 || success.contains(&code),
        (None, Some(signal)) => CLEAN_SIGNALS.contains(&signal),
        _ => false,
    }
}

fn exit_outcome(status: ExitStatus, success: &[i32], what: &str) -> Outcome {
    let clean = exit_clean(status, success);
    let (result, exit_status, detail) = match (status.code(), status.signal()) {
        (Some(code), _) => (
            if clean { "success" } else { "exit-code" },
            Some(code),
            format!("status={code}"),
        ),
        (None, Some(signal)) => (
            if clean { "success" } else { "signal" },
            Some(signal),
            format!("signal={signal}"),
        ),
        _ => ("exit-code", None, "unknown status".to_owned()),
    };
    Outcome {
        result,
        exit_status,
        clean,
        restartable: true,
        message: format!("{what}, {detail}"),
    }
}
