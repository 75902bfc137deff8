//! The command line as a user meets it: help, usage errors and exit codes.

use crate::support::{kdind, run, text};

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        "build",
        "up",
        "kubeconfig",
        "env",
        "down",
        "logs",
        "load",
        "list",
        "stop",
        "start",
        "doctor",
        "config defaults",
    ] {
        let mut invocation = kdind();
        invocation.args(command.split(' ')).arg("--help");
        let (output, description) = run(&mut invocation);
        assert!(output.status.success(), "{description}");
        let help = text(&output.stdout);
        assert!(
            help.contains("Example"),
            "no example in `kdind {command} --help`:\n{help}"
        );
    }
}

#[test]
fn bad_name_exits_2_and_states_the_rule() {
    let (output, description) = run(kdind().args(["down", "--name", "My_Cluster"]));
    assert_eq!(output.status.code(), Some(2), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("lower-case letters, digits and '-'"),
        "{description}"
    );
    assert!(stderr.contains("at most 63 characters"), "{description}");
}

#[test]
fn too_long_name_exits_2() {
    let name = "a".repeat(64);
    let (output, description) = run(kdind().args(["up", "--name", &name]));
    assert_eq!(output.status.code(), Some(2), "{description}");
}

#[test]
fn unknown_command_exits_2() {
    let (output, description) = run(kdind().arg("launch"));
    assert_eq!(output.status.code(), Some(2), "{description}");
}

#[test]
fn unreachable_engine_exits_1_naming_the_socket() {
    let (output, description) = run(kdind()
        .arg("list")
        .env("DOCKER_HOST", "unix:///nonexistent.sock"));
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("unix:///nonexistent.sock"), "{description}");
    assert!(stderr.contains("hint:"), "{description}");
    assert!(output.stdout.is_empty(), "{description}");
}

#[test]
fn missing_tls_material_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (output, description) = run(kdind()
        .arg("list")
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", dir.path()));
    assert_eq!(output.status.code(), Some(1), "{description}");
    assert!(text(&output.stderr).contains("ca.pem"), "{description}");
}

#[test]
fn the_quick_start_in_help_is_the_one_in_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Quick start")
        .nth(1)
        .expect("README has a quick start");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the quick start is a sh block");
    let (output, description) = run(kdind().arg("--help"));
    assert!(output.status.success(), "{description}");
    let help = text(&output.stdout);
    let quick = help
        .split("Quick start")
        .nth(1)
        .expect("--help ends with a quick start");
    let commands = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| line.split('#').next().unwrap_or("").trim().to_owned())
            .filter(|command| command.starts_with("kdind ") || command.starts_with("kubectl "))
            .collect()
    };
    assert_eq!(commands(block), commands(quick), "{help}");
    assert!(
        quick.contains("--allow-unverified is there for cri-dockerd only"),
        "{help}"
    );
}

#[test]
fn up_refuses_a_kubeconfig_it_cannot_merge_into_before_it_touches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config");
    std::fs::write(&bad, "clusters: [unclosed\n").unwrap();
    let socket = dir.path().join("no-engine.sock");
    let (output, description) = run(kdind()
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .args(["up", "--kubeconfig"])
        .arg(&bad));
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("fix {} or choose another file", bad.display())),
        "{description}"
    );
    assert!(stderr.contains("not valid YAML"), "{description}");
    assert!(
        !stderr.contains("no-engine.sock"),
        "the engine was not asked: {description}"
    );
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        "clusters: [unclosed\n"
    );
}

#[test]
fn kubernetes_version_on_the_command_line_moves_the_kubernetes_binaries_only() {
    let cache = tempfile::tempdir().unwrap();
    let (output, description) = run(kdind()
        .env("KDIND_CACHE_DIR", cache.path())
        .env_remove("KDIND_CONFIG")
        .args([
            "build",
            "--print-artifacts",
            "-o",
            "json",
            "--kubernetes-version",
            "v1.34.2",
        ]));
    assert!(output.status.success(), "{description}");
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let version = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|row| row["name"] == name)
            .unwrap()["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for name in ["kubectl", "kubeadm", "kubelet"] {
        assert_eq!(version(name), "v1.34.2", "{description}");
    }
    assert_eq!(version("minikube"), "v1.38.1", "{description}");

    let (output, description) =
        run(kdind().args(["build", "--print-artifacts", "--kubernetes-version", "1.34"]));
    assert_eq!(output.status.code(), Some(1), "{description}");
    assert!(
        text(&output.stderr).contains("--kubernetes-version"),
        "{description}"
    );
}

#[test]
fn up_and_start_read_a_port_mapping_or_refuse_it_as_a_usage_error() {
    let (output, description) = run(kdind().args(["up", "--port", "8080"]));
    assert_eq!(output.status.code(), Some(2), "{description}");
    assert!(
        text(&output.stderr).contains("[ADDRESS:]HOST_PORT:NODE_PORT"),
        "{description}"
    );
    let (output, description) = run(kdind().args(["start", "--wait", "soon"]));
    assert_eq!(output.status.code(), Some(2), "{description}");
}
