//! The only module that writes progress and notes. Data goes to stdout from the commands;
//! everything here goes to stderr, and `--quiet` silences all of it but warnings.

use std::io::{IsTerminal, Write};

/// How chatty kdind is, and whether stderr is a terminal that can take spinners and bars.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    quiet: bool,
    verbose: u8,
    terminal: bool,
    color: bool,
}

impl Printer {
    pub fn new(quiet: bool, verbose: u8) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
        Self {
            quiet,
            verbose,
            terminal,
            color,
        }
    }

    /// Whether animated progress may be drawn.
    #[allow(dead_code)]
    pub fn animated(&self) -> bool {
        self.terminal && !self.quiet
    }

    /// A line of information, hidden under `--quiet`.
    pub fn note(&self, message: impl AsRef<str>) {
        if !self.quiet {
            self.line(message.as_ref());
        }
    }

    /// Detail shown only with `-v`.
    #[allow(dead_code)]
    pub fn detail(&self, message: impl AsRef<str>) {
        if self.verbose > 0 && !self.quiet {
            self.line(message.as_ref());
        }
    }

    /// A warning: shown even under `--quiet`.
    #[allow(dead_code)]
    pub fn warn(&self, message: impl AsRef<str>) {
        let prefix = if self.color {
            "\x1b[33mwarning\x1b[0m"
        } else {
            "warning"
        };
        self.line(&format!("{prefix}: {}", message.as_ref()));
    }

    /// The error chain, printed once by `main`.
    pub fn error(&self, error: &anyhow::Error) {
        let prefix = if self.color {
            "\x1b[31merror\x1b[0m"
        } else {
            "error"
        };
        let mut text = format!("{prefix}: {error}");
        for cause in error.chain().skip(1) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        self.line(&text);
    }

    fn line(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        // A closed stderr must not turn into a panic; there is nowhere left to report it.
        let _ = writeln!(stderr, "{text}");
    }
}
