//! kdind-systemctl: `systemctl` and `journalctl` for a container without systemd.
//!
//! It runs a node's services from their unit files the way minikube's none driver expects
//! of systemd: real processes, supervised and restarted, socket activation, readiness
//! notification, and systemd's exit codes and messages. There is no daemon: every call
//! reads the unit files afresh and keeps per-unit state under `/run/kdind-systemctl/`.
//! Installed as `journalctl` (a link to the same binary) it prints the services' logs.
//!
//! Standard library only: the node image compiles it with the base image's own rustc.

mod commands;
mod control;
mod journal;
mod options;
mod paths;
mod report;
mod service;
mod state;
mod supervisor;
mod syntax;
mod sys;
#[cfg(test)]
mod tempdir;
mod unit;

use std::path::Path;
use std::process::ExitCode;

use crate::paths::Root;

fn main() -> ExitCode {
    sys::default_sigpipe();
    let mut args: Vec<String> = std::env::args().collect();
    let program = if args.is_empty() {
        "systemctl".to_owned()
    } else {
        args.remove(0)
    };
    let code = if args.first().map(String::as_str) == Some(service::LISTEN_EXEC) {
        service::listen_exec(&args[1..])
    } else if Path::new(&program)
        .file_name()
        .and_then(|name| name.to_str())
        == Some("journalctl")
    {
        journal::run(&args)
    } else {
        match options::Options::parse(&args) {
            Ok(options) => commands::run(options),
            Err(message) => {
                eprintln!("systemctl: {message}");
                1
            }
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// The root every path is resolved under: `--root DIR`, else `KDIND_SYSTEMCTL_ROOT`, else `/`.
pub fn root_from(option: Option<String>) -> Root {
    let dir = option
        .or_else(|| {
            std::env::var("KDIND_SYSTEMCTL_ROOT")
                .ok()
                .filter(|value| !value.is_empty())
        })
        .unwrap_or_else(|| "/".to_owned());
    Root::new(dir)
}
