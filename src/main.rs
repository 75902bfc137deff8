//! kdind's entry point: parse the command line, run the command on a tokio runtime, print
//! an error chain once, and turn the outcome into an exit code (0 success, 1 failure,
//! 2 usage, 130 after Ctrl-C).

mod artifacts;
mod cli;
mod cluster;
mod commands;
mod config;
mod digest;
mod docker;
mod doctor;
mod environment;
mod fsutil;
mod image;
mod progress;
mod provider;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::commands::ExitStatus;
use crate::progress::Printer;

const EXIT_FAILURE: u8 = 1;
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help and version on stdout, usage errors on stderr, and knows
            // which exit code fits (0 or 2).
            let _ = error.print();
            return ExitCode::from(error.exit_code() as u8);
        }
    };
    let printer = Printer::new(cli.global.quiet, cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            printer.error(&anyhow::Error::new(error).context("failed to start the async runtime"));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let handles_interrupt = commands::handles_interrupt(&cli.command);
    let outcome = runtime.block_on(async move {
        if handles_interrupt {
            return Some(commands::run(cli).await);
        }
        tokio::select! {
            result = commands::run(cli) => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(ExitStatus::Success)) => ExitCode::SUCCESS,
        Some(Ok(ExitStatus::Failure)) => ExitCode::from(EXIT_FAILURE),
        Some(Err(error)) if error.is::<commands::Interrupted>() => {
            printer.error(&error);
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Some(Err(error)) => {
            printer.error(&error);
            ExitCode::from(EXIT_FAILURE)
        }
        None => {
            printer.note("interrupted");
            ExitCode::from(EXIT_INTERRUPTED)
        }
    }
}
