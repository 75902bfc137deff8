//! The small languages inside unit files: quoted word lists, specifiers (`%t`, `%%`, ...),
//! `$VAR`/`${VAR}` expansion on Exec lines, `Environment=` assignments, environment files,
//! Exec prefixes and time spans. Pure functions, tested on literal text.

use std::collections::BTreeMap;
use std::time::Duration;

/// Values the specifiers expand to for one unit.
pub struct Specifiers<'a> {
    pub unit: &'a str,
    pub runtime_dir: &'a str,
}

/// Expand `%` specifiers. Unknown specifiers are an error, as in systemd.
pub fn expand_specifiers(text: &str, specifiers: &Specifiers) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    let prefix = specifiers
        .unit
        .rsplit_once('.')
        .map_or(specifiers.unit, |(prefix, _)| prefix);
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('t') => out.push_str(specifiers.runtime_dir),
            Some('n') => out.push_str(specifiers.unit),
            Some('N') | Some('p') | Some('P') => out.push_str(prefix),
            Some('i') | Some('I') => {}
            Some('h') => out.push_str("/root"),
            Some('u') | Some('g') => out.push_str("root"),
            Some('U') | Some('G') => out.push('0'),
            Some('S') => out.push_str("/var/lib"),
            Some('C') => out.push_str("/var/cache"),
            Some('L') => out.push_str("/var/log"),
            Some('E') => out.push_str("/etc"),
            Some(other) => return Err(format!("unsupported specifier %{other} in {text:?}")),
            None => return Err(format!("a lone % at the end of {text:?}")),
        }
    }
    Ok(out)
}

/// A word of a split line, remembering whether any of it was quoted (a quoted `$VAR` is
/// not word-split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
}

/// Split a line into words the way systemd does: whitespace separates, double and single
/// quotes group (a quote only opens at the start of a word), backslash escapes.
pub fn split_words(line: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = Word {
            text: String::new(),
            quoted: false,
        };
        if first == '"' || first == '\'' {
            chars.next();
            word.quoted = true;
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == first {
                    closed = true;
                    break;
                }
                push_char(&mut word.text, c, &mut chars, line)?;
            }
            if !closed {
                return Err(format!("unterminated quote in {line:?}"));
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!("a closing quote must end the word in {line:?}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                push_char(&mut word.text, c, &mut chars, line)?;
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// Append `c` to `text`, reading the escaped character after a backslash.
fn push_char(
    text: &mut String,
    c: char,
    rest: &mut impl Iterator<Item = char>,
    line: &str,
) -> Result<(), String> {
    if c != '\\' {
        text.push(c);
        return Ok(());
    }
    let escaped = rest
        .next()
        .ok_or_else(|| format!("trailing backslash in {line:?}"))?;
    text.push(unescape(escaped));
    Ok(())
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        other => other,
    }
}

/// Exec line prefixes that change how a command runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecPrefix {
    /// `-`: a non-zero exit status is not a failure.
    pub ignore_failure: bool,
    /// `@`: the second word is argv[0] and the first is the program.
    pub custom_argv0: bool,
}

/// One command of an `Exec*=` line, before variable expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLine {
    pub prefix: ExecPrefix,
    pub words: Vec<Word>,
}

/// Parse an `Exec*=` value: prefixes (`-`, `@`, `+`, `!`, `!!`, `:`), then the words.
/// `+`, `!` and `!!` change privileges in systemd; everything here runs as root, so they
/// are accepted and have no further effect. `:` turns variable expansion off.
pub fn parse_exec(value: &str) -> Result<(ExecLine, bool), String> {
    let value = value.trim_start();
    let mut prefix = ExecPrefix::default();
    let mut expand = true;
    let mut rest = value;
    loop {
        let mut chars = rest.chars();
        match chars.next() {
            Some('-') => prefix.ignore_failure = true,
            Some('@') => prefix.custom_argv0 = true,
            Some(':') => expand = false,
            Some('+') | Some('!') | Some('|') => {}
            _ => break,
        }
        rest = chars.as_str();
    }
    let words = split_words(rest)?;
    if words.is_empty() {
        return Err(format!("no command in {value:?}"));
    }
    Ok((ExecLine { prefix, words }, expand))
}

/// Expand `$VAR` (a whole unquoted word, split on whitespace into several arguments) and
/// `${VAR}` (anywhere, one piece of the word) from the service's environment. `$$` is a
/// literal `$`. Unset variables expand to nothing.
pub fn expand_variables(words: &[Word], environment: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for word in words {
        if !word.quoted {
            if let Some(name) = word.text.strip_prefix('$') {
                if is_name(name) {
                    let value = environment.get(name).map(String::as_str).unwrap_or("");
                    out.extend(value.split_whitespace().map(str::to_owned));
                    continue;
                }
            }
        }
        out.push(expand_braced(&word.text, environment));
    }
    out
}

fn expand_braced(text: &str, environment: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find('$') {
        out.push_str(&rest[..position]);
        let after = &rest[position + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some((name, tail)) = after
            .strip_prefix('{')
            .and_then(|inner| inner.split_once('}'))
        {
            out.push_str(environment.get(name).map(String::as_str).unwrap_or(""));
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse an `Environment=` value: whitespace-separated, optionally quoted `KEY=VALUE`
/// assignments.
pub fn parse_environment(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for word in split_words(value)? {
        match word.text.split_once('=') {
            Some((key, value)) if is_name(key) => pairs.push((key.to_owned(), value.to_owned())),
            _ => return Err(format!("invalid environment assignment {:?}", word.text)),
        }
    }
    Ok(pairs)
}

/// Parse an environment file: `KEY=VALUE` lines, `#` and `;` comments, blank lines, values
/// optionally in single or double quotes, a trailing backslash continuing the line.
pub fn parse_environment_file(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if !is_name(key) {
                continue;
            }
            let value = value.trim();
            let value = ['"', '\'']
                .iter()
                .find_map(|quote| {
                    value
                        .strip_prefix(*quote)
                        .and_then(|v| v.strip_suffix(*quote))
                })
                .unwrap_or(value);
            pairs.push((key.to_owned(), value.to_owned()));
        }
    }
    pairs
}

/// Parse a systemd time span: `600ms`, `2`, `2s`, `1min 30s`, `5m`, `1h`, `infinity`.
/// A bare number is seconds. `infinity` is `None`.
pub fn parse_timespan(value: &str) -> Result<Option<Duration>, String> {
    let value = value.trim();
    if value == "infinity" {
        return Ok(None);
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    if rest.is_empty() {
        return Err("an empty time span".to_owned());
    }
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid time span {value:?}"))?;
        rest = rest[digits..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_end] {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "ms" | "msec" => 0.001,
            "us" | "usec" => 0.000_001,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            other => return Err(format!("unknown time unit {other:?} in {value:?}")),
        };
        rest = &rest[unit_end..];
        total += Duration::from_secs_f64(number * seconds_per_unit);
    }
    Ok(Some(total))
}

/// Parse a unit-file boolean.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(words: &[Word]) -> Vec<&str> {
        words.iter().map(|word| word.text.as_str()).collect()
    }

    #[test]
    fn specifiers_expand_and_unknown_ones_are_errors() {
        let specifiers = Specifiers {
            unit: "cri-docker.socket",
            runtime_dir: "/run",
        };
        assert_eq!(
            expand_specifiers("%t/cri-dockerd.sock", &specifiers).unwrap(),
            "/run/cri-dockerd.sock"
        );
        assert_eq!(
            expand_specifiers("100%% %n %N", &specifiers).unwrap(),
            "100% cri-docker.socket cri-docker"
        );
        assert!(expand_specifiers("%Z", &specifiers)
            .unwrap_err()
            .contains("%Z"));
    }

    #[test]
    fn words_split_on_whitespace_with_quotes_and_escapes() {
        let words = split_words(r#"/bin/sh -c "echo 'a b'; exit 1" 'x y' a\ b"#).unwrap();
        assert_eq!(
            texts(&words),
            ["/bin/sh", "-c", "echo 'a b'; exit 1", "x y", "a b"]
        );
        assert!(words[2].quoted && !words[0].quoted);
        assert!(split_words("\"open").is_err());
    }

    #[test]
    fn exec_prefixes_are_recognised() {
        let (line, expand) = parse_exec("-/usr/bin/true arg").unwrap();
        assert!(line.prefix.ignore_failure && expand);
        assert_eq!(texts(&line.words), ["/usr/bin/true", "arg"]);
        let (line, _) = parse_exec("@/bin/sleep sleeper 5").unwrap();
        assert!(line.prefix.custom_argv0);
        let (line, _) = parse_exec("!!/bin/x").unwrap();
        assert_eq!(texts(&line.words), ["/bin/x"]);
        let (_, expand) = parse_exec(":/bin/echo $HOME").unwrap();
        assert!(!expand);
        assert!(parse_exec("-").is_err());
    }

    #[test]
    fn dollar_var_splits_and_braced_var_does_not() {
        let environment: BTreeMap<String, String> = [("OPTS", "--a 1  --b"), ("ONE", "x y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let words = split_words(r#"dockerd $OPTS --name=${ONE} "$OPTS" $MISSING end$$"#).unwrap();
        assert_eq!(
            expand_variables(&words, &environment),
            ["dockerd", "--a", "1", "--b", "--name=x y", "$OPTS", "end$"]
        );
        let quoted_braced = split_words(r#""${ONE}""#).unwrap();
        assert_eq!(expand_variables(&quoted_braced, &environment), ["x y"]);
    }

    #[test]
    fn environment_assignments_with_quotes() {
        let pairs = parse_environment(r#""A=1 2" B=3 C="#).unwrap();
        assert_eq!(
            pairs,
            [
                ("A".into(), "1 2".into()),
                ("B".into(), "3".into()),
                ("C".into(), "".into())
            ]
        );
        assert!(parse_environment("NOEQUALS").is_err());
    }

    #[test]
    fn environment_files_skip_comments_and_unquote() {
        let text = "# comment\n; other\n\nDOCKER_OPTS=\"--debug --tls\"\nexport X='y'\nCONT=a \\\nb\n bad line\n";
        let pairs = parse_environment_file(text);
        assert_eq!(
            pairs,
            [
                ("DOCKER_OPTS".into(), "--debug --tls".into()),
                ("X".into(), "y".into()),
                ("CONT".into(), "a b".into())
            ]
        );
    }

    #[test]
    fn time_spans() {
        assert_eq!(
            parse_timespan("600ms").unwrap(),
            Some(Duration::from_millis(600))
        );
        assert_eq!(parse_timespan("2").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_timespan("1min 30s").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_timespan("1h").unwrap(),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_timespan("infinity").unwrap(), None);
        assert!(parse_timespan("5 parsecs").is_err());
        assert!(parse_timespan("").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("yes"), Some(true));
        assert_eq!(parse_bool("Off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
