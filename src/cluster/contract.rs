//! The node's contract with the host: the paths, ports and log-line prefixes that
//! `kdind-entrypoint` (assets/rootfs/usr/local/bin/kdind-entrypoint) and the node image
//! promise and that kdind relies on. The entrypoint spells each of them again in shell; the
//! tests below read the embedded entrypoint and Dockerfile and fail when the two disagree.

/// The node's state directory: the published kubeconfig and the inner docker's TLS material.
pub const STATE_DIR: &str = "/etc/kdind";
/// The kubeconfig, published (atomically) once the cluster is ready.
pub const KUBECONFIG: &str = "/etc/kdind/kubeconfig";
/// The same kubeconfig before readiness is decided, for `up` to fetch ahead.
pub const STAGED_KUBECONFIG: &str = "/etc/kdind/.kubeconfig.staged";
/// Below the state directory: the inner docker's CA, server and client certificates.
pub const TLS_SUBDIR: &str = "docker-tls";
/// The services' log files (`kdind logs`).
pub const LOG_DIR: &str = "/var/log/kdind";
/// The inner docker's TLS port (client certificates required).
pub const DOCKER_TLS_PORT: u16 = 2376;
/// The API server's port (minikube's).
pub const API_SERVER_PORT: u16 = 8443;
/// One line per stage on stdout: `kdind-phase: <stage>`, `kdind-phase: failed <stage>: <why>`.
pub const PHASE_PREFIX: &str = "kdind-phase: ";
/// `kdind-kubeconfig: staged` and `kdind-kubeconfig: published sha256=<hex>`.
pub const KUBECONFIG_PREFIX: &str = "kdind-kubeconfig: ";
/// Where the node image carries its preloaded images.
pub const PRELOAD_DIR: &str = "/var/lib/kdind/preload";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::context::EMBEDDED;

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
        let dockerfile =
            crate::image::dockerfile::render(&crate::image::dockerfile::DockerfileInputs {
                base_image: "b",
                kubernetes_version: "v1.35.1",
            });
        assert!(
            dockerfile.contains(&format!("COPY preload/ {PRELOAD_DIR}/")),
            "{dockerfile}"
        );
    }
}
