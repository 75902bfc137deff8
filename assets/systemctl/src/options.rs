//! The command line of `systemctl`: options anywhere among the verb and units, inline,
//! separate and clustered values, as systemd takes them; `--help` and `--version` texts.

pub const VERSION_TEXT: &str = concat!(
    "systemd 252 (kdind-systemctl ",
    env!("CARGO_PKG_VERSION"),
    ")\n+KDIND: a service manager for containers without systemd; see https://github.com/kdind/kdind"
);

pub const HELP: &str = "systemctl [OPTIONS...] COMMAND [UNIT...]

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
    fn version_starts_like_systemd() {
        assert!(VERSION_TEXT.starts_with("systemd 252 "));
    }
}
