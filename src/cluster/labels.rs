//! Every label kdind writes, on its containers, volumes, network and node images. Ownership
//! is by label: every object kdind creates carries `dev.kdind.cluster` (or its role), and
//! every command finds its objects again through them, never through names or state files
//! on the host.

use std::collections::HashMap;

use super::ClusterName;

/// Label keys. `dev.kdind.cluster` marks ownership; the others describe the object.
pub const CLUSTER: &str = "dev.kdind.cluster";
pub const ROLE: &str = "dev.kdind.role";
pub const KUBERNETES_VERSION: &str = "dev.kdind.kubernetes-version";
pub const API_ENDPOINT: &str = "dev.kdind.api-endpoint";
/// The kdind version that created the object.
pub const VERSION: &str = "dev.kdind.version";
/// Host ports and address the node's ports are published on, chosen once by `up`.
pub const API_PORT: &str = "dev.kdind.api-port";
pub const DOCKER_PORT: &str = "dev.kdind.docker-port";
pub const LISTEN_ADDRESS: &str = "dev.kdind.listen-address";
/// The name or address clients reach those ports by (a remote engine's host).
pub const SERVER_HOST: &str = "dev.kdind.server-host";
/// The seconds `up` waited at most, which `start` waits too.
pub const WAIT: &str = "dev.kdind.wait";
/// The user's published ports (`up --port`), canonical and comma-separated.
pub const PORTS: &str = "dev.kdind.ports";
/// The kubeconfig file `up` merged the cluster into (for `down`).
pub const KUBECONFIG: &str = "dev.kdind.kubeconfig";
/// The node image the container runs.
pub const IMAGE: &str = "dev.kdind.image";
/// On the node image: the digest of everything it was built from.
pub const CONFIG_HASH: &str = "dev.kdind.config-hash";
/// On the node image: the image both build stages start from.
pub const BASE_IMAGE: &str = "dev.kdind.base-image";
/// On the node image: the preloaded images, comma-separated ("" when preloading is off).
pub const PRELOAD: &str = "dev.kdind.preload";
/// On the node image, followed by the artifact's name; the value is `<version> sha256:<digest>`.
pub const ARTIFACT_PREFIX: &str = "dev.kdind.artifact.";
/// On the node's volume: which `up` run created it. The engine answers a create of an
/// existing volume with the existing one, so this is how a run tells its own volume from one
/// that was there before (another run's, or the user's).
pub const CLAIM: &str = "dev.kdind.claim";

/// What an object is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Node,
    /// The volume holding the node's /var/lib/docker.
    DockerData,
    /// The shared `kdind` network (labelled with the role only: it belongs to no cluster).
    Network,
    /// A throwaway container of a build step (labelled with the role only).
    Helper,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::DockerData => "docker-data",
            Role::Network => "network",
            Role::Helper => "helper",
        }
    }
}

/// The labels every object of a cluster carries.
pub fn common(cluster: &ClusterName, role: Role) -> HashMap<String, String> {
    HashMap::from([
        (CLUSTER.to_owned(), cluster.to_string()),
        (ROLE.to_owned(), role.as_str().to_owned()),
        (VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ])
}

/// The labels of a build step's throwaway container.
pub fn helper() -> HashMap<String, String> {
    HashMap::from([(ROLE.to_owned(), Role::Helper.as_str().to_owned())])
}

/// The labels of the shared network.
pub fn network() -> HashMap<String, String> {
    HashMap::from([
        (ROLE.to_owned(), Role::Network.as_str().to_owned()),
        (VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ])
}

/// The labels of one object.
pub struct Labels;

impl Labels {
    /// The engine filter that selects every object of one cluster, or of all clusters.
    pub fn filter(cluster: Option<&ClusterName>) -> String {
        match cluster {
            Some(name) => format!("{CLUSTER}={name}"),
            None => CLUSTER.to_owned(),
        }
    }

    /// The engine filter that selects the objects of one role (the shared network).
    pub fn role_filter(role: Role) -> String {
        format!("{ROLE}={}", role.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_one_cluster_or_all() {
        let name: ClusterName = "dev".parse().unwrap();
        assert_eq!(Labels::filter(Some(&name)), "dev.kdind.cluster=dev");
        assert_eq!(Labels::filter(None), "dev.kdind.cluster");
        assert_eq!(Labels::role_filter(Role::Network), "dev.kdind.role=network");
    }
}
