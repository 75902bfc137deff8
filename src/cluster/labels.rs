//! Ownership by label: every object kdind creates carries these labels, and every command
//! finds its objects again through them, never through names or state files on the host.

use super::ClusterName;

/// Label keys. `dev.kdind.cluster` marks ownership; the others describe the object.
pub const CLUSTER: &str = "dev.kdind.cluster";
pub const ROLE: &str = "dev.kdind.role";
pub const KUBERNETES_VERSION: &str = "dev.kdind.kubernetes-version";
pub const API_ENDPOINT: &str = "dev.kdind.api-endpoint";

/// What an object is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Node,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
        }
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_one_cluster_or_all() {
        let name: ClusterName = "dev".parse().unwrap();
        assert_eq!(Labels::filter(Some(&name)), "dev.kdind.cluster=dev");
        assert_eq!(Labels::filter(None), "dev.kdind.cluster");
    }
}
