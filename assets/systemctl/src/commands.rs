//! The verbs of `systemctl`, with the options, messages and exit codes of systemd that
//! minikube and kubeadm match on.

use std::collections::BTreeSet;
use std::fs;

use crate::control::{Failure, Manager, SUPERVISE};
use crate::journal;
use crate::paths::Root;
use crate::state::{ActiveState, Process};
use crate::unit::{normalize_name, Unit, SEARCH_PATH};
use crate::{root_from, supervisor};

/// Exit codes of `is-active` and `status` (LSB): 3 not active, 4 no such unit.
const EXIT_NOT_ACTIVE: i32 = 3;
const EXIT_NO_SUCH_UNIT: i32 = 4;
/// Exit code of start and stop for a unit that does not exist.
const EXIT_NOT_FOUND: i32 = 5;

const VERSION_TEXT: &str = concat!(
    "systemd 252 (kdind-systemctl ",
    env!("CARGO_PKG_VERSION"),
    ")\n+KDIND: a service manager for containers without systemd; see https://github.com/kdind/kdind"
);

const HELP: &str = "systemctl [OPTIONS...] COMMAND [UNIT...]

kdind's service manager for containers without systemd.

Unit commands:
  start, stop, restart, try-restart, reload, reload-or-restart UNIT...
  is-active, is-failed, is-enabled, status, show, cat UNIT...
  enable, disable [--now], mask, unmask, reset-failed UNIT...
  list-units, list-unit-files, daemon-reload, is-system-running

Options:
  -q --quiet  -f --force  --now  --no-block  --no-pager  --no-legend  --system
  -a --all  -l --full  --value  -p --property=NAME  -t --type=TYPE  --state=STATE
  -n --lines=N  --root=DIR (or KDIND_SYSTEMCTL_ROOT)  --version

Services run detached with their output in /var/log/kdind/<unit>.log;
`journalctl -u UNIT` prints it.";

#[derive(Debug, Default)]
pub struct Options {
    pub verb: String,
    pub units: Vec<String>,
    pub quiet: bool,
    pub now: bool,
    pub no_block: bool,
    pub no_legend: bool,
    pub all: bool,
    pub value: bool,
    pub properties: Vec<String>,
    pub types: Vec<String>,
    pub states: Vec<String>,
    pub lines: usize,
    pub root: Option<String>,
    pub version: bool,
    pub help: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            lines: 10,
            ..Options::default()
        };
        let mut positional = Vec::new();
        let mut index = 0;
        let value_of =
            |index: &mut usize, inline: Option<&str>, name: &str| -> Result<String, String> {
                if let Some(value) = inline {
                    return Ok(value.to_owned());
                }
                *index += 1;
                args.get(*index)
                    .cloned()
                    .ok_or_else(|| format!("option '{name}' requires an argument"))
            };
        while index < args.len() {
            let arg = &args[index];
            if let Some(long) = arg.strip_prefix("--") {
                if long.is_empty() {
                    positional.extend(args[index + 1..].iter().cloned());
                    break;
                }
                let (name, inline) = match long.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (long, None),
                };
                match name {
                    "quiet" => options.quiet = true,
                    "force" | "no-pager" | "system" | "no-ask-password" | "full" | "plain"
                    | "no-reload" | "show-types" => {}
                    "now" => options.now = true,
                    "no-block" => options.no_block = true,
                    "no-legend" => options.no_legend = true,
                    "all" => options.all = true,
                    "value" => options.value = true,
                    "version" => options.version = true,
                    "help" => options.help = true,
                    "property" => options.properties.push(value_of(&mut index, inline, arg)?),
                    "type" => options.types.push(value_of(&mut index, inline, arg)?),
                    "state" => options.states.push(value_of(&mut index, inline, arg)?),
                    "root" => options.root = Some(value_of(&mut index, inline, arg)?),
                    "lines" => {
                        let value = value_of(&mut index, inline, arg)?;
                        options.lines = value
                            .parse()
                            .map_err(|_| format!("invalid number of lines {value:?}"))?;
                    }
                    "output" | "job-mode" | "signal" | "kill-whom" => {
                        value_of(&mut index, inline, arg)?;
                    }
                    _ => return Err(format!("unrecognized option '{arg}'")),
                }
            } else if arg.len() > 1 && arg.starts_with('-') {
                let letters: Vec<char> = arg[1..].chars().collect();
                for (position, letter) in letters.iter().enumerate() {
                    let rest: String = letters[position + 1..].iter().collect();
                    let inline = (!rest.is_empty()).then_some(rest.as_str());
                    match letter {
                        'q' => options.quiet = true,
                        'f' | 'l' => {}
                        'a' => options.all = true,
                        'h' => options.help = true,
                        'p' | 't' | 'n' | 'o' | 's' => {
                            let value = value_of(&mut index, inline, &format!("-{letter}"))?;
                            match letter {
                                'p' => options.properties.push(value),
                                't' => options.types.push(value),
                                'n' => {
                                    options.lines = value
                                        .parse()
                                        .map_err(|_| format!("invalid number of lines {value:?}"))?
                                }
                                _ => {}
                            }
                            break;
                        }
                        _ => return Err(format!("invalid option -- '{letter}'")),
                    }
                }
            } else {
                positional.push(arg.clone());
            }
            index += 1;
        }
        let mut positional = positional.into_iter();
        options.verb = positional.next().unwrap_or_else(|| "list-units".to_owned());
        options.units = positional.collect();
        Ok(options)
    }
}

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
fn unit_file_state(manager: &Manager, unit: &Unit) -> &'static str {
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

fn cat(manager: &Manager, name: &str) -> i32 {
    let unit = match manager.load(name) {
        Ok(unit) if unit.exists() => unit,
        _ => {
            eprintln!("No files found for {name}.");
            return 1;
        }
    };
    let mut first = true;
    for file in unit.files() {
        if !first {
            println!();
        }
        first = false;
        println!("# {}", strip_root(&manager.root, file));
        print!("{}", fs::read_to_string(file).unwrap_or_default());
    }
    0
}

/// A path as seen from inside the root.
fn strip_root(root: &Root, path: &std::path::Path) -> String {
    let relative = path.strip_prefix(root.as_path()).unwrap_or(path);
    format!("/{}", relative.to_string_lossy().trim_start_matches('/'))
}

fn load_state(manager: &Manager, unit: &Unit) -> &'static str {
    if manager.is_masked(unit) {
        "masked"
    } else if !unit.exists() {
        "not-found"
    } else if unit.validate().is_err() {
        "bad-setting"
    } else {
        "loaded"
    }
}

fn status(manager: &Manager, units: &[String], lines: usize) -> i32 {
    let mut code = 0;
    for (index, name) in units.iter().enumerate() {
        if index > 0 {
            println!();
        }
        let unit = manager.load(name);
        let (record, active, sub) = manager.observe(name);
        let unit = match unit {
            Ok(unit) if unit.exists() || record.supervisor.is_some() => unit,
            _ => {
                println!("○ {name}\n     Loaded: not-found (Reason: Unit {name} not found.)\n     Active: inactive (dead)");
                eprintln!("Unit {name} could not be found.");
                code = if code == 0 { EXIT_NO_SUCH_UNIT } else { code };
                continue;
            }
        };
        let bullet = match active {
            ActiveState::Active => "●",
            ActiveState::Failed => "×",
            _ => "○",
        };
        println!("{bullet} {name} - {}", unit.description());
        let file = unit
            .fragment
            .as_ref()
            .map(|path| strip_root(&manager.root, path))
            .unwrap_or_default();
        println!(
            "     Loaded: {} ({file}; {})",
            load_state(manager, &unit),
            unit_file_state(manager, &unit)
        );
        if !unit.dropins.is_empty() {
            let mut label = "    Drop-In:";
            for dropin in &unit.dropins {
                println!("{label} {}", strip_root(&manager.root, dropin));
                label = "            ";
            }
        }
        let since = if record.since > 0 {
            format!(" since {}", format_time(record.since))
        } else {
            String::new()
        };
        let result = if active == ActiveState::Failed {
            format!(" (Result: {})", record.result)
        } else {
            String::new()
        };
        println!("     Active: {} ({sub}){result}{since}", active.as_str());
        if let Some(main) = record.main.filter(Process::is_alive) {
            let command =
                fs::read_to_string(format!("/proc/{}/comm", main.pid)).unwrap_or_default();
            println!("   Main PID: {} ({})", main.pid, command.trim());
        } else if let Some(status) = record.exit_status {
            println!("   Main PID: (code={}, status={status})", record.result);
        }
        if record.restarts > 0 {
            println!("   Restarts: {}", record.restarts);
        }
        let log = journal::tail(&manager.root, name, lines);
        if !log.is_empty() {
            println!();
            for line in log {
                println!("{line}");
            }
        }
        if active != ActiveState::Active && code == 0 {
            code = EXIT_NOT_ACTIVE;
        }
    }
    code
}

fn show(manager: &Manager, units: &[String], options: &Options) -> i32 {
    let wanted: Vec<String> = options
        .properties
        .iter()
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_owned())
        .collect();
    for (index, name) in units.iter().enumerate() {
        if index > 0 && !options.value {
            println!();
        }
        let Ok(unit) = manager.load(name) else {
            continue;
        };
        let (record, active, sub) = manager.observe(name);
        let main = record
            .main
            .filter(Process::is_alive)
            .map(|main| main.pid)
            .unwrap_or(0);
        let service =
            |key: &str, default: &str| unit.get("Service", key).unwrap_or(default).to_owned();
        let properties: Vec<(&str, String)> = vec![
            ("Id", name.clone()),
            ("Names", name.clone()),
            ("Description", unit.description().to_owned()),
            ("LoadState", load_state(manager, &unit).to_owned()),
            ("ActiveState", active.as_str().to_owned()),
            ("SubState", sub.clone()),
            (
                "UnitFileState",
                if unit.exists() {
                    unit_file_state(manager, &unit).to_owned()
                } else {
                    String::new()
                },
            ),
            (
                "FragmentPath",
                unit.fragment
                    .as_ref()
                    .map(|path| strip_root(&manager.root, path))
                    .unwrap_or_default(),
            ),
            (
                "DropInPaths",
                unit.dropins
                    .iter()
                    .map(|path| strip_root(&manager.root, path))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("MainPID", main.to_string()),
            ("ExecMainPID", main.to_string()),
            (
                "ExecMainStatus",
                record.exit_status.unwrap_or(0).to_string(),
            ),
            ("Result", record.result.clone()),
            ("NRestarts", record.restarts.to_string()),
            ("Type", service("Type", "simple")),
            ("Restart", service("Restart", "no")),
            ("KillMode", service("KillMode", "control-group")),
            (
                "StateChangeTimestamp",
                if record.since > 0 {
                    format_time(record.since)
                } else {
                    String::new()
                },
            ),
        ];
        for (key, value) in properties {
            if !wanted.is_empty() && !wanted.iter().any(|wanted| wanted == key) {
                continue;
            }
            if options.value {
                println!("{value}");
            } else {
                println!("{key}={value}");
            }
        }
    }
    0
}

/// Every unit with a file in the search path or a record, sorted.
fn known_units(manager: &Manager) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = manager.store.recorded_units().into_iter().collect();
    for dir in SEARCH_PATH {
        for entry in fs::read_dir(manager.root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry
                .file_type()
                .map(|kind| !kind.is_dir())
                .unwrap_or(false);
            if is_file && normalize_name(&name) == name && !name.contains('@') {
                names.insert(name);
            }
        }
    }
    names
}

fn type_matches(options: &Options, name: &str) -> bool {
    options.types.is_empty()
        || options
            .types
            .iter()
            .flat_map(|types| types.split(','))
            .any(|kind| name.ends_with(&format!(".{kind}")))
}

/// The units `list-units` and `list-unit-files` consider: known, of the asked types, loadable.
fn listed_units<'a>(
    manager: &'a Manager,
    options: &'a Options,
) -> impl Iterator<Item = (String, Unit)> + 'a {
    known_units(manager)
        .into_iter()
        .filter(|name| type_matches(options, name))
        .filter_map(|name| manager.load(&name).ok().map(|unit| (name, unit)))
}

fn list_units(manager: &Manager, options: &Options) -> i32 {
    let mut rows = Vec::new();
    for (name, unit) in listed_units(manager, options) {
        let (_, active, sub) = manager.observe(&name);
        let wanted_state = options
            .states
            .iter()
            .flat_map(|states| states.split(','))
            .collect::<Vec<_>>();
        let shown = if wanted_state.is_empty() {
            options.all || active != ActiveState::Inactive
        } else {
            wanted_state.contains(&active.as_str()) || wanted_state.contains(&sub.as_str())
        };
        if shown {
            rows.push([
                name.clone(),
                load_state(manager, &unit).to_owned(),
                active.as_str().to_owned(),
                sub,
                unit.description().to_owned(),
            ]);
        }
    }
    print_table(
        ["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"],
        &rows,
        options.no_legend,
    );
    if !options.no_legend {
        println!("\n{} loaded units listed.", rows.len());
    }
    0
}

fn list_unit_files(manager: &Manager, options: &Options) -> i32 {
    let mut rows = Vec::new();
    for (name, unit) in listed_units(manager, options) {
        if unit.exists() {
            rows.push([name.clone(), unit_file_state(manager, &unit).to_owned()]);
        }
    }
    print_table(["UNIT FILE", "STATE"], &rows, options.no_legend);
    if !options.no_legend {
        println!("\n{} unit files listed.", rows.len());
    }
    0
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]], no_legend: bool) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", text.join(" ").trim_end());
    };
    if !no_legend {
        line(header.to_vec());
    }
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC` (no time zone database in a std-only binary).
pub fn format_time(unix: u64) -> String {
    let days = (unix / 86400) as i64;
    let seconds = unix % 86400;
    // Civil-from-days, after Howard Hinnant's date algorithms.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_are_accepted_anywhere() {
        let options = parse(&["is-active", "--quiet", "service", "docker"]).unwrap();
        assert_eq!(options.verb, "is-active");
        assert_eq!(options.units, ["service", "docker"]);
        assert!(options.quiet);
        let options = parse(&["stop", "-f", "kubelet"]).unwrap();
        assert_eq!(
            (options.verb.as_str(), options.units.as_slice()),
            ("stop", ["kubelet".to_owned()].as_slice())
        );
        let options = parse(&["--no-pager", "disable", "--now", "kubelet"]).unwrap();
        assert!(options.now);
        assert_eq!(options.verb, "disable");
    }

    #[test]
    fn values_inline_separate_and_clustered() {
        let options = parse(&[
            "show",
            "docker",
            "-p",
            "MainPID",
            "--property=ActiveState,SubState",
            "--value",
        ])
        .unwrap();
        assert_eq!(options.properties, ["MainPID", "ActiveState,SubState"]);
        assert!(options.value);
        let options = parse(&["status", "-n20", "--root", "/tmp/x", "kubelet"]).unwrap();
        assert_eq!(options.lines, 20);
        assert_eq!(options.root.as_deref(), Some("/tmp/x"));
        assert!(parse(&["show", "-p"])
            .unwrap_err()
            .contains("requires an argument"));
    }

    #[test]
    fn unknown_options_are_refused() {
        assert!(parse(&["start", "--frobnicate", "x"])
            .unwrap_err()
            .contains("--frobnicate"));
        assert!(parse(&["start", "-Z", "x"]).unwrap_err().contains("'Z'"));
    }

    #[test]
    fn no_verb_lists_units() {
        assert_eq!(parse(&[]).unwrap().verb, "list-units");
    }

    #[test]
    fn times_format_as_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_795_687_479), "2026-11-26 10:04:39 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn version_starts_like_systemd() {
        assert!(VERSION_TEXT.starts_with("systemd 252 "));
    }
}
