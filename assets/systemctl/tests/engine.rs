//! Engine tier: kdind-systemctl, compiled by the base image's own rustc (1.85 on trixie),
//! running Debian's real dockerd inside a container started
//! with the flags that work on hosts that refuse `--privileged` (see README).
//!
//! Needs a Docker engine and the local base image. With KDIND_REQUIRE_DOCKER=1 a missing
//! engine is a failure; otherwise the test prints a SKIPPED line and passes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

const IMAGE: &str = "kdind-test/systemctl-node:latest";

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("failed to run the docker CLI")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn engine_answers(test: &str) -> bool {
    let answers = Command::new("docker")
        .args(["version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !answers {
        assert_ne!(
            std::env::var("KDIND_REQUIRE_DOCKER").as_deref(),
            Ok("1"),
            "{test}: KDIND_REQUIRE_DOCKER=1 but no Docker engine answers `docker version`"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: no Docker engine answers `docker version`"
        );
    }
    answers
}

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

#[test]
fn engine_systemctl_runs_real_dockerd_in_a_container() {
    if !engine_answers("engine_systemctl_runs_real_dockerd_in_a_container") {
        return;
    }
    let base = std::env::var("KDIND_TEST_BASE_IMAGE")
        .unwrap_or_else(|_| "kdind-local/debian:trixie".to_owned());
    let context = std::env::temp_dir().join(format!("ks-engine-{}", std::process::id()));
    std::fs::create_dir_all(&context).unwrap();
    // The crate's own source, compiled inside the image by the base image's rustc.
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        crate_dir.join("tests/fixtures/node/Dockerfile"),
        context.join("Dockerfile"),
    )
    .unwrap();
    std::fs::copy(crate_dir.join("Cargo.toml"), context.join("Cargo.toml")).unwrap();
    std::fs::create_dir_all(context.join("src")).unwrap();
    for entry in std::fs::read_dir(crate_dir.join("src")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), context.join("src").join(entry.file_name())).unwrap();
    }
    let build = docker(&[
        "build",
        "-q",
        "--build-arg",
        &format!("BASE_IMAGE={base}"),
        "-t",
        IMAGE,
        context.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&context);
    assert!(build.status.success(), "docker build: {}", text(&build));

    let name = format!("kdind-test-systemctl-{}", std::process::id());
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--init",
        // The capability set that works where --privileged is refused.
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--device-cgroup-rule",
        "a *:* rwm",
        "--cgroupns",
        "private",
        // The inner dockerd cannot keep its overlay storage on the container's overlay.
        "-v",
        "/var/lib/docker",
        IMAGE,
        "sleep",
        "infinity",
    ]);
    assert!(run.status.success(), "docker run: {}", text(&run));
    let container = Container(name);
    let exec = |args: &[&str]| {
        let mut full = vec!["exec", container.0.as_str()];
        full.extend_from_slice(args);
        docker(&full)
    };

    let version = exec(&["systemctl", "--version"]);
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("systemd "),
        "{}",
        text(&version)
    );
    let start = exec(&["systemctl", "start", "docker"]);
    assert!(
        start.status.success(),
        "systemctl start docker: {}\n{}",
        text(&start),
        text(&exec(&["journalctl", "-u", "docker", "-u", "containerd"]))
    );
    let info = exec(&[
        "docker",
        "info",
        "--format",
        "{{.ServerVersion}} {{.CgroupDriver}}",
    ]);
    assert!(info.status.success(), "docker info: {}", text(&info));
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("cgroupfs"),
        "{}",
        text(&info)
    );
    assert_eq!(
        exec(&["systemctl", "is-active", "docker"]).status.code(),
        Some(0)
    );
    assert_eq!(
        exec(&["systemctl", "is-active", "containerd"])
            .status
            .code(),
        Some(0),
        "docker wants containerd"
    );

    let stop = exec(&["systemctl", "stop", "docker"]);
    assert!(
        stop.status.success(),
        "systemctl stop docker: {}",
        text(&stop)
    );
    let state = exec(&["systemctl", "is-active", "docker"]);
    assert_eq!(state.status.code(), Some(3), "{}", text(&state));
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "inactive");
    let processes = exec(&["ps", "-eo", "comm"]);
    assert!(
        !String::from_utf8_lossy(&processes.stdout)
            .lines()
            .any(|line| line.trim() == "dockerd"),
        "dockerd survived stop: {}",
        text(&processes)
    );
    assert!(
        !exec(&["docker", "info"]).status.success(),
        "docker still answers after stop"
    );
}
