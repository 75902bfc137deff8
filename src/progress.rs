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
        let color = terminal && crate::environment::var("NO_COLOR").is_none();
        Self {
            quiet,
            verbose,
            terminal,
            color,
        }
    }

    /// Whether animated progress may be drawn.
    pub fn animated(&self) -> bool {
        self.terminal && !self.quiet
    }

    pub fn verbose(&self) -> u8 {
        if self.quiet {
            0
        } else {
            self.verbose
        }
    }

    /// A line of information, hidden under `--quiet`.
    pub fn note(&self, message: impl AsRef<str>) {
        if !self.quiet {
            self.line(message.as_ref());
        }
    }

    /// Detail shown only with `-v`.
    pub fn detail(&self, message: impl AsRef<str>) {
        if self.verbose > 0 && !self.quiet {
            self.line(message.as_ref());
        }
    }

    /// A line that is shown even under `--quiet` (one per downloaded file, for CI logs).
    pub fn status(&self, message: impl AsRef<str>) {
        self.line(message.as_ref());
    }

    /// A warning: shown even under `--quiet`.
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

/// Told how a transfer advances, to draw bars or print lines.
pub trait TransferProgress: Sync {
    fn update(&self, done: u64, total: Option<u64>);
}

/// Progress of several downloads at once: a bar per file and a total on a terminal, one
/// plain line per finished file otherwise.
pub struct Transfers {
    printer: Printer,
    bars: Option<(indicatif::MultiProgress, indicatif::ProgressBar)>,
}

impl Transfers {
    pub fn new(printer: Printer) -> Self {
        let bars = printer.animated().then(|| {
            let multi = indicatif::MultiProgress::new();
            let total = multi.add(indicatif::ProgressBar::new(0));
            total.set_style(bar_style("{prefix:>24.bold} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"));
            total.set_prefix("total");
            (multi, total)
        });
        Self { printer, bars }
    }

    /// A bar (or nothing) for one file.
    pub fn start(&self, label: &str) -> Transfer<'_> {
        let bar = self.bars.as_ref().map(|(multi, total)| {
            let bar = multi.insert_before(total, indicatif::ProgressBar::new(0));
            bar.set_style(bar_style(
                "{prefix:>24} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
            ));
            bar.set_prefix(label.to_owned());
            bar
        });
        Transfer {
            transfers: self,
            bar,
            seen: std::sync::Mutex::new((0, None)),
            started: std::time::Instant::now(),
        }
    }

    /// A line about one file, printed above the bars when there are bars.
    pub fn line(&self, text: String) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => self.printer.status(text),
        }
    }

    pub fn finish(&self) {
        if let Some((multi, total)) = &self.bars {
            total.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

fn bar_style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .expect("the bar templates are valid")
        .progress_chars("=> ")
}

/// One file's transfer, fed by the downloader.
pub struct Transfer<'a> {
    transfers: &'a Transfers,
    bar: Option<indicatif::ProgressBar>,
    /// Bytes and length last reported, to feed the total bar with differences.
    seen: std::sync::Mutex<(u64, Option<u64>)>,
    started: std::time::Instant,
}

impl Transfer<'_> {
    /// Remove the bar and print one line for the file.
    pub fn done(self, text: String) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some((multi, _)) = &self.transfers.bars {
                multi.remove(bar);
            }
        }
        self.transfers.line(text);
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

impl TransferProgress for Transfer<'_> {
    fn update(&self, done: u64, total: Option<u64>) {
        let (Some(bar), Some((_, all))) = (&self.bar, &self.transfers.bars) else {
            return;
        };
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if total != seen.1 {
            let old = seen.1.unwrap_or(0);
            let new = total.unwrap_or(0);
            bar.set_length(new);
            all.set_length((all.length().unwrap_or(0) + new).saturating_sub(old));
            seen.1 = total;
        }
        if done >= seen.0 {
            all.inc(done - seen.0);
        } else {
            all.set_position(all.position().saturating_sub(seen.0 - done));
        }
        seen.0 = done;
        bar.set_position(done);
    }
}

/// Sizes for people: 1.5 MiB.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A spinner with the current stage, for terminals only (callers check `animated()`).
#[derive(Clone)]
pub struct Spinner {
    bar: indicatif::ProgressBar,
}

impl Spinner {
    pub fn new(message: &str) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                .expect("the spinner template is valid"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message(message.to_owned());
        Self { bar }
    }

    pub fn set(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }

    /// A line above the spinner.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    pub fn clear(self) {
        self.bar.finish_and_clear();
    }
}
