//! The Docker engine: the only module that imports bollard.
//!
//! It resolves the endpoint the way the docker CLI does (DOCKER_HOST, DOCKER_TLS_VERIFY,
//! DOCKER_CERT_PATH), negotiates the API version, and turns every failed engine call into
//! an error that says what was attempted, on which endpoint, and what the engine answered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{BuildImageOptionsBuilder, ListContainersOptionsBuilder};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::{Stream, StreamExt};

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
        let endpoint = Endpoint::resolve(|key| std::env::var(key).ok())?;
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
        let docker = match &endpoint.tls {
            None if endpoint.host.starts_with("unix://") => Docker::connect_with_unix(
                &endpoint.host,
                REQUEST_TIMEOUT_SECONDS,
                API_DEFAULT_VERSION,
            ),
            None => Docker::connect_with_http(
                &endpoint.host,
                REQUEST_TIMEOUT_SECONDS,
                API_DEFAULT_VERSION,
            ),
            Some(tls) => Docker::connect_with_ssl(
                &endpoint.host,
                &tls.key,
                &tls.cert,
                &tls.ca,
                REQUEST_TIMEOUT_SECONDS,
                API_DEFAULT_VERSION,
            ),
        }
        .map_err(unreachable)?;
        // negotiate_version asks the engine for its version: the first real round trip.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Self { docker, endpoint })
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

    /// The engine's CPU architecture, as Docker names it (x86_64, aarch64, ...).
    pub async fn architecture(&self) -> Result<String, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(self.call_error("read its system information"))?;
        Ok(info.architecture.unwrap_or_default())
    }

    /// Build an image from a tar context streamed from `body` (plain or gzip; the engine
    /// tells them apart), with the classic builder, removing intermediate containers even
    /// when a step fails. Each event is handed to `on_event` as it arrives.
    pub async fn build_image(
        &self,
        tag: &str,
        labels: &HashMap<String, String>,
        body: impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<(), EngineError> {
        let options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(labels)
            .build();
        let docker = self
            .docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(BUILD_TIMEOUT_SECONDS));
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

    fn resolve(pairs: &[(&str, &str)]) -> Result<Endpoint, EngineError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Endpoint::resolve(|key| env.get(key).cloned())
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
