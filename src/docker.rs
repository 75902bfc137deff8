//! The Docker engine: the only module that imports bollard.
//!
//! It resolves the endpoint the way the docker CLI does (DOCKER_HOST, DOCKER_TLS_VERIFY,
//! DOCKER_CERT_PATH), negotiates the API version, and turns every failed engine call into
//! an error that says what was attempted, on which endpoint, and what the engine answered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum,
    NetworkCreateRequest, NetworkingConfig, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::{Stream, StreamExt, TryStreamExt};

/// Seconds a single engine request may take. Image builds raise it for large contexts.
const REQUEST_TIMEOUT_SECONDS: u64 = 120;

/// Seconds an image build may take to upload its context and get an answer.
const BUILD_TIMEOUT_SECONDS: u64 = 3600;

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the engine is and how to speak to it, resolved from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub tls: Option<TlsFiles>,
}

/// Client certificate material for an engine that verifies its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unsupported DOCKER_HOST {0:?}: kdind speaks to unix:// sockets and tcp:// endpoints")]
    UnsupportedHost(String),

    #[error(
        "DOCKER_TLS_VERIFY is set but {path} is missing: put ca.pem, cert.pem and key.pem in \
         DOCKER_CERT_PATH (now {dir})"
    )]
    MissingTlsFile { path: PathBuf, dir: PathBuf },

    // The engine's own words are part of the message (not a separate cause) so that the
    // hint comes last, where the eye lands.
    #[error("cannot reach the Docker engine at {endpoint}: {cause}\n{hint}")]
    Unreachable {
        endpoint: String,
        hint: &'static str,
        cause: bollard::errors::Error,
    },

    #[error("the Docker engine at {endpoint} failed to {action}: {cause}")]
    Call {
        endpoint: String,
        action: String,
        cause: bollard::errors::Error,
    },

    /// A create or start the engine refused for a reason the caller may act on.
    #[error("the Docker engine at {endpoint} failed to {action}: {message}")]
    Refused {
        endpoint: String,
        action: String,
        refusal: StartRefusal,
        message: String,
    },
}

/// Why the engine refused to create or start a container, where callers react differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefusal {
    /// The engine cannot give a privileged container every capability (its own bounding
    /// set lacks one): "unable to apply caps".
    Privileged,
    /// A host port to publish on is taken.
    PortTaken,
    /// The container's network was removed after the container was created (or before).
    NetworkGone,
}

impl EngineError {
    /// The refusal, when the engine refused a create or start for a reason callers handle.
    pub fn start_refusal(&self) -> Option<StartRefusal> {
        match self {
            EngineError::Refused { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }
}

/// The engine says why it refused only in words, so they are read here, beside the call.
fn classify_start_refusal(message: &str) -> Option<StartRefusal> {
    if message.contains("unable to apply caps") {
        Some(StartRefusal::Privileged)
    } else if message.contains("port is already allocated")
        || message.contains("address already in use")
    {
        Some(StartRefusal::PortTaken)
    } else if message.contains("network ") && message.trim_end().ends_with("not found") {
        Some(StartRefusal::NetworkGone)
    } else {
        None
    }
}

impl Endpoint {
    /// Resolve the endpoint from an environment lookup, as the docker CLI does: an unset or
    /// empty DOCKER_HOST means the local socket; any non-empty DOCKER_TLS_VERIFY turns on
    /// TLS with the files in DOCKER_CERT_PATH (default `~/.docker`).
    pub fn resolve(env: impl Fn(&str) -> Option<String>) -> Result<Self, EngineError> {
        let set = |key: &str| env(key).filter(|value| !value.is_empty());
        let host = set("DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.to_owned());
        if host.starts_with("unix://") {
            return Ok(Self { host, tls: None });
        }
        if !host.starts_with("tcp://") {
            return Err(EngineError::UnsupportedHost(host));
        }
        if set("DOCKER_TLS_VERIFY").is_none() {
            return Ok(Self { host, tls: None });
        }
        let dir = set("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| set("HOME").map(|home| Path::new(&home).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        let tls = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        Ok(Self {
            host,
            tls: Some(tls),
        })
    }

    fn hint(&self) -> &'static str {
        if self.host.starts_with("unix://") {
            "hint: is dockerd running and is this the socket it listens on? Set DOCKER_HOST to \
             point kdind at another engine, and check that you may open the socket (root or the \
             docker group)."
        } else if self.tls.is_some() {
            "hint: is the engine listening on that address with TLS, and were the certificates \
             in DOCKER_CERT_PATH issued by the CA it trusts?"
        } else {
            "hint: is the engine listening on that address? If it requires TLS, set \
             DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH."
        }
    }
}

/// A connected engine with a negotiated API version.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: Endpoint,
    /// The engine's CPU architecture as Go names it (amd64, arm64, ...).
    arch: String,
}

/// `1.41` -> 1.41.
fn parse_api_version(text: &str) -> Option<bollard::ClientVersion> {
    let (major, minor) = text.split_once('.')?;
    Some(bollard::ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

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

impl Engine {
    /// Connect to the engine named by the process environment.
    pub async fn connect() -> Result<Self, EngineError> {
        let endpoint = Endpoint::resolve(crate::environment::var)?;
        Self::connect_to(endpoint).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Self, EngineError> {
        if let Some(tls) = &endpoint.tls {
            for path in [&tls.ca, &tls.cert, &tls.key] {
                if !path.is_file() {
                    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                    return Err(EngineError::MissingTlsFile {
                        path: path.clone(),
                        dir,
                    });
                }
            }
        }
        let unreachable = |cause| EngineError::Unreachable {
            endpoint: endpoint.host.clone(),
            hint: endpoint.hint(),
            cause,
        };
        let connect = |version: &bollard::ClientVersion| match &endpoint.tls {
            None if endpoint.host.starts_with("unix://") => {
                Docker::connect_with_unix(&endpoint.host, REQUEST_TIMEOUT_SECONDS, version)
            }
            None => Docker::connect_with_http(&endpoint.host, REQUEST_TIMEOUT_SECONDS, version),
            Some(tls) => Docker::connect_with_ssl(
                &endpoint.host,
                &tls.key,
                &tls.cert,
                &tls.ca,
                REQUEST_TIMEOUT_SECONDS,
                version,
            ),
        };
        let docker = connect(API_DEFAULT_VERSION).map_err(unreachable)?;
        // One round trip gives both the API version to speak and the engine's architecture
        // (bollard's negotiate_version would ask for the version and drop the rest).
        let version = docker.version().await.map_err(unreachable)?;
        let server = version
            .api_version
            .as_deref()
            .and_then(parse_api_version)
            .unwrap_or(*API_DEFAULT_VERSION);
        let docker = if server < *API_DEFAULT_VERSION {
            connect(&server).map_err(unreachable)?
        } else {
            docker
        };
        Ok(Self {
            docker,
            endpoint,
            arch: version.arch.unwrap_or_default(),
        })
    }

    /// The client for calls that move a lot of data (builds, pulls, exports): the request
    /// timeout of BUILD_TIMEOUT_SECONDS instead of REQUEST_TIMEOUT_SECONDS.
    fn long_running(&self) -> Docker {
        self.docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(BUILD_TIMEOUT_SECONDS))
    }

    /// Like `call_error`, but a refusal callers handle becomes `EngineError::Refused`.
    fn refusal_or_call_error(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> EngineError + '_ {
        let action = action.into();
        move |cause| {
            let message = match &cause {
                bollard::errors::Error::DockerResponseServerError { message, .. } => {
                    message.clone()
                }
                other => other.to_string(),
            };
            match classify_start_refusal(&message) {
                Some(refusal) => EngineError::Refused {
                    endpoint: self.endpoint.host.clone(),
                    action,
                    refusal,
                    message,
                },
                None => self.call_error(action)(cause),
            }
        }
    }

    fn call_error(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> EngineError + '_ {
        let action = action.into();
        move |cause| EngineError::Call {
            endpoint: self.endpoint.host.clone(),
            action,
            cause,
        }
    }

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
}

/// What an image build reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A line of the builder's output (`Step 3/20 : RUN ...`, a command's output, ...).
    Output(String),
    /// The build failed; the engine's message.
    Failed(String),
    /// The image that was built.
    Built(String),
}

impl Engine {
    /// Whether the engine is reached over the network (then the context is compressed).
    pub fn is_remote(&self) -> bool {
        self.endpoint.host.starts_with("tcp://")
    }

    pub fn host(&self) -> &str {
        &self.endpoint.host
    }

    /// The engine's CPU architecture, as Go names it (amd64, arm64, ...).
    pub fn architecture(&self) -> &str {
        &self.arch
    }

    /// Build an image from a tar context streamed from `body` (plain or gzip; the engine
    /// tells them apart), with the classic builder, removing intermediate containers even
    /// when a step fails. Each event is handed to `on_event` as it arrives.
    pub async fn build_image(
        &self,
        tag: &str,
        body: impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<(), EngineError> {
        let options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let docker = self.long_running();
        let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(body)));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(event) = build_event(info) {
                        on_event(event);
                    }
                }
                // A failed step arrives as an error in the stream: it is the build's outcome,
                // not a failure to talk to the engine.
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    on_event(BuildEvent::Failed(error));
                }
                Err(cause) => return Err(self.call_error(format!("build image {tag}"))(cause)),
            }
        }
        Ok(())
    }
}

/// The image's ID and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
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

/// The engine's answer when a container is not found.
fn not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// The image named `reference`, or None when the engine does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(ImageInfo {
                id: image.id.unwrap_or_default(),
                labels: image
                    .config
                    .and_then(|config| config.labels)
                    .unwrap_or_default(),
            })),
            Err(error) if not_found(&error) => Ok(None),
            Err(cause) => Err(self.call_error(format!("inspect image {reference}"))(cause)),
        }
    }

    /// Pull `reference` through the engine (its registries, credentials and mirrors).
    pub async fn pull_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = CreateImageOptionsBuilder::new()
            .from_image(reference)
            .build();
        let docker = self.long_running();
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(self.call_error(format!("pull {reference}")))?;
        }
        Ok(())
    }

    /// The images as one `docker save` archive, streamed.
    pub fn export_images(
        &self,
        references: &[&str],
    ) -> impl Stream<Item = Result<bytes::Bytes, EngineError>> + '_ {
        let docker = self.long_running();
        let action = format!("export {}", references.join(" "));
        let endpoint = self.endpoint.host.clone();
        let stream = docker.export_images(references);
        stream.map_err(move |cause| EngineError::Call {
            endpoint: endpoint.clone(),
            action: action.clone(),
            cause,
        })
    }

    /// Run `command` in a running container with `body` as its standard input (closed at
    /// its end); the exit code and what it printed (stdout and stderr).
    pub async fn exec_with_input(
        &self,
        container: &str,
        command: &[&str],
        body: impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send,
    ) -> Result<(i64, String), EngineError> {
        use tokio::io::AsyncWriteExt;
        let action = format!("run `{}` in {container}", command.join(" "));
        let config = bollard::models::ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(command.iter().map(|word| (*word).to_owned()).collect()),
            ..Default::default()
        };
        let docker = self.long_running();
        let id = docker
            .create_exec(container, config)
            .await
            .map_err(self.call_error(action.clone()))?
            .id;
        let options = bollard::exec::StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: None,
        };
        let started = docker
            .start_exec(&id, Some(options))
            .await
            .map_err(self.call_error(action.clone()))?;
        let bollard::exec::StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(self.call_error(action)(bollard::errors::Error::IOError {
                err: std::io::Error::other("the engine started the command detached"),
            }));
        };
        let writing = async move {
            let mut body = std::pin::pin!(body);
            while let Some(piece) = body.next().await {
                input.write_all(&piece?).await?;
            }
            input.shutdown().await
        };
        let reading = async move {
            let mut text = String::new();
            while let Some(frame) = output.next().await {
                text.push_str(&String::from_utf8_lossy(&frame?.into_bytes()));
            }
            Ok::<_, bollard::errors::Error>(text)
        };
        let (written, read) = tokio::join!(writing, reading);
        let text = read.map_err(self.call_error(action.clone()))?;
        written.map_err(|err| {
            self.call_error(action.clone())(bollard::errors::Error::IOError { err })
        })?;
        let code = docker
            .inspect_exec(&id)
            .await
            .map_err(self.call_error(action))?
            .exit_code
            .unwrap_or(-1);
        Ok((code, text))
    }

    /// Run `command` once in a throwaway container of `image`, with `files` (a tar) unpacked
    /// at `/` first; its exit code and stdout. The container is removed whatever happens.
    pub async fn run_once(
        &self,
        image: &str,
        labels: HashMap<String, String>,
        files: Vec<u8>,
        command: &[&str],
    ) -> Result<(i64, String), EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            entrypoint: Some(command.iter().map(|word| (*word).to_owned()).collect()),
            cmd: Some(Vec::new()),
            network_disabled: Some(true),
            labels: Some(labels),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(self.call_error(format!("create a container of {image}")))?
            .id;
        let result = self.run_created(&id, files).await;
        let removed = self.remove_container(&id).await;
        let outcome = result?;
        removed?;
        Ok(outcome)
    }

    async fn run_created(&self, id: &str, files: Vec<u8>) -> Result<(i64, String), EngineError> {
        let upload = UploadToContainerOptionsBuilder::new().path("/").build();
        self.docker
            .upload_to_container(id, Some(upload), bollard::body_full(files.into()))
            .await
            .map_err(self.call_error(format!("copy files into {id}")))?;
        self.start_container(id).await?;
        let mut waiting = self.docker.wait_container(id, None);
        let code = match waiting.next().await {
            Some(Ok(response)) => response.status_code,
            // A non-zero exit arrives as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(cause)) => return Err(self.call_error(format!("wait for {id}"))(cause)),
            None => -1,
        };
        let options = LogsOptionsBuilder::new().stdout(true).stderr(false).build();
        let frames: Vec<bollard::container::LogOutput> = self
            .docker
            .logs(id, Some(options))
            .try_collect()
            .await
            .map_err(self.call_error(format!("read the output of {id}")))?;
        let stdout = frames
            .into_iter()
            .map(|frame| String::from_utf8_lossy(&frame.into_bytes()).into_owned())
            .collect();
        Ok((code, stdout))
    }

    /// The network named `name`, created when missing: its ID, and whether this call
    /// created it. Engines before API 1.44 let two callers create two networks of one name;
    /// when that happened, the oldest is kept and the newer one removed again.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(String, bool), EngineError> {
        if let Some(oldest) = self.networks_named(name).await?.into_iter().next() {
            return Ok((oldest, false));
        }
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        let created = match self.docker.create_network(request).await {
            Ok(response) => Some(response.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => None,
            Err(cause) => return Err(self.call_error(format!("create network {name}"))(cause)),
        };
        let oldest = self
            .networks_named(name)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let outcome = match created {
            Some(id) if id == oldest => (id, true),
            Some(id) => {
                self.remove_network(&id).await?;
                (oldest, false)
            }
            None => (oldest, false),
        };
        // The engine resolves a container's network by name when it starts it, and refuses
        // an ambiguous name: wait (briefly) until the other creators have removed theirs.
        for _ in 0..50 {
            if self.networks_named(name).await?.len() <= 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(outcome)
    }

    /// IDs of the networks with exactly this name, oldest first.
    pub async fn networks_named(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([("name", vec![name])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let mut networks: Vec<(String, String)> = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(self.call_error(format!("list networks named {name}")))?
            .into_iter()
            .filter(|network| network.name.as_deref() == Some(name))
            .filter_map(|network| Some((network.created.unwrap_or_default(), network.id?)))
            .collect();
        networks.sort();
        Ok(networks.into_iter().map(|(_, id)| id).collect())
    }

    /// IDs of the networks carrying a label filter.
    pub async fn networks_with_label(
        &self,
        label_filter: &str,
    ) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([("label", vec![label_filter])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(self.call_error(format!("list networks labelled {label_filter}")))?;
        Ok(networks
            .into_iter()
            .filter_map(|network| network.id)
            .collect())
    }

    /// Remove a network unless a container still uses it; whether it was removed. The
    /// engine decides "in use" itself (403 "has active endpoints"; 409 on some versions),
    /// so a node joining at the same moment is never cut off by a check made earlier.
    pub async fn remove_network(&self, id: &str) -> Result<bool, EngineError> {
        match self.docker.remove_network(id).await {
            Ok(()) => Ok(true),
            Err(error) if not_found(&error) => Ok(false),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 403 | 409,
                ..
            }) => Ok(false),
            Err(cause) => Err(self.call_error(format!("remove network {id}"))(cause)),
        }
    }

    /// Create a named volume; the labels of the volume the engine answers with, which are
    /// those of an existing volume of that name when there is one (the engine creates
    /// nothing then).
    pub async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<HashMap<String, String>, EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|volume| volume.labels)
            .map_err(self.call_error(format!("create volume {name}")))
    }

    /// Volumes carrying a label filter: name and labels.
    pub async fn volumes_with_label(
        &self,
        label_filter: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, EngineError> {
        let filters = HashMap::from([("label", vec![label_filter])]);
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        let listing = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(self.call_error(format!("list volumes labelled {label_filter}")))?;
        Ok(listing
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| (volume.name, volume.labels))
            .collect())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<bool, EngineError> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(true),
            Err(error) if not_found(&error) => Ok(false),
            Err(cause) => Err(self.call_error(format!("remove volume {name}"))(cause)),
        }
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
        let endpoint = self.endpoint.host.clone();
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

fn build_event(info: bollard::models::BuildInfo) -> Option<BuildEvent> {
    if let Some(detail) = info.error_detail {
        return Some(BuildEvent::Failed(detail.message.unwrap_or_default()));
    }
    if let Some(id) = info.aux.and_then(|image| image.id) {
        return Some(BuildEvent::Built(id));
    }
    info.stream
        .or(info.status)
        .filter(|text| !text.is_empty())
        .map(BuildEvent::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_refusals_are_told_apart_from_other_failures() {
        assert_eq!(
            classify_start_refusal(
                "OCI runtime create failed: runc create failed: unable to start container process: unable to apply caps: operation not permitted"
            ),
            Some(StartRefusal::Privileged)
        );
        assert_eq!(
            classify_start_refusal(
                "driver failed programming external connectivity: Bind for 127.0.0.1:8443 failed: port is already allocated"
            ),
            Some(StartRefusal::PortTaken)
        );
        assert_eq!(
            classify_start_refusal("listen tcp4 127.0.0.1:8443: bind: address already in use"),
            Some(StartRefusal::PortTaken)
        );
        assert_eq!(
            classify_start_refusal("network 5f1c0e9d2b7a not found"),
            Some(StartRefusal::NetworkGone)
        );
        assert_eq!(classify_start_refusal("no such image"), None);
        assert_eq!(
            classify_start_refusal("No such image: kdind/node:v1 not found"),
            None
        );
    }

    fn resolve(pairs: &[(&str, &str)]) -> Result<Endpoint, EngineError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Endpoint::resolve(|key| env.get(key).cloned())
    }

    #[test]
    fn api_versions_parse() {
        let version = parse_api_version("1.41").unwrap();
        assert_eq!((version.major_version, version.minor_version), (1, 41));
        assert!(parse_api_version("x").is_none());
    }

    #[test]
    fn unset_or_empty_docker_host_means_the_local_socket() {
        assert_eq!(resolve(&[]).unwrap().host, DEFAULT_HOST);
        assert_eq!(resolve(&[("DOCKER_HOST", "")]).unwrap().host, DEFAULT_HOST);
    }

    #[test]
    fn unix_socket_ignores_tls_variables() {
        let endpoint = resolve(&[
            ("DOCKER_HOST", "unix:///run/x.sock"),
            ("DOCKER_TLS_VERIFY", "1"),
        ])
        .unwrap();
        assert_eq!(
            endpoint,
            Endpoint {
                host: "unix:///run/x.sock".into(),
                tls: None
            }
        );
    }

    #[test]
    fn tcp_without_verify_is_plain() {
        let endpoint = resolve(&[("DOCKER_HOST", "tcp://127.0.0.1:2375")]).unwrap();
        assert!(endpoint.tls.is_none());
    }

    #[test]
    fn tcp_with_verify_uses_cert_path() {
        let endpoint = resolve(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ])
        .unwrap();
        let tls = endpoint.tls.unwrap();
        assert_eq!(tls.ca, PathBuf::from("/certs/ca.pem"));
        assert_eq!(tls.cert, PathBuf::from("/certs/cert.pem"));
        assert_eq!(tls.key, PathBuf::from("/certs/key.pem"));
    }

    #[test]
    fn tls_cert_path_defaults_to_home_dot_docker() {
        let endpoint = resolve(&[
            ("DOCKER_HOST", "tcp://h:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("HOME", "/home/u"),
        ])
        .unwrap();
        assert_eq!(
            endpoint.tls.unwrap().ca,
            PathBuf::from("/home/u/.docker/ca.pem")
        );
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        let error = resolve(&[("DOCKER_HOST", "ssh://user@host")]).unwrap_err();
        assert!(error.to_string().contains("ssh://user@host"), "{error}");
    }

    #[tokio::test]
    async fn missing_tls_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint {
            host: "tcp://127.0.0.1:1".into(),
            tls: Some(TlsFiles {
                ca: dir.path().join("ca.pem"),
                cert: dir.path().join("cert.pem"),
                key: dir.path().join("key.pem"),
            }),
        };
        let error = Engine::connect_to(endpoint).await.unwrap_err();
        assert!(error.to_string().contains("ca.pem"), "{error}");
    }
}
