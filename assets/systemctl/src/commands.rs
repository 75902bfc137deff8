//! The verbs of `systemctl`, with the exit codes and messages of systemd that minikube and
//! kubeadm match on: start/stop/restart/reload, enable/disable/mask, the is-* queries and
//! the dispatch to the reports (`report.rs`).

use std::fs;

use crate::control::{Failure, Manager, SUPERVISE};
use crate::options::{Options, HELP, VERSION_TEXT};
use crate::paths::Root;
use crate::report::{cat, list_unit_files, list_units, show, status};
use crate::state::ActiveState;
use crate::unit::{normalize_name, Unit};
use crate::{root_from, supervisor};

/// Exit codes of `is-active` and `status` (LSB): 3 not active, 4 no such unit.
pub const EXIT_NOT_ACTIVE: i32 = 3;
pub const EXIT_NO_SUCH_UNIT: i32 = 4;
/// Exit code of start and stop for a unit that does not exist.
const EXIT_NOT_FOUND: i32 = 5;

pub fn run(options: Options) -> i32 {
    if options.version {
        println!("{VERSION_TEXT}");
        return 0;
    }
    if options.help {
        println!("{HELP}");
        return 0;
    }
    let root = root_from(options.root.clone());
    if options.verb == SUPERVISE {
        return match options.units.first() {
            Some(unit) => supervisor::run(&root, unit),
            None => 1,
        };
    }
    let manager = match Manager::new(root, options.no_block) {
        Ok(manager) => manager,
        Err(error) => {
            eprintln!("systemctl: cannot find my own executable: {error}");
            return 1;
        }
    };
    let units: Vec<String> = options
        .units
        .iter()
        .map(|name| normalize_name(name))
        .collect();
    let needs_units = [
        "start",
        "stop",
        "restart",
        "try-restart",
        "condrestart",
        "reload",
        "reload-or-restart",
        "enable",
        "disable",
        "mask",
        "unmask",
        "is-active",
        "is-failed",
        "is-enabled",
        "cat",
    ];
    if needs_units.contains(&options.verb.as_str()) && units.is_empty() {
        eprintln!("Too few arguments.");
        return 1;
    }
    match options.verb.as_str() {
        "start" => each(&units, |unit| start(&manager, unit)),
        "stop" => each(&units, |unit| stop(&manager, unit)),
        "restart" => each(&units, |unit| {
            report("restart", unit, manager.restart(unit))
        }),
        "try-restart" | "condrestart" => each(&units, |unit| {
            if matches!(
                manager.observe(unit).1,
                ActiveState::Active | ActiveState::Activating
            ) {
                report("restart", unit, manager.restart(unit))
            } else {
                0
            }
        }),
        "reload" => each(&units, |unit| report("reload", unit, manager.reload(unit))),
        "reload-or-restart" => each(&units, |unit| match manager.reload(unit) {
            Err(Failure::NotApplicable) | Err(Failure::Failed(_)) => {
                report("restart", unit, manager.restart(unit))
            }
            other => report("reload", unit, other),
        }),
        "is-active" => is_state(
            &manager,
            &units,
            options.quiet,
            ActiveState::Active,
            EXIT_NOT_ACTIVE,
        ),
        "is-failed" => is_state(&manager, &units, options.quiet, ActiveState::Failed, 1),
        "is-enabled" => is_enabled(&manager, &units, options.quiet),
        "status" => status(&manager, &units, options.lines),
        "enable" => each(&units, |unit| enable(&manager, unit, true, options.now)),
        "disable" => each(&units, |unit| enable(&manager, unit, false, options.now)),
        "mask" => each(&units, |unit| mark(&manager, "masked", unit, true)),
        "unmask" => each(&units, |unit| unmask(&manager, unit)),
        "daemon-reload" | "daemon-reexec" => 0,
        "reset-failed" => reset_failed(&manager, &units),
        "cat" => each(&units, |unit| cat(&manager, unit)),
        "show" => show(&manager, &units, &options),
        "list-units" => list_units(&manager, &options),
        "list-unit-files" => list_unit_files(&manager, &options),
        "is-system-running" => {
            if !options.quiet {
                println!("running");
            }
            0
        }
        other => {
            eprintln!("Unknown command verb '{other}'.");
            1
        }
    }
}

/// Run `action` for every unit; the exit code is the first non-zero one.
fn each(units: &[String], mut action: impl FnMut(&str) -> i32) -> i32 {
    units
        .iter()
        .map(|unit| action(unit))
        .fold(0, |first, code| if first != 0 { first } else { code })
}

fn start(manager: &Manager, unit: &str) -> i32 {
    report("start", unit, manager.start(unit))
}

fn stop(manager: &Manager, unit: &str) -> i32 {
    match manager.stop(unit) {
        Err(Failure::NotFound) => {
            eprintln!("Failed to stop {unit}: Unit {unit} not loaded.");
            EXIT_NOT_FOUND
        }
        other => report("stop", unit, other),
    }
}

/// systemd's messages for a failed job.
fn report(verb: &str, unit: &str, result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(Failure::NotFound) => {
            eprintln!("Failed to {verb} {unit}: Unit {unit} not found.");
            EXIT_NOT_FOUND
        }
        Err(Failure::Masked) => {
            eprintln!("Failed to {verb} {unit}: Unit {unit} is masked.");
            1
        }
        Err(Failure::Bad(message)) => {
            eprintln!(
                "Failed to {verb} {unit}: Unit {unit} has a bad unit file setting.\n{message}"
            );
            1
        }
        Err(Failure::NotApplicable) => {
            eprintln!(
                "Failed to {verb} {unit}: Job type {verb} is not applicable for unit {unit}."
            );
            1
        }
        Err(Failure::Failed(message)) => {
            eprintln!(
                "Job for {unit} failed because the control process exited with error code.\n\
                 See \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" for details.\n{message}"
            );
            1
        }
        Err(Failure::Io(error)) => {
            eprintln!("Failed to {verb} {unit}: {error}");
            1
        }
    }
}

/// Print each unit's active state (unless quiet); exit 0 if any unit is in `wanted`,
/// else `otherwise` (`is-active` answers 3, `is-failed` 1).
fn is_state(
    manager: &Manager,
    units: &[String],
    quiet: bool,
    wanted: ActiveState,
    otherwise: i32,
) -> i32 {
    let mut any = false;
    for unit in units {
        let (_, active, _) = manager.observe(unit);
        any |= active == wanted;
        if !quiet {
            println!("{}", active.as_str());
        }
    }
    if any {
        0
    } else {
        otherwise
    }
}

/// The unit-file state: masked, enabled, static or disabled.
pub fn unit_file_state(manager: &Manager, unit: &Unit) -> &'static str {
    if manager.is_masked(unit) {
        "masked"
    } else if manager.store.has_mark("enabled", &unit.name)
        || has_wants_link(&manager.root, &unit.name)
    {
        "enabled"
    } else if !unit.has_install_section() {
        "static"
    } else {
        "disabled"
    }
}

/// Packages install `*.wants/<unit>` links at build time even without systemd running.
fn has_wants_link(root: &Root, unit: &str) -> bool {
    wants_links(root, unit).next().is_some()
}

fn wants_links<'a>(root: &Root, unit: &'a str) -> impl Iterator<Item = std::path::PathBuf> + 'a {
    let dir = root.join("/etc/systemd/system");
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".wants") || name.ends_with(".requires")
        })
        .map(move |entry| entry.path().join(unit))
        .filter(|link| fs::symlink_metadata(link).is_ok())
}

fn is_enabled(manager: &Manager, units: &[String], quiet: bool) -> i32 {
    let mut code = 1;
    for name in units {
        let unit = match manager.load(name) {
            Ok(unit) if unit.exists() || manager.is_masked(&unit) => unit,
            _ => {
                eprintln!("Failed to get unit file state for {name}: No such file or directory");
                return 1;
            }
        };
        let state = unit_file_state(manager, &unit);
        if !quiet {
            println!("{state}");
        }
        if state == "enabled" || state == "static" {
            code = 0;
        }
    }
    code
}

fn enable(manager: &Manager, name: &str, on: bool, now: bool) -> i32 {
    let verb = if on { "enable" } else { "disable" };
    let unit = match manager.load(name) {
        Ok(unit) => unit,
        Err(failure) => return report(verb, name, Err(failure)),
    };
    if !unit.exists() {
        eprintln!("Failed to {verb} unit: Unit file {name} does not exist.");
        return 1;
    }
    if on && manager.is_masked(&unit) {
        eprintln!("Failed to {verb} unit: Unit file {name} is masked.");
        return 1;
    }
    if let Err(error) = manager.store.set_mark("enabled", name, on) {
        eprintln!("Failed to {verb} unit: {error}");
        return 1;
    }
    if !on {
        for link in wants_links(&manager.root, name) {
            let _ = fs::remove_file(link);
        }
    }
    match (now, on) {
        (false, _) => 0,
        (true, true) => start(manager, name),
        (true, false) => stop(manager, name),
    }
}

fn mark(manager: &Manager, kind: &str, unit: &str, on: bool) -> i32 {
    match manager.store.set_mark(kind, unit, on) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!(
                "Failed to {} unit {unit}: {error}",
                if on { "mask" } else { "unmask" }
            );
            1
        }
    }
}

fn unmask(manager: &Manager, unit: &str) -> i32 {
    // systemd masks with a link to /dev/null in /etc; unmasking removes it.
    let link = manager.root.join("/etc/systemd/system").join(unit);
    if fs::read_link(&link).is_ok_and(|target| target == std::path::Path::new("/dev/null")) {
        if let Err(error) = fs::remove_file(&link) {
            eprintln!("Failed to unmask unit {unit}: {error}");
            return 1;
        }
    }
    mark(manager, "masked", unit, false)
}

fn reset_failed(manager: &Manager, units: &[String]) -> i32 {
    let targets: Vec<String> = if units.is_empty() {
        manager.store.recorded_units()
    } else {
        units.to_vec()
    };
    let mut code = 0;
    for unit in targets {
        let (_, active, _) = manager.observe(&unit);
        let known = manager.load(&unit).is_ok_and(|loaded| loaded.exists());
        if active == ActiveState::Failed {
            let _ = manager.store.remove(&unit);
        } else if !known && !units.is_empty() {
            eprintln!("Failed to reset failed state of unit {unit}: Unit {unit} not loaded.");
            code = 1;
        }
    }
    code
}
