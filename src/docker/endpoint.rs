//! Where the engine is and how to speak to it, resolved from the environment the way the
//! docker CLI does: DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), else the
//! Docker context named by DOCKER_CONTEXT or by `currentContext` in the CLI's config.json
//! (DOCKER_CONFIG, default ~/.docker), with the TLS material stored beside it.

use std::path::{Path, PathBuf};

use super::EngineError;

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the engine is and how to speak to it, resolved from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub tls: Option<TlsFiles>,
    /// The Docker context it came from, if any.
    pub context: Option<String>,
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
        let host = match set("DOCKER_HOST") {
            Some(host) => host,
            None => {
                let config_dir = set("DOCKER_CONFIG")
                    .map(PathBuf::from)
                    .or_else(|| set("HOME").map(|home| Path::new(&home).join(".docker")))
                    .unwrap_or_else(|| PathBuf::from(".docker"));
                let context = match set("DOCKER_CONTEXT") {
                    Some(name) => Some(name),
                    None => current_context(&config_dir)?,
                };
                match context {
                    Some(name) if name != "default" => return from_context(&config_dir, &name),
                    _ => DEFAULT_HOST.to_owned(),
                }
            }
        };
        if host.starts_with("unix://") {
            return Ok(Self {
                host,
                tls: None,
                context: None,
            });
        }
        if !host.starts_with("tcp://") {
            return Err(EngineError::UnsupportedHost(host));
        }
        if set("DOCKER_TLS_VERIFY").is_none() {
            return Ok(Self {
                host,
                tls: None,
                context: None,
            });
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
            context: None,
        })
    }

    /// The host part of a `tcp://` endpoint that is not a loopback address: the engine is
    /// on another machine (or in another network namespace), and ports it publishes are
    /// reached there, not on this machine's 127.0.0.1.
    pub fn remote_host(&self) -> Option<&str> {
        let authority = self.host.strip_prefix("tcp://")?;
        let authority = authority.split('/').next().unwrap_or(authority);
        let host = match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or(bracketed),
            None => authority
                .rsplit_once(':')
                .map_or(authority, |(host, _)| host),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback());
        (!host.is_empty() && !loopback).then_some(host)
    }

    /// The endpoint as messages name it.
    pub fn describe(&self) -> String {
        match &self.context {
            Some(context) => format!("{} (Docker context {context})", self.host),
            None => self.host.clone(),
        }
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

/// `currentContext` of the docker CLI's config.json, when there is one.
fn current_context(config_dir: &Path) -> Result<Option<String>, EngineError> {
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(EngineError::Context {
                name: "(current)".to_owned(),
                message: format!("cannot read {}: {error}", path.display()),
            })
        }
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| EngineError::Context {
            name: "(current)".to_owned(),
            message: format!("{} is not JSON: {error}", path.display()),
        })?;
    Ok(config["currentContext"]
        .as_str()
        .filter(|name| !name.is_empty())
        .map(str::to_owned))
}

/// A context's endpoint from the CLI's context store: `contexts/meta/<sha256 of the
/// name>/meta.json` for the host, `contexts/tls/<same>/docker/` for the TLS material.
fn from_context(config_dir: &Path, name: &str) -> Result<Endpoint, EngineError> {
    let failed = |message: String| EngineError::Context {
        name: name.to_owned(),
        message,
    };
    let id = crate::digest::hash_bytes(name.as_bytes()).to_string();
    let meta_path = config_dir.join("contexts/meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|error| {
        failed(format!(
            "cannot read {} ({error}); `docker context ls` lists the contexts",
            meta_path.display()
        ))
    })?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .map_err(|error| failed(format!("{} is not JSON: {error}", meta_path.display())))?;
    let docker = &meta["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| failed("it names no docker endpoint".to_owned()))?
        .to_owned();
    if host.starts_with("unix://") {
        return Ok(Endpoint {
            host,
            tls: None,
            context: Some(name.to_owned()),
        });
    }
    if !host.starts_with("tcp://") {
        return Err(EngineError::UnsupportedHost(host));
    }
    if docker["SkipTLSVerify"].as_bool() == Some(true) {
        return Err(failed(
            "it skips TLS verification, which kdind does not do: give it the engine's CA"
                .to_owned(),
        ));
    }
    let dir = config_dir.join("contexts/tls").join(&id).join("docker");
    let tls = dir.join("cert.pem").exists().then(|| TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    Ok(Endpoint {
        host,
        tls,
        context: Some(name.to_owned()),
    })
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
                tls: None,
                context: None,
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

    /// A CLI config directory with a context `name` for `host`, with TLS files when `tls`.
    fn context_store(name: &str, host: &str, tls: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let id = crate::digest::hash_bytes(name.as_bytes()).to_string();
        let meta = dir.path().join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
            ),
        )
        .unwrap();
        if tls {
            let tls = dir.path().join("contexts/tls").join(&id).join("docker");
            std::fs::create_dir_all(&tls).unwrap();
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::write(tls.join(file), "x").unwrap();
            }
        }
        dir
    }

    #[test]
    fn the_current_context_of_the_clis_config_is_honoured_with_its_tls_files() {
        let store = context_store("build-host", "tcp://10.1.2.3:2376", true);
        std::fs::write(
            store.path().join("config.json"),
            r#"{"auths":{},"currentContext":"build-host"}"#,
        )
        .unwrap();
        let config = store.path().to_str().unwrap();
        let endpoint = resolve(&[("DOCKER_CONFIG", config)]).unwrap();
        assert_eq!(endpoint.host, "tcp://10.1.2.3:2376");
        assert_eq!(endpoint.context.as_deref(), Some("build-host"));
        let id = crate::digest::hash_bytes(b"build-host").to_string();
        assert_eq!(
            endpoint.tls.as_ref().unwrap().key,
            store
                .path()
                .join("contexts/tls")
                .join(id)
                .join("docker/key.pem")
        );
        assert!(endpoint.describe().contains("Docker context build-host"));

        // DOCKER_CONTEXT picks another; DOCKER_HOST wins over both.
        let endpoint =
            resolve(&[("DOCKER_CONFIG", config), ("DOCKER_CONTEXT", "default")]).unwrap();
        assert_eq!(endpoint.host, DEFAULT_HOST);
        let endpoint = resolve(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_HOST", "unix:///run/other.sock"),
        ])
        .unwrap();
        assert_eq!(endpoint.host, "unix:///run/other.sock");
    }

    #[test]
    fn a_missing_context_is_an_error_naming_it() {
        let store = tempfile::tempdir().unwrap();
        let error = resolve(&[
            ("DOCKER_CONFIG", store.path().to_str().unwrap()),
            ("DOCKER_CONTEXT", "nowhere"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("nowhere"), "{error}");
        assert!(error.contains("docker context ls"), "{error}");
    }

    #[test]
    fn remote_hosts_are_tcp_endpoints_off_loopback() {
        let endpoint = |host: &str| Endpoint {
            host: host.to_owned(),
            tls: None,
            context: None,
        };
        assert_eq!(endpoint("tcp://docker:2376").remote_host(), Some("docker"));
        assert_eq!(
            endpoint("tcp://10.0.0.5:2376").remote_host(),
            Some("10.0.0.5")
        );
        assert_eq!(
            endpoint("tcp://[fd00::5]:2376").remote_host(),
            Some("fd00::5")
        );
        assert_eq!(endpoint("tcp://127.0.0.1:2376").remote_host(), None);
        assert_eq!(endpoint("tcp://localhost:2376").remote_host(), None);
        assert_eq!(endpoint("tcp://[::1]:2376").remote_host(), None);
        assert_eq!(endpoint("unix:///var/run/docker.sock").remote_host(), None);
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        let error = resolve(&[("DOCKER_HOST", "ssh://user@host")]).unwrap_err();
        assert!(error.to_string().contains("ssh://user@host"), "{error}");
    }
}
