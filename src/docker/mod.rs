//! The Docker engine: the only module that imports bollard.
//!
//! It resolves the endpoint the way the docker CLI does (`endpoint.rs`), negotiates the API
//! version, and turns every failed engine call into an error that says what was attempted,
//! on which endpoint, and what the engine answered; refusals callers act on (a privileged
//! container the engine cannot grant, a taken port, a vanished network) are classified
//! here, beside the call. The calls are split by what they act on: containers, images,
//! commands run in containers (exec), networks and volumes.

mod containers;
mod endpoint;
mod exec;
mod images;
mod resources;

use std::path::{Path, PathBuf};

use bollard::{Docker, API_DEFAULT_VERSION};

pub use containers::{ContainerInfo, ContainerSpec, Privileges, PublishedPort};
pub use endpoint::Endpoint;
pub use exec::RunOnce;
pub use images::BuildEvent;

/// Seconds a single engine request may take. Image builds raise it for large contexts.
const REQUEST_TIMEOUT_SECONDS: u64 = 120;

/// Seconds an image build may take to upload its context and get an answer.
const BUILD_TIMEOUT_SECONDS: u64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unsupported DOCKER_HOST {0:?}: kdind speaks to unix:// sockets and tcp:// endpoints")]
    UnsupportedHost(String),

    #[error("cannot use the Docker context {name}: {message}")]
    Context { name: String, message: String },

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

    /// The host port a `PortTaken` refusal names, when its words name one.
    pub fn taken_port(&self) -> Option<u16> {
        match self {
            EngineError::Refused {
                refusal: StartRefusal::PortTaken,
                message,
                ..
            } => taken_port(message),
            _ => None,
        }
    }
}

/// The port in "Bind for 127.0.0.1:8080 failed: port is already allocated" or
/// "listen tcp4 127.0.0.1:8080: bind: address already in use": the first ADDRESS:PORT.
fn taken_port(message: &str) -> Option<u16> {
    message.split_whitespace().find_map(|word| {
        let (address, port) = word.trim_end_matches(':').rsplit_once(':')?;
        if address.is_empty() {
            return None;
        }
        port.parse().ok()
    })
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

/// A connected engine with a negotiated API version.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: Endpoint,
    /// The engine's CPU architecture as Go names it (amd64, arm64, ...).
    arch: String,
    /// The engine's version and the API version it speaks, as it reported them.
    server_version: String,
    api_version: String,
}

/// What the engine says about itself and its host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineInfo {
    /// "1" or "2" ("" when the engine does not say).
    pub cgroup_version: String,
    /// Where the engine keeps images and volumes, on its host.
    pub data_root: String,
    pub operating_system: String,
    pub kernel: String,
}

/// `1.41` -> 1.41.
fn parse_api_version(text: &str) -> Option<bollard::ClientVersion> {
    let (major, minor) = text.split_once('.')?;
    Some(bollard::ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
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
            endpoint: endpoint.describe(),
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
            server_version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
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
                    endpoint: self.endpoint.describe(),
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
            endpoint: self.endpoint.describe(),
            action,
            cause,
        }
    }

    /// Whether the engine is reached over the network (then the context is compressed).
    pub fn is_remote(&self) -> bool {
        self.endpoint.host.starts_with("tcp://")
    }

    /// The engine's host name or address when it is off loopback: the ports it publishes
    /// are reached there.
    pub fn remote_host(&self) -> Option<&str> {
        self.endpoint.remote_host()
    }

    /// The engine as messages name it (with its Docker context, if any).
    pub fn host(&self) -> String {
        self.endpoint.describe()
    }

    /// The engine's version and its API version.
    pub fn versions(&self) -> (&str, &str) {
        (&self.server_version, &self.api_version)
    }

    /// What the engine says about itself and its host.
    pub async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(self.call_error("describe itself"))?;
        Ok(EngineInfo {
            cgroup_version: info
                .cgroup_version
                .map(|version| version.to_string())
                .unwrap_or_default(),
            data_root: info.docker_root_dir.unwrap_or_default(),
            operating_system: info.operating_system.unwrap_or_default(),
            kernel: info.kernel_version.unwrap_or_default(),
        })
    }

    /// The engine's CPU architecture, as Go names it (amd64, arm64, ...).
    pub fn architecture(&self) -> &str {
        &self.arch
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint::TlsFiles;
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
            taken_port("driver failed programming external connectivity on endpoint kdind-x (0123): Bind for 127.0.0.1:8443 failed: port is already allocated"),
            Some(8443)
        );
        assert_eq!(
            taken_port("listen tcp4 [::1]:8080: bind: address already in use"),
            Some(8080)
        );
        assert_eq!(taken_port("port is already allocated"), None);
        assert_eq!(
            classify_start_refusal("No such image: kdind/node:v1 not found"),
            None
        );
    }

    #[test]
    fn api_versions_parse() {
        let version = parse_api_version("1.41").unwrap();
        assert_eq!((version.major_version, version.minor_version), (1, 41));
        assert!(parse_api_version("x").is_none());
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
            context: None,
        };
        let error = Engine::connect_to(endpoint).await.unwrap_err();
        assert!(error.to_string().contains("ca.pem"), "{error}");
    }
}
