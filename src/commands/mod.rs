//! One file per subcommand. Each takes plain settings and returns an exit status; only
//! this module looks at the parsed command line.

mod list;

use anyhow::Result;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::progress::Printer;

/// How a command ended, when it did not fail with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// The command did its work and found the answer to be "no" (exit 1, no error printed).
    #[allow(dead_code)]
    Failure,
}

/// A command or option that exists in the command line but is not built yet.
#[derive(Debug, thiserror::Error)]
#[error("`kdind {0}` is not implemented yet")]
pub struct NotImplemented(pub &'static str);

/// The user pressed Ctrl-C and the command cleaned up what it had created.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; {0}")]
pub struct Interrupted(pub String);

/// Whether the command cleans up after itself on Ctrl-C (then `main` lets it finish).
pub fn handles_interrupt(_command: &Command) -> bool {
    false
}

pub async fn run(cli: Cli) -> Result<ExitStatus> {
    let printer = Printer::new(cli.global.quiet, cli.global.verbose);
    match cli.command {
        Command::List(args) => list::run(&printer, args.output).await,
        Command::Build => Err(NotImplemented("build").into()),
        Command::Up(_) => Err(NotImplemented("up").into()),
        Command::Kubeconfig(_) => Err(NotImplemented("kubeconfig").into()),
        Command::Env(_) => Err(NotImplemented("env").into()),
        Command::Down(_) => Err(NotImplemented("down").into()),
        Command::Config(ConfigCommand::Defaults) => Err(NotImplemented("config defaults").into()),
    }
}
