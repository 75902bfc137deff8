//! The node container's specification, decided before anything is created: names, labels,
//! published ports, the volume, and the security settings. Pure, so that every flag is
//! tested without an engine; the engine module turns it into its create body.

use super::labels::{self, Role};
use super::ClusterName;
use crate::docker::{ContainerSpec, Privileges, PublishedPort};

/// The user-defined bridge network every node joins, so that sibling containers reach a
/// node by its container name.
pub const NETWORK: &str = "kdind";

pub use super::contract::{API_SERVER_PORT, DOCKER_TLS_PORT};

pub fn container_name(cluster: &ClusterName) -> String {
    format!("kdind-{cluster}")
}

pub fn volume_name(cluster: &ClusterName) -> String {
    format!("kdind-{cluster}-docker")
}

/// How much the node may do on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `--privileged`: what real users' hosts grant.
    Privileged,
    /// The explicit set that works where privileged is refused because the engine's own
    /// bounding set lacks a capability (CAP_SYS_RESOURCE on some VMs).
    Capabilities,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Privileged => "privileged",
            Security::Capabilities => "capabilities",
        }
    }

    /// What the engine is asked for.
    pub fn privileges(self) -> Privileges {
        match self {
            Security::Privileged => Privileges {
                privileged: true,
                ..Privileges::default()
            },
            Security::Capabilities => Privileges {
                privileged: false,
                cap_add: vec!["ALL".to_owned()],
                // The capability the engine itself lacks on such hosts.
                cap_drop: vec!["SYS_RESOURCE".to_owned()],
                // Nested containers need the syscalls and paths the default profiles hide.
                security_opt: vec![
                    "seccomp=unconfined".to_owned(),
                    "apparmor=unconfined".to_owned(),
                ],
                unmask_paths: true,
                // kubelet and the inner dockerd need devices such as /dev/kmsg.
                device_cgroup_rules: vec!["a *:* rwm".to_owned()],
            },
        }
    }
}

/// What `kdind up` decided for a node.
#[derive(Debug, Clone)]
pub struct NodeRequest<'a> {
    pub cluster: &'a ClusterName,
    pub image: &'a str,
    pub kubernetes_version: &'a str,
    pub listen_address: &'a str,
    pub api_port: u16,
    pub docker_port: u16,
    pub kubeconfig: Option<&'a str>,
    pub minikube_args: &'a str,
    /// The ID of the `kdind` network (names can be ambiguous on older engines).
    pub network_id: &'a str,
}

pub fn spec(request: &NodeRequest<'_>, security: Security) -> ContainerSpec {
    let container = container_name(request.cluster);
    let mut node_labels = labels::common(request.cluster, Role::Node);
    node_labels.extend([
        (
            labels::KUBERNETES_VERSION.to_owned(),
            request.kubernetes_version.to_owned(),
        ),
        (
            labels::API_ENDPOINT.to_owned(),
            format!(
                "https://{}",
                host_port(request.listen_address, request.api_port)
            ),
        ),
        (labels::API_PORT.to_owned(), request.api_port.to_string()),
        (
            labels::DOCKER_PORT.to_owned(),
            request.docker_port.to_string(),
        ),
        (
            labels::LISTEN_ADDRESS.to_owned(),
            request.listen_address.to_owned(),
        ),
        (labels::IMAGE.to_owned(), request.image.to_owned()),
    ]);
    if let Some(path) = request.kubeconfig {
        node_labels.insert(labels::KUBECONFIG.to_owned(), path.to_owned());
    }
    let mut env = vec![format!("KDIND_NODE_NAME={container}")];
    if !request.minikube_args.is_empty() {
        env.push(format!("KDIND_MINIKUBE_ARGS={}", request.minikube_args));
    }
    ContainerSpec {
        hostname: container.clone(),
        // Sibling containers on the network reach the node by its container name.
        network_alias: container.clone(),
        name: container,
        image: request.image.to_owned(),
        labels: node_labels,
        env,
        network: request.network_id.to_owned(),
        // /var/lib/docker on a named volume: overlay on overlay does not work.
        binds: vec![format!("{}:/var/lib/docker", volume_name(request.cluster))],
        // The entrypoint stops kubelet, cri-dockerd and dockerd on SIGTERM.
        stop_signal: "SIGTERM".to_owned(),
        tmpfs: vec![
            (
                "/run".to_owned(),
                "rw,nosuid,nodev,exec,mode=0755".to_owned(),
            ),
            (
                "/tmp".to_owned(),
                "rw,nosuid,nodev,exec,mode=1777".to_owned(),
            ),
        ],
        ports: vec![
            PublishedPort::tcp(request.listen_address, request.api_port, API_SERVER_PORT),
            PublishedPort::tcp(request.listen_address, request.docker_port, DOCKER_TLS_PORT),
        ],
        privileges: security.privileges(),
    }
}

/// `address:port`, with brackets for IPv6.
pub fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// Whether `address` only reaches this machine.
pub fn is_loopback(address: &str) -> bool {
    address
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(cluster: &'a ClusterName) -> NodeRequest<'a> {
        NodeRequest {
            cluster,
            image: "kdind/node:v1.35.1-abc",
            kubernetes_version: "v1.35.1",
            listen_address: "127.0.0.1",
            api_port: 41000,
            docker_port: 41001,
            kubeconfig: Some("/home/u/.kube/config"),
            minikube_args: "",
            network_id: "0123abcd",
        }
    }

    #[test]
    fn the_node_is_named_labelled_and_published_on_loopback() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let node = spec(&request(&cluster), Security::Privileged);
        assert_eq!(node.name, "kdind-dev");
        assert_eq!(node.network_alias, "kdind-dev");
        assert_eq!(node.hostname, "kdind-dev");
        assert_eq!(node.network, "0123abcd");
        assert_eq!(node.binds, ["kdind-dev-docker:/var/lib/docker"]);
        assert!(node.privileges.privileged);
        assert_eq!(node.labels["dev.kdind.cluster"], "dev");
        assert_eq!(node.labels["dev.kdind.role"], "node");
        assert_eq!(
            node.labels["dev.kdind.api-endpoint"],
            "https://127.0.0.1:41000"
        );
        assert_eq!(node.labels["dev.kdind.api-port"], "41000");
        assert_eq!(node.labels["dev.kdind.docker-port"], "41001");
        assert_eq!(node.labels["dev.kdind.kubeconfig"], "/home/u/.kube/config");
        assert_eq!(node.env, ["KDIND_NODE_NAME=kdind-dev"]);
        assert!(node.ports.iter().all(|port| port.host_ip == "127.0.0.1"));
        assert_eq!(
            node.ports
                .iter()
                .map(|port| (port.container_port, port.host_port))
                .collect::<Vec<_>>(),
            [(8443, 41000), (2376, 41001)]
        );
    }

    #[test]
    fn the_capability_fallback_grants_all_but_sys_resource_and_no_profiles() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let node = spec(&request(&cluster), Security::Capabilities);
        let privileges = node.privileges;
        assert!(!privileges.privileged);
        assert_eq!(privileges.cap_add, ["ALL"]);
        assert_eq!(privileges.cap_drop, ["SYS_RESOURCE"]);
        assert!(privileges
            .security_opt
            .contains(&"seccomp=unconfined".to_owned()));
        assert!(privileges.unmask_paths);
        assert_eq!(privileges.device_cgroup_rules, ["a *:* rwm"]);
    }

    #[test]
    fn loopback_and_ipv6_addresses() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(!is_loopback("0.0.0.0"));
        assert!(!is_loopback("192.168.1.5"));
        assert_eq!(host_port("::1", 5), "[::1]:5");
        assert_eq!(host_port("127.0.0.1", 5), "127.0.0.1:5");
    }
}
