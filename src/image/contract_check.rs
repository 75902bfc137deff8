//! The node's contract (`cluster::contract`) against what the image really carries: the
//! embedded entrypoint and the rendered Dockerfile.

use super::context::EMBEDDED;
use crate::cluster::contract::*;

fn embedded(path: &str) -> &'static str {
    let file = EMBEDDED
        .iter()
        .find(|file| file.path == path)
        .unwrap_or_else(|| panic!("{path} is not embedded"));
    std::str::from_utf8(file.bytes).unwrap()
}

/// The value of `readonly NAME=VALUE` in the entrypoint, with `$STATE_DIR` expanded.
fn readonly(entrypoint: &str, name: &str) -> String {
    let prefix = format!("readonly {name}=");
    let line = entrypoint
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("the entrypoint has no `{prefix}...`"));
    line[prefix.len()..]
        .trim_matches('"')
        .replace("$STATE_DIR", STATE_DIR)
}

#[test]
fn the_entrypoint_keeps_the_contract() {
    let entrypoint = embedded("rootfs/usr/local/bin/kdind-entrypoint");
    assert_eq!(readonly(entrypoint, "STATE_DIR"), STATE_DIR);
    assert_eq!(readonly(entrypoint, "KDIND_KUBECONFIG"), KUBECONFIG);
    assert_eq!(readonly(entrypoint, "STAGED_KUBECONFIG"), STAGED_KUBECONFIG);
    assert_eq!(
        readonly(entrypoint, "TLS_DIR"),
        format!("{STATE_DIR}/{TLS_SUBDIR}")
    );
    assert_eq!(readonly(entrypoint, "LOG_DIR"), LOG_DIR);
    assert_eq!(
        readonly(entrypoint, "DOCKER_TLS_PORT"),
        DOCKER_TLS_PORT.to_string()
    );
    assert_eq!(readonly(entrypoint, "PRELOAD_DIR"), PRELOAD_DIR);
    for line in [
        format!("echo \"{PHASE_PREFIX}$stage\""),
        format!("echo \"{PHASE_PREFIX}failed $stage: $*\""),
        format!("echo \"{KUBECONFIG_PREFIX}staged\""),
        format!("echo \"{KUBECONFIG_PREFIX}published sha256=$digest\""),
    ] {
        assert!(
            entrypoint.contains(&line),
            "the entrypoint no longer prints `{line}`"
        );
    }
}

#[test]
fn the_image_puts_the_preload_where_the_entrypoint_looks() {
    let dockerfile = super::dockerfile::render(&super::dockerfile::DockerfileInputs {
        base_image: "b",
        kubernetes_version: "v1.35.1",
    });
    assert!(
        dockerfile.contains(&format!("COPY preload/ {PRELOAD_DIR}/")),
        "{dockerfile}"
    );
}
