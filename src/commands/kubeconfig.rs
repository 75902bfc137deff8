//! `kdind kubeconfig` and `kdind env`: a running cluster's kubeconfig, and shell exports
//! that point kubectl and the docker CLI at it (the inner docker over TLS, with the client
//! certificate copied out of the node).

use anyhow::{Context, Result};

use super::{output, ExitStatus};
use crate::cluster::contract;
use crate::cluster::host_dir;
use crate::cluster::labels;
use crate::cluster::spec::{self, API_SERVER_PORT, DOCKER_TLS_PORT};
use crate::cluster::ClusterName;
use crate::docker::{ContainerInfo, Engine};
use crate::fsutil::write_atomic;
use crate::provider::{find_node, node_files, read_kubeconfig, rewrite_kubeconfig};

/// Where the API server and the inner docker are reached from: the host (published ports)
/// or a container on the kdind network (the node's name).
struct Addresses {
    server: String,
    docker_host: String,
}

fn addresses(node: &ContainerInfo, internal: bool) -> Result<Addresses> {
    if internal {
        return Ok(Addresses {
            server: format!("https://{}:{API_SERVER_PORT}", node.name),
            docker_host: format!("tcp://{}:{DOCKER_TLS_PORT}", node.name),
        });
    }
    let label = |key: &str| {
        node.labels.get(key).cloned().with_context(|| {
            format!(
                "the node {} has no label {key}; was it made by an older kdind?",
                node.name
            )
        })
    };
    // Nodes made before the server host was recorded are reached on their listen address.
    let listen = match node.labels.get(labels::SERVER_HOST) {
        Some(host) => host.clone(),
        None => label(labels::LISTEN_ADDRESS)?,
    };
    let api_port: u16 = label(labels::API_PORT)?
        .parse()
        .context("bad api-port label")?;
    let docker_port: u16 = label(labels::DOCKER_PORT)?
        .parse()
        .context("bad docker-port label")?;
    Ok(Addresses {
        server: format!("https://{}", spec::host_port(&listen, api_port)),
        docker_host: format!("tcp://{}", spec::host_port(&listen, docker_port)),
    })
}

/// `internal`: the addresses containers on the kdind network use.
pub async fn kubeconfig(cluster: &ClusterName, internal: bool) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let node = find_node(&engine, cluster).await?;
    let addresses = addresses(&node, internal)?;
    let text = read_kubeconfig(&engine, &node.name, &node.name, &addresses.server).await?;
    output(&text)?;
    Ok(ExitStatus::Success)
}

pub async fn env(cluster: &ClusterName, internal: bool) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let node = find_node(&engine, cluster).await?;
    let addresses = addresses(&node, internal)?;
    let dir = host_dir(crate::environment::var, cluster)?;
    let variant = if internal { "internal" } else { "host" };

    // One trip through the archive API for the kubeconfig and the certificates.
    let files = node_files(&engine, &node.name, contract::STATE_DIR).await?;
    let kubeconfig_text = rewrite_kubeconfig(
        state_file(&files, "kubeconfig")?.to_vec(),
        &node.name,
        &addresses.server,
    )?;
    let kubeconfig_path = dir.join(format!("kubeconfig-{variant}"));
    write_atomic(&kubeconfig_path, kubeconfig_text.as_bytes(), 0o600)?;

    // ca.pem, cert.pem and key.pem (mode 0600), as the docker CLI expects them.
    let cert_dir = dir.join("docker");
    for (name, mode) in [("ca.pem", 0o644), ("cert.pem", 0o644), ("key.pem", 0o600)] {
        let bytes = state_file(&files, &format!("{}/{name}", contract::TLS_SUBDIR))?;
        write_atomic(&cert_dir.join(name), bytes, mode)?;
    }

    output(&format!(
        "export KUBECONFIG={}\nexport DOCKER_HOST={}\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH={}\n# eval \"$(kdind env{} --name {cluster})\" points kubectl and docker at cluster {cluster}\n",
        shell_quote(&kubeconfig_path.display().to_string()),
        shell_quote(&addresses.docker_host),
        shell_quote(&cert_dir.display().to_string()),
        if internal { " --internal" } else { "" },
    ))?;
    Ok(ExitStatus::Success)
}

/// A file of the node's state directory, by its path below it.
fn state_file<'a>(files: &'a [(String, Vec<u8>)], relative: &str) -> Result<&'a [u8]> {
    let root = contract::STATE_DIR.rsplit('/').next().unwrap_or_default();
    let wanted = format!("{root}/{relative}");
    files
        .iter()
        .find(|(path, _)| *path == wanted)
        .map(|(_, bytes)| bytes.as_slice())
        .with_context(|| {
            format!(
                "the node has no {}/{relative} yet; is it ready?",
                contract::STATE_DIR
            )
        })
}

/// Single quotes for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn node() -> ContainerInfo {
        ContainerInfo {
            id: "id".into(),
            name: "kdind-dev".into(),
            state: "running".into(),
            created_unix: 0,
            labels: HashMap::from([
                (labels::LISTEN_ADDRESS.to_owned(), "127.0.0.1".to_owned()),
                (labels::API_PORT.to_owned(), "41000".to_owned()),
                (labels::DOCKER_PORT.to_owned(), "41001".to_owned()),
            ]),
        }
    }

    #[test]
    fn host_and_internal_addresses() {
        let host = addresses(&node(), false).unwrap();
        assert_eq!(host.server, "https://127.0.0.1:41000");
        assert_eq!(host.docker_host, "tcp://127.0.0.1:41001");
        let internal = addresses(&node(), true).unwrap();
        assert_eq!(internal.server, "https://kdind-dev:8443");
        assert_eq!(internal.docker_host, "tcp://kdind-dev:2376");
    }

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
