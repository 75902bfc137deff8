//! Reading the node's start-up from its log: the entrypoint prints one
//! `kdind-phase: <stage>` line per stage on stdout, `kdind-phase: failed <stage>: <reason>`
//! when a stage fails, and `kdind-phase: ready` at the end; `kdind-kubeconfig: staged`
//! when the kubeconfig may be fetched ahead, and `kdind-kubeconfig: published sha256=<hex>`
//! when it is published; `kdind-phase: stopping` and `kdind-phase: stopped` when it was told
//! to shut down (SIGTERM), which are not stages. Pure: the engine side feeds lines in and
//! asks what they mean.

use std::collections::VecDeque;

use crate::digest::Digest;

/// Log lines kept for error messages.
pub const TAIL_LINES: usize = 30;

use super::contract::{KUBECONFIG_PREFIX as KUBECONFIG_MARKER, PHASE_PREFIX as MARKER};

/// What one log line says about the start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Stage(String),
    Failed {
        stage: String,
        reason: String,
    },
    Ready,
    /// The node was told to stop (`stopping`) or has stopped its services (`stopped`).
    ShuttingDown,
    /// The kubeconfig is in the node's staging file.
    KubeconfigStaged,
    /// The kubeconfig is published; its sha256.
    KubeconfigPublished(Digest),
}

pub fn parse(line: &str) -> Option<Phase> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix(KUBECONFIG_MARKER) {
        if rest == "staged" {
            return Some(Phase::KubeconfigStaged);
        }
        let digest = rest.strip_prefix("published sha256=")?.parse().ok()?;
        return Some(Phase::KubeconfigPublished(digest));
    }
    let rest = line.strip_prefix(MARKER)?;
    if rest == "ready" {
        return Some(Phase::Ready);
    }
    if rest == "stopping" || rest == "stopped" {
        return Some(Phase::ShuttingDown);
    }
    if let Some(failure) = rest.strip_prefix("failed ") {
        let (stage, reason) = failure.split_once(": ").unwrap_or((failure, ""));
        return Some(Phase::Failed {
            stage: stage.to_owned(),
            reason: reason.to_owned(),
        });
    }
    Some(Phase::Stage(rest.to_owned()))
}

/// The start-up as seen so far.
#[derive(Debug, Default)]
pub struct Startup {
    stage: Option<String>,
    failure: Option<(String, String)>,
    published: Option<Digest>,
    shut_down: bool,
    tail: VecDeque<String>,
}

impl Startup {
    /// Feed one log line; returns what it says, if anything.
    pub fn line(&mut self, line: &str) -> Option<Phase> {
        let line = line.trim_end();
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        let phase = parse(line)?;
        match &phase {
            Phase::Stage(stage) => self.stage = Some(stage.clone()),
            Phase::Failed { stage, reason } => {
                self.failure = Some((stage.clone(), reason.clone()));
            }
            Phase::Ready => self.stage = Some("ready".to_owned()),
            Phase::ShuttingDown => self.shut_down = true,
            Phase::KubeconfigStaged => {}
            Phase::KubeconfigPublished(digest) => self.published = Some(*digest),
        }
        Some(phase)
    }

    /// The sha256 of the published kubeconfig, once the node said it.
    pub fn published(&self) -> Option<Digest> {
        self.published
    }

    /// Whether the node said it was told to shut down.
    pub fn shut_down(&self) -> bool {
        self.shut_down
    }

    /// The stage the node is in (or was in when it stopped).
    pub fn stage(&self) -> &str {
        self.stage.as_deref().unwrap_or("container start")
    }

    pub fn failure(&self) -> Option<(&str, &str)> {
        self.failure
            .as_ref()
            .map(|(stage, reason)| (stage.as_str(), reason.as_str()))
    }

    /// The last log lines, indented for an error message.
    pub fn tail(&self) -> String {
        if self.tail.is_empty() {
            return "  (the node printed nothing)".to_owned();
        }
        self.tail
            .iter()
            .map(|line| format!("  | {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_lines_are_recognised() {
        assert_eq!(
            parse("kdind-phase: docker"),
            Some(Phase::Stage("docker".into()))
        );
        assert_eq!(parse("kdind-phase: ready\n"), Some(Phase::Ready));
        assert_eq!(
            parse("kdind-phase: failed minikube: minikube start failed"),
            Some(Phase::Failed {
                stage: "minikube".into(),
                reason: "minikube start failed".into()
            })
        );
        assert_eq!(parse("stand-in minikube: start"), None);
        assert_eq!(
            parse("kdind-kubeconfig: staged"),
            Some(Phase::KubeconfigStaged)
        );
        let hex = "ab".repeat(32);
        assert_eq!(
            parse(&format!("kdind-kubeconfig: published sha256={hex}")),
            Some(Phase::KubeconfigPublished(hex.parse().unwrap()))
        );
        assert_eq!(parse("kdind-kubeconfig: published sha256=zz"), None);
        assert_eq!(parse("  kdind-phase: docker"), None);
    }

    #[test]
    fn the_startup_tracks_stage_failure_and_a_bounded_tail() {
        let mut startup = Startup::default();
        assert_eq!(startup.stage(), "container start");
        assert_eq!(
            startup.line("kdind-phase: prepare"),
            Some(Phase::Stage("prepare".into()))
        );
        for index in 0..40 {
            startup.line(&format!("noise {index}"));
        }
        assert_eq!(
            startup.line("kdind-phase: minikube"),
            Some(Phase::Stage("minikube".into()))
        );
        startup.line("kdind-phase: failed minikube: it broke");
        assert_eq!(startup.failure(), Some(("minikube", "it broke")));
        let tail = startup.tail();
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(
            tail.ends_with("  | kdind-phase: failed minikube: it broke"),
            "{tail}"
        );
        assert!(!tail.contains("noise 10\n"));
    }

    #[test]
    fn shutdown_lines_are_not_taken_for_a_stage() {
        assert_eq!(parse("kdind-phase: stopping"), Some(Phase::ShuttingDown));
        let mut startup = Startup::default();
        startup.line("kdind-phase: minikube");
        assert!(!startup.shut_down());
        startup.line("kdind-phase: stopping");
        startup.line("kdind-phase: stopped");
        assert_eq!(startup.stage(), "minikube");
        assert!(startup.shut_down());
    }
}
