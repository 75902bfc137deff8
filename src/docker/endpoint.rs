//! Where the engine is and how to speak to it, resolved from the environment the way the
//! docker CLI does (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).

use std::path::{Path, PathBuf};

use super::EngineError;

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

    pub(super) fn hint(&self) -> &'static str {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
}
