//! One file per subcommand. Each takes plain settings (`crate::settings`) and returns an
//! exit status; only the dispatch below looks at the parsed command line.

mod build;
mod doctor;
mod down;
mod kubeconfig;
mod list;
mod load;
mod logs;
mod start;
mod stop;
mod up;

use anyhow::Result;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::progress::Printer;

/// How a command ended, when it did not fail with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// The command did its work and found the answer to be "no" (exit 1, no error printed).
    Failure,
}

/// The user pressed Ctrl-C and the command cleaned up what it had created.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; {0}")]
pub struct Interrupted(pub String);

/// Whether the command cleans up after itself on Ctrl-C (then `main` lets it finish).
pub fn handles_interrupt(command: &Command) -> bool {
    matches!(command, Command::Up(_))
}

pub async fn run(cli: Cli) -> Result<ExitStatus> {
    let printer = Printer::new(cli.global.quiet, cli.global.verbose);
    match cli.command {
        Command::List(args) => list::run(&printer, args.output.into()).await,
        Command::Doctor(args) => doctor::run(args.output.into()).await,
        Command::Build(args) => build::run(&printer, args.into()).await,
        Command::Up(args) => up::run(&printer, args.into()).await,
        Command::Kubeconfig(args) => kubeconfig::kubeconfig(&args.name.name, args.internal).await,
        Command::Env(args) => kubeconfig::env(&args.name.name, args.internal).await,
        Command::Down(args) => down::run(&printer, args.into()).await,
        Command::Logs(args) => logs::run(&printer, &args.name.name, args.dir).await,
        Command::Stop(args) => stop::run(&printer, &args.name).await,
        Command::Start(args) => start::run(&printer, &args.name.name, args.wait).await,
        Command::Load(args) => {
            let cluster = args.name.name.clone();
            load::run(&printer, &cluster, args.into()).await
        }
        Command::Config(ConfigCommand::Defaults) => {
            output(crate::config::DEFAULT_FILE)?;
            Ok(ExitStatus::Success)
        }
    }
}

/// Merge the node's kubeconfig, rewritten for `server` with everything named `context`, into
/// the file at `path`. kubectl's lock waits with a blocking sleep: off the async runtime's
/// threads.
pub async fn merge_kubeconfig(
    path: std::path::PathBuf,
    node_kubeconfig: &str,
    context: &str,
    server: &str,
) -> Result<()> {
    use anyhow::Context;
    let rewritten = crate::cluster::kubeconfig::rewrite(node_kubeconfig, context, server)?;
    tokio::task::spawn_blocking(move || {
        crate::cluster::kubeconfig::merge_into_file(&path, &rewritten)
    })
    .await
    .context("the kubeconfig writer stopped")?
}

/// Write a command's data to stdout. A reader that went away (`kdind ... | head`) is not
/// an error.
pub fn output(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(error).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

/// Left-aligned columns separated by three spaces, the first row being the header.
pub fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|i| {
            rows.iter()
                .map(|row| row.get(i).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("   ").trim_end());
        text.push('\n');
    }
    text
}
