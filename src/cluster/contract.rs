//! The node's contract with the host: the paths, ports and log-line prefixes that
//! `kdind-entrypoint` (assets/rootfs/usr/local/bin/kdind-entrypoint) and the node image
//! promise and that kdind relies on. The entrypoint spells each of them again in shell; the
//! tests in `image::contract_check` read the embedded entrypoint and the rendered Dockerfile
//! and fail when the two disagree.

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
