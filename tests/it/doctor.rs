//! `kdind doctor` against a real engine: every check is reported, what it says about
//! privileged containers is what the engine really does, and problems come with a fix.

use crate::support::{kdind, run, standin_image, Docker};

#[test]
fn engine_doctor_reports_every_check_and_agrees_with_the_engine_about_privileges() {
    let Some(docker) = Docker::require(
        "engine_doctor_reports_every_check_and_agrees_with_the_engine_about_privileges",
    ) else {
        return;
    };
    // A node image to probe the host with.
    standin_image(&docker, "ok");

    let (output, description) = run(kdind().args(["doctor", "-o", "json"]));
    let findings: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("doctor -o json prints JSON");
    let findings = findings.as_array().expect("a JSON array");
    let checks: Vec<&str> = findings
        .iter()
        .map(|found| found["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "engine",
            "privileged",
            "cgroup",
            "disk",
            "inotify",
            "network"
        ],
        "{description}"
    );
    let blocking = findings.iter().any(|found| found["severity"] == "blocking");
    assert_eq!(output.status.success(), !blocking, "{description}");
    for found in findings {
        if found["severity"] != "ok" {
            assert!(
                found.get("fix").is_some()
                    || found["summary"].as_str().unwrap().contains("not checked"),
                "a problem without a fix: {found}"
            );
        }
    }

    let version = docker.cli(&["version", "--format", "{{.Server.Version}}"]);
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    assert!(
        findings[0]["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("dockerd {version} ")),
        "{description}"
    );
    let privileged_works = docker
        .cli(&[
            "run",
            "--rm",
            "--privileged",
            "--entrypoint",
            "true",
            &docker.base_image,
        ])
        .status
        .success();
    let expected = if privileged_works { "ok" } else { "warning" };
    assert_eq!(findings[1]["severity"], expected, "{description}");
    assert!(
        findings[3]["summary"]
            .as_str()
            .unwrap()
            .contains(" GiB free where the engine keeps its data"),
        "{description}"
    );
}

#[test]
fn doctor_without_an_engine_is_one_blocking_finding_and_exit_1() {
    let (output, description) = run(kdind()
        .args(["doctor"])
        .env("DOCKER_HOST", "unix:///nonexistent/kdind-test.sock"));
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("blocking engine      not reachable"),
        "{description}"
    );
    assert!(stdout.contains("fix: start dockerd"), "{description}");
}
