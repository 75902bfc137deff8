//! What `systemctl` prints about units: status, show (properties), cat, list-units and
//! list-unit-files, in systemd's layout.

use std::collections::BTreeSet;
use std::fs;

use crate::commands::{unit_file_state, EXIT_NOT_ACTIVE, EXIT_NO_SUCH_UNIT};
use crate::control::Manager;
use crate::journal;
use crate::options::Options;
use crate::paths::Root;
use crate::state::{ActiveState, Process};
use crate::unit::{normalize_name, Unit, SEARCH_PATH};

pub fn cat(manager: &Manager, name: &str) -> i32 {
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

pub fn status(manager: &Manager, units: &[String], lines: usize) -> i32 {
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

pub fn show(manager: &Manager, units: &[String], options: &Options) -> i32 {
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

pub fn list_units(manager: &Manager, options: &Options) -> i32 {
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

pub fn list_unit_files(manager: &Manager, options: &Options) -> i32 {
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

    #[test]
    fn times_format_as_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_795_687_479), "2026-11-26 10:04:39 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
