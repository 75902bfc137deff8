//! `journalctl` for services run by kdind-systemctl: prints the units' log files, which
//! is what minikube appends to its errors and what `minikube logs` collects.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::thread::sleep;
use std::time::Duration;

use crate::paths::Root;
use crate::root_from;
use crate::unit::normalize_name;

struct Options {
    units: Vec<String>,
    lines: Option<usize>,
    follow: bool,
    root: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        units: Vec::new(),
        lines: None,
        follow: false,
        root: None,
    };
    let mut index = 0;
    while index < args.len() {
        let arg = &args[index];
        let mut value = |inline: Option<&str>, name: &str| -> Result<String, String> {
            if let Some(value) = inline.filter(|value| !value.is_empty()) {
                return Ok(value.to_owned());
            }
            index += 1;
            args.get(index)
                .cloned()
                .ok_or_else(|| format!("option '{name}' requires an argument"))
        };
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            match name {
                "unit" => options.units.push(value(inline, arg)?),
                "lines" => options.lines = Some(parse_lines(&value(inline, arg)?)?),
                "follow" => options.follow = true,
                "root" => options.root = Some(value(inline, arg)?),
                "no-pager" | "no-hostname" | "pager-end" | "catalog" | "quiet" | "boot"
                | "full" | "all" | "utc" => {}
                "since" | "until" | "output" | "priority" | "identifier" => {
                    value(inline, arg)?;
                }
                _ => return Err(format!("unrecognized option '{arg}'")),
            }
        } else if let Some(letters) = arg.strip_prefix('-').filter(|letters| !letters.is_empty()) {
            let chars: Vec<char> = letters.chars().collect();
            for (position, letter) in chars.iter().enumerate() {
                let rest: String = chars[position + 1..].iter().collect();
                match letter {
                    'f' => options.follow = true,
                    'x' | 'q' | 'a' | 'l' | 'b' => {}
                    // -e jumps to the end: show the last 1000 lines, as journalctl does.
                    'e' => options.lines = options.lines.or(Some(1000)),
                    'u' | 'n' | 'o' | 'S' | 'U' | 'p' | 't' => {
                        let taken = value(Some(&rest), &format!("-{letter}"))?;
                        match letter {
                            'u' => options.units.push(taken),
                            'n' => options.lines = Some(parse_lines(&taken)?),
                            _ => {}
                        }
                        break;
                    }
                    _ => return Err(format!("invalid option -- '{letter}'")),
                }
            }
        } else {
            return Err(format!("unexpected argument '{arg}' (use -u UNIT)"));
        }
        index += 1;
    }
    Ok(options)
}

fn parse_lines(value: &str) -> Result<usize, String> {
    if value == "all" {
        return Ok(usize::MAX);
    }
    value
        .trim_start_matches('+')
        .parse()
        .map_err(|_| format!("invalid number of lines {value:?}"))
}

/// The last `lines` lines of a unit's log (all of them for `usize::MAX`).
pub fn tail(root: &Root, unit: &str, lines: usize) -> Vec<String> {
    let Ok(file) = File::open(root.log_file(unit)) else {
        return Vec::new();
    };
    let mut kept = std::collections::VecDeque::new();
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if kept.len() == lines {
            kept.pop_front();
        }
        if lines > 0 {
            kept.push_back(line);
        }
    }
    kept.into()
}

pub fn run(args: &[String]) -> i32 {
    let options = match parse(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("journalctl: {message}");
            return 1;
        }
    };
    let root = root_from(options.root.clone());
    let units: Vec<String> = options
        .units
        .iter()
        .map(|unit| normalize_name(unit))
        .collect();
    if units.is_empty() {
        eprintln!("journalctl: kdind's journalctl prints service logs: pass -u UNIT");
        return 1;
    }
    let lines = options
        .lines
        .unwrap_or(if options.follow { 10 } else { usize::MAX });
    let mut stdout = io::stdout().lock();
    let mut printed = false;
    for unit in &units {
        for line in tail(&root, unit, lines) {
            printed = true;
            if writeln!(stdout, "{line}").is_err() {
                return 0;
            }
        }
    }
    if !printed && !options.follow {
        let _ = writeln!(stdout, "-- No entries --");
    }
    let _ = stdout.flush();
    if options.follow {
        follow(&root, &units);
    }
    0
}

/// Print what is appended to the logs until the reader goes away.
fn follow(root: &Root, units: &[String]) {
    let mut positions: Vec<u64> = units
        .iter()
        .map(|unit| {
            std::fs::metadata(root.log_file(unit))
                .map(|metadata| metadata.len())
                .unwrap_or(0)
        })
        .collect();
    let mut stdout = io::stdout();
    loop {
        for (unit, position) in units.iter().zip(positions.iter_mut()) {
            let Ok(mut file) = File::open(root.log_file(unit)) else {
                continue;
            };
            let length = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
            if length < *position {
                *position = 0; // truncated or replaced
            }
            if length == *position || file.seek(SeekFrom::Start(*position)).is_err() {
                continue;
            }
            let mut buffer = Vec::new();
            if file.read_to_end(&mut buffer).is_ok() {
                *position += buffer.len() as u64;
                if stdout
                    .write_all(&buffer)
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
        sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn units_and_lines_in_every_spelling() {
        let options = parse(&args(&[
            "-u",
            "docker",
            "-u",
            "cri-docker",
            "-n",
            "60",
            "--no-pager",
        ]))
        .unwrap();
        assert_eq!(options.units, ["docker", "cri-docker"]);
        assert_eq!(options.lines, Some(60));
        let options = parse(&args(&["-xeu", "kubelet.service"])).unwrap();
        assert_eq!(options.units, ["kubelet.service"]);
        assert_eq!(options.lines, Some(1000));
        let options = parse(&args(&["--unit=kubelet", "--lines=5", "-f"])).unwrap();
        assert_eq!(
            (options.units.len(), options.lines, options.follow),
            (1, Some(5), true)
        );
        assert!(parse(&args(&["--bogus"])).is_err());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = crate::tempdir::TempDir::new();
        let root = Root::new(dir.path());
        let path = root.log_file("kubelet.service");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "1\n2\n3\n4\n").unwrap();
        assert_eq!(tail(&root, "kubelet.service", 2), ["3", "4"]);
        assert_eq!(tail(&root, "kubelet.service", usize::MAX).len(), 4);
        assert!(tail(&root, "missing.service", 5).is_empty());
    }
}
