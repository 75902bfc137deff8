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

/// A Ready node's restart policy: back after an engine restart, while a node `kdind stop`
/// (docker stop) stopped stays stopped.
pub const READY_RESTART_POLICY: &str = "unless-stopped";

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

/// A node port published on the host: `kdind up --port [ADDR:]HOST:NODE[/tcp|udp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub address: std::net::IpAddr,
    pub host_port: u16,
    pub node_port: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
}

impl std::str::FromStr for PortMapping {
    type Err = String;

    /// `8080:30080`, `0.0.0.0:8080:30080/tcp`, `[::1]:5353:30053/udp`; the address defaults
    /// to 127.0.0.1 and the protocol to tcp.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!("`{text}` is not a port mapping ({why}): use [ADDRESS:]HOST_PORT:NODE_PORT[/tcp|udp], e.g. 8080:30080")
        };
        let (rest, protocol) = match text.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, "tcp"),
            Some((rest, "udp")) => (rest, "udp"),
            Some(_) => return Err(bad("the protocol is tcp or udp")),
            None => (text, "tcp"),
        };
        let (address, ports) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (address, ports) = bracketed
                .split_once("]:")
                .ok_or_else(|| bad("an IPv6 address is written [ADDRESS]:"))?;
            (Some(address), ports)
        } else {
            match rest.matches(':').count() {
                1 => (None, rest),
                2 => {
                    let (address, ports) = rest.split_once(':').unwrap_or_default();
                    (Some(address), ports)
                }
                _ => return Err(bad("write an IPv6 address in brackets")),
            }
        };
        let address = match address {
            Some(address) => address
                .parse()
                .map_err(|_| bad(&format!("`{address}` is not an IP address")))?,
            None => std::net::IpAddr::from([127, 0, 0, 1]),
        };
        let (host, node) = ports.split_once(':').ok_or_else(|| bad("two ports"))?;
        let port = |value: &str| match value.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(bad(&format!("`{value}` is not a port from 1 to 65535"))),
        };
        Ok(PortMapping {
            address,
            host_port: port(host)?,
            node_port: port(node)?,
            protocol,
        })
    }
}

impl std::fmt::Display for PortMapping {
    /// The canonical form, which parses back to the same mapping.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}:{}/{}",
            host_port(&self.address.to_string(), self.host_port),
            self.node_port,
            self.protocol
        )
    }
}

/// The proxy settings a node gets, as `KEY=value` lines: HTTP_PROXY, HTTPS_PROXY and
/// NO_PROXY, each from its upper- or else lower-case spelling. The node extends NO_PROXY
/// with the cluster's own addresses and hands them to its docker and minikube.
pub fn proxy_environment(lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]
        .into_iter()
        .filter_map(|key| {
            let value = lookup(key).or_else(|| lookup(&key.to_ascii_lowercase()))?;
            Some(format!("{key}={value}"))
        })
        .collect()
}

/// What `kdind up` decided for a node before anything is created.
#[derive(Debug, Clone)]
pub struct NodeSettings<'a> {
    pub cluster: &'a ClusterName,
    pub image: &'a str,
    pub kubernetes_version: &'a str,
    pub listen_address: &'a str,
    /// What clients reach the published ports by (kubeconfig, `kdind env`, certificates).
    pub server_host: &'a str,
    pub kubeconfig: Option<&'a str>,
    pub minikube_args: &'a str,
    /// The user's ports (`--port`).
    pub ports: &'a [PortMapping],
    /// `KEY=value` proxy settings for the node (`proxy_environment`).
    pub proxy: &'a [String],
    /// The wait `up` has, recorded for `start`.
    pub wait: std::time::Duration,
}

/// A node's settings with what creating it chose: the host ports and the network.
#[derive(Debug, Clone)]
pub struct NodeRequest<'a> {
    pub node: &'a NodeSettings<'a>,
    pub api_port: u16,
    pub docker_port: u16,
    /// The ID of the `kdind` network (names can be ambiguous on older engines).
    pub network_id: &'a str,
}

pub fn spec(request: &NodeRequest<'_>, security: Security) -> ContainerSpec {
    let node = request.node;
    let container = container_name(node.cluster);
    let mut node_labels = labels::common(node.cluster, Role::Node);
    node_labels.extend([
        (
            labels::KUBERNETES_VERSION.to_owned(),
            node.kubernetes_version.to_owned(),
        ),
        (
            labels::API_ENDPOINT.to_owned(),
            format!("https://{}", host_port(node.server_host, request.api_port)),
        ),
        (labels::API_PORT.to_owned(), request.api_port.to_string()),
        (
            labels::DOCKER_PORT.to_owned(),
            request.docker_port.to_string(),
        ),
        (
            labels::LISTEN_ADDRESS.to_owned(),
            node.listen_address.to_owned(),
        ),
        (labels::SERVER_HOST.to_owned(), node.server_host.to_owned()),
        (labels::IMAGE.to_owned(), node.image.to_owned()),
        (labels::WAIT.to_owned(), node.wait.as_secs().to_string()),
    ]);
    if let Some(path) = node.kubeconfig {
        node_labels.insert(labels::KUBECONFIG.to_owned(), path.to_owned());
    }
    if !node.ports.is_empty() {
        let ports: Vec<String> = node.ports.iter().map(PortMapping::to_string).collect();
        node_labels.insert(labels::PORTS.to_owned(), ports.join(","));
    }
    let mut ports = vec![
        PublishedPort::tcp(node.listen_address, request.api_port, API_SERVER_PORT),
        PublishedPort::tcp(node.listen_address, request.docker_port, DOCKER_TLS_PORT),
    ];
    ports.extend(node.ports.iter().map(|mapping| PublishedPort {
        host_ip: mapping.address.to_string(),
        host_port: mapping.host_port,
        container_port: mapping.node_port,
        protocol: mapping.protocol.to_owned(),
    }));
    let mut env = vec![
        format!("KDIND_NODE_NAME={container}"),
        format!("KDIND_SERVER_HOST={}", node.server_host),
    ];
    if !node.minikube_args.is_empty() {
        env.push(format!("KDIND_MINIKUBE_ARGS={}", node.minikube_args));
    }
    env.extend(node.proxy.iter().cloned());
    ContainerSpec {
        hostname: container.clone(),
        // Sibling containers on the network reach the node by its container name.
        network_alias: container.clone(),
        name: container,
        image: node.image.to_owned(),
        labels: node_labels,
        env,
        network: request.network_id.to_owned(),
        // /var/lib/docker on a named volume: overlay on overlay does not work.
        binds: vec![format!("{}:/var/lib/docker", volume_name(node.cluster))],
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
        ports,
        privileges: security.privileges(),
        // None while it starts: a failing start does not loop, and a node kept with
        // `--retain` stays down. `up` sets READY_RESTART_POLICY once it is Ready.
        restart_policy: "no".to_owned(),
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

    fn settings(cluster: &ClusterName) -> NodeSettings<'_> {
        NodeSettings {
            cluster,
            image: "kdind/node:v1.35.1-abc",
            kubernetes_version: "v1.35.1",
            listen_address: "127.0.0.1",
            server_host: "127.0.0.1",
            kubeconfig: Some("/home/u/.kube/config"),
            minikube_args: "",
            ports: &[],
            proxy: &[],
            wait: std::time::Duration::from_secs(300),
        }
    }

    fn request<'a>(node: &'a NodeSettings<'a>) -> NodeRequest<'a> {
        NodeRequest {
            node,
            api_port: 41000,
            docker_port: 41001,
            network_id: "0123abcd",
        }
    }

    #[test]
    fn proxy_settings_take_either_spelling_upper_case_first() {
        let env = std::collections::HashMap::from([
            ("HTTPS_PROXY", "http://upper:3128"),
            ("https_proxy", "http://lower:3128"),
            ("http_proxy", "http://only-lower:3128"),
            ("no_proxy", "corp.example"),
        ]);
        let lines = proxy_environment(|key| env.get(key).map(|value| value.to_string()));
        assert_eq!(
            lines,
            [
                "HTTP_PROXY=http://only-lower:3128",
                "HTTPS_PROXY=http://upper:3128",
                "NO_PROXY=corp.example"
            ]
        );
        assert!(proxy_environment(|_| None).is_empty());

        let cluster: ClusterName = "dev".parse().unwrap();
        let node = spec(
            &request(&NodeSettings {
                proxy: &lines,
                ..settings(&cluster)
            }),
            Security::Privileged,
        );
        assert!(node
            .env
            .contains(&"HTTPS_PROXY=http://upper:3128".to_owned()));
    }

    #[test]
    fn port_mappings_parse_with_loopback_and_tcp_by_default() {
        let mapping: PortMapping = "8080:30080".parse().unwrap();
        assert_eq!(mapping.to_string(), "127.0.0.1:8080:30080/tcp");
        let mapping: PortMapping = "0.0.0.0:80:30080/tcp".parse().unwrap();
        assert_eq!((mapping.host_port, mapping.node_port), (80, 30080));
        assert!(!mapping.address.is_loopback());
        let mapping: PortMapping = "[::1]:5353:30053/udp".parse().unwrap();
        assert_eq!(mapping.to_string(), "[::1]:5353:30053/udp");
        assert_eq!(mapping.to_string().parse::<PortMapping>().unwrap(), mapping);
        for bad in [
            "8080",
            "8080:0",
            "8080:70000",
            "x:1:2",
            "1:2/sctp",
            "::1:1:2",
            "1:2:3:4",
            "",
        ] {
            let error = bad.parse::<PortMapping>().unwrap_err();
            assert!(
                error.contains("[ADDRESS:]HOST_PORT:NODE_PORT"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn user_ports_are_published_and_recorded() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let ports = [
            "8080:30080".parse().unwrap(),
            "0.0.0.0:5353:30053/udp".parse().unwrap(),
        ];
        let node = spec(
            &request(&NodeSettings {
                ports: &ports,
                ..settings(&cluster)
            }),
            Security::Privileged,
        );
        assert_eq!(
            node.labels["dev.kdind.ports"],
            "127.0.0.1:8080:30080/tcp,0.0.0.0:5353:30053/udp"
        );
        let published: Vec<(String, u16, u16, String)> = node.ports[2..]
            .iter()
            .map(|port| {
                (
                    port.host_ip.clone(),
                    port.host_port,
                    port.container_port,
                    port.protocol.clone(),
                )
            })
            .collect();
        assert_eq!(
            published,
            [
                ("127.0.0.1".to_owned(), 8080, 30080, "tcp".to_owned()),
                ("0.0.0.0".to_owned(), 5353, 30053, "udp".to_owned())
            ]
        );
        assert_eq!(node.restart_policy, "no");
    }

    #[test]
    fn the_node_is_named_labelled_and_published_on_loopback() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let node = spec(&request(&settings(&cluster)), Security::Privileged);
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
        assert_eq!(
            node.env,
            ["KDIND_NODE_NAME=kdind-dev", "KDIND_SERVER_HOST=127.0.0.1"]
        );
        assert_eq!(node.labels["dev.kdind.server-host"], "127.0.0.1");
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
        let node = spec(&request(&settings(&cluster)), Security::Capabilities);
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
