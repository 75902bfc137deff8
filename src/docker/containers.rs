//! Containers: the create body of a container spec, start, state, logs as lines, files
//! out, stop and removal, and listing by label.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::{not_found, Engine, EngineError};

/// A container to create, in the engine's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub hostname: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub env: Vec<String>,
    /// The network's ID, and the container's alias on it.
    pub network: String,
    pub network_alias: String,
    /// `SOURCE:TARGET` mounts (named volumes or host paths).
    pub binds: Vec<String>,
    /// tmpfs mounts, path to options.
    pub tmpfs: Vec<(String, String)>,
    pub ports: Vec<PublishedPort>,
    pub stop_signal: String,
    pub privileges: Privileges,
    /// `no`, `always`, `unless-stopped` or `on-failure`.
    pub restart_policy: String,
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl PublishedPort {
    pub fn tcp(host_ip: &str, host_port: u16, container_port: u16) -> Self {
        Self {
            host_ip: host_ip.to_owned(),
            host_port,
            container_port,
            protocol: "tcp".to_owned(),
        }
    }
}

/// What a container may do on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// No masked or read-only /proc paths.
    pub unmask_paths: bool,
    pub device_cgroup_rules: Vec<String>,
}

/// One node container as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub state: String,
    pub created_unix: i64,
    pub labels: HashMap<String, String>,
}

/// A container's state as `up` and `down` need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub error: String,
}

impl Engine {
    /// Every container (running or not) that carries the given label filter.
    pub async fn containers_with_label(
        &self,
        label_filter: &str,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let filters = HashMap::from([("label", vec![label_filter])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(self.call_error(format!("list containers labelled {label_filter}")))?;
        Ok(summaries
            .into_iter()
            .map(|summary| ContainerInfo {
                id: summary.id.unwrap_or_default(),
                name: summary
                    .names
                    .and_then(|names| names.into_iter().next())
                    .map(|name| name.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                state: summary
                    .state
                    .map(|state| state.to_string())
                    .unwrap_or_default(),
                created_unix: summary.created.unwrap_or_default(),
                labels: summary.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// Create (not start) a container; returns its ID.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let response = self
            .docker
            .create_container(Some(options), create_body(spec))
            .await
            .map_err(self.refusal_or_call_error(format!("create container {}", spec.name)))?;
        Ok(response.id)
    }

    /// Change a container's restart policy (`no`, `always`, `unless-stopped`, `on-failure`).
    pub async fn set_restart_policy(&self, id: &str, policy: &str) -> Result<(), EngineError> {
        let update = bollard::models::ContainerUpdateBody {
            restart_policy: Some(restart_policy(policy)),
            ..Default::default()
        };
        self.docker
            .update_container(id, update)
            .await
            .map_err(self.call_error(format!("set the restart policy of {id} to {policy}")))
    }

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(self.refusal_or_call_error(format!("start container {id}")))
    }

    /// The container's state, or None when it does not exist.
    pub async fn container_state(&self, id: &str) -> Result<Option<ContainerState>, EngineError> {
        match self.docker.inspect_container(id, None).await {
            Ok(container) => {
                let state = container.state.unwrap_or_default();
                Ok(Some(ContainerState {
                    running: state.running.unwrap_or(false),
                    exit_code: state.exit_code.unwrap_or_default(),
                    oom_killed: state.oom_killed.unwrap_or(false),
                    error: state.error.unwrap_or_default(),
                }))
            }
            Err(error) if not_found(&error) => Ok(None),
            Err(cause) => Err(self.call_error(format!("inspect container {id}"))(cause)),
        }
    }

    /// The container's log (stdout and stderr) as lines, following it until the container
    /// stops when `follow` is set, else the last `tail` lines.
    pub fn log_lines(
        &self,
        id: &str,
        follow: bool,
        tail: Option<usize>,
    ) -> impl Stream<Item = Result<String, EngineError>> + '_ {
        let mut options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(follow);
        if let Some(tail) = tail {
            options = options.tail(&tail.to_string());
        }
        let id_owned = id.to_owned();
        let endpoint = self.endpoint.describe();
        let frames = self.docker.logs(id, Some(options.build()));
        futures_util::stream::unfold(
            (frames, String::new(), false),
            move |(mut frames, mut pending, mut ended)| {
                let id = id_owned.clone();
                let endpoint = endpoint.clone();
                async move {
                    loop {
                        if let Some(at) = pending.find('\n') {
                            let line: String = pending.drain(..=at).collect();
                            return Some((
                                Ok(line.trim_end_matches(['\n', '\r']).to_owned()),
                                (frames, pending, ended),
                            ));
                        }
                        if ended {
                            if pending.is_empty() {
                                return None;
                            }
                            let line = std::mem::take(&mut pending);
                            return Some((Ok(line), (frames, pending, ended)));
                        }
                        match frames.next().await {
                            Some(Ok(frame)) => {
                                pending.push_str(&String::from_utf8_lossy(&frame.into_bytes()))
                            }
                            Some(Err(cause)) => {
                                ended = true;
                                pending.clear();
                                return Some((
                                    Err(EngineError::Call {
                                        endpoint,
                                        action: format!("read the log of {id}"),
                                        cause,
                                    }),
                                    (frames, pending, ended),
                                ));
                            }
                            None => ended = true,
                        }
                    }
                }
            },
        )
    }

    /// The archive API's tar of `path` inside the container.
    pub async fn copy_from(&self, id: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let chunks: Vec<bytes::Bytes> = self
            .docker
            .download_from_container(id, Some(options))
            .try_collect()
            .await
            .map_err(self.call_error(format!("copy {path} out of {id}")))?;
        Ok(chunks.concat())
    }

    /// Stop gracefully (SIGTERM, then SIGKILL after `timeout`); a stopped or missing
    /// container is fine.
    pub async fn stop_container(&self, id: &str, timeout: i32) -> Result<(), EngineError> {
        let options = StopContainerOptionsBuilder::new().t(timeout).build();
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if not_found(&error) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(cause) => Err(self.call_error(format!("stop container {id}"))(cause)),
        }
    }

    /// Remove a container and its anonymous volumes; whether it existed.
    pub async fn remove_container(&self, id: &str) -> Result<bool, EngineError> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(true),
            Err(error) if not_found(&error) => Ok(false),
            Err(cause) => Err(self.call_error(format!("remove container {id}"))(cause)),
        }
    }
}

/// `no`, `always`, `unless-stopped` or `on-failure` in the engine's terms (anything else
/// is `no`).
fn restart_policy(name: &str) -> RestartPolicy {
    RestartPolicy {
        name: Some(match name {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        }),
        maximum_retry_count: None,
    }
}

/// The engine's create body for a container.
fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let port_key = |port: &PublishedPort| format!("{}/{}", port.container_port, port.protocol);
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &spec.ports {
        port_bindings
            .entry(port_key(port))
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(port.host_ip.clone()),
                host_port: Some(port.host_port.to_string()),
            });
    }
    let privileges = &spec.privileges;
    let some = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
    let host_config = HostConfig {
        binds: Some(spec.binds.clone()),
        tmpfs: Some(spec.tmpfs.iter().cloned().collect()),
        port_bindings: Some(port_bindings),
        network_mode: Some(spec.network.clone()),
        // A private cgroup namespace: the container's own cgroup tree is its root.
        cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
        privileged: Some(privileges.privileged),
        cap_add: some(&privileges.cap_add),
        cap_drop: some(&privileges.cap_drop),
        security_opt: some(&privileges.security_opt),
        masked_paths: privileges.unmask_paths.then(Vec::new),
        readonly_paths: privileges.unmask_paths.then(Vec::new),
        device_cgroup_rules: some(&privileges.device_cgroup_rules),
        restart_policy: Some(restart_policy(&spec.restart_policy)),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: Some(spec.hostname.clone()),
        env: Some(spec.env.clone()),
        labels: Some(spec.labels.clone()),
        exposed_ports: Some(spec.ports.iter().map(port_key).collect()),
        stop_signal: Some(spec.stop_signal.clone()),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                spec.network.clone(),
                EndpointSettings {
                    aliases: Some(vec![spec.network_alias.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}
