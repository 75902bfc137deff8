//! `kdind.toml`: the node image's configuration. The defaults are the commented file under
//! `assets/`, parsed by the same code as a user's file, so `kdind config defaults` and
//! the built-in values cannot drift apart.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::cluster::spec::PortMapping;
use crate::digest::Digest;

/// The complete default file, printed by `kdind config defaults`.
pub const DEFAULT_FILE: &str = include_str!("../assets/kdind.toml");

/// The artifacts the node image needs, in the order they are listed and downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArtifactName {
    Minikube,
    Kubectl,
    Kubeadm,
    Kubelet,
    CriDockerd,
    Crictl,
    CniPlugins,
}

impl ArtifactName {
    pub const ALL: [Self; 7] = [
        Self::Minikube,
        Self::Kubectl,
        Self::Kubeadm,
        Self::Kubelet,
        Self::CriDockerd,
        Self::Crictl,
        Self::CniPlugins,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minikube => "minikube",
            Self::Kubectl => "kubectl",
            Self::Kubeadm => "kubeadm",
            Self::Kubelet => "kubelet",
            Self::CriDockerd => "cri-dockerd",
            Self::Crictl => "crictl",
            Self::CniPlugins => "cni-plugins",
        }
    }

    /// kubectl, kubeadm and kubelet take their version from `kubernetes_version`.
    pub fn follows_kubernetes(self) -> bool {
        matches!(self, Self::Kubectl | Self::Kubeadm | Self::Kubelet)
    }
}

impl fmt::Display for ArtifactName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for ArtifactName {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or(())
    }
}

/// A CPU architecture the node image can be built for, named as Kubernetes names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amd64 => "amd64",
            Self::Arm64 => "arm64",
        }
    }

    /// The architecture kdind itself runs on, when it is one the image supports.
    pub fn host() -> Option<Self> {
        Self::from_machine(std::env::consts::ARCH)
    }

    /// From `uname -m` / Rust / Docker spellings.
    pub fn from_machine(machine: &str) -> Option<Self> {
        match machine {
            "x86_64" | "amd64" => Some(Self::Amd64),
            "aarch64" | "arm64" => Some(Self::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What to take out of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extract {
    /// One member, by its path inside the archive.
    Member(String),
    /// Every regular file, flattened by base name.
    All,
}

/// One artifact's settings, after merging the user's file over the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSpec {
    pub version: String,
    /// URL template with `{version}` and `{arch}`.
    pub url: String,
    pub checksum_url: Option<String>,
    pub sha256: BTreeMap<Arch, Digest>,
    pub extract: Option<Extract>,
}

/// The whole configuration; every artifact is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub kubernetes_version: String,
    pub base_image: String,
    pub artifacts: BTreeMap<ArtifactName, ArtifactSpec>,
    pub preload: PreloadSpec,
    /// `[minikube] args`: extra words for `minikube start`.
    pub minikube_args: Vec<String>,
    /// `[kubelet] extra_config`: `KEY=VALUE` settings for the kubelet.
    pub kubelet_extra_config: Vec<String>,
    /// `[cluster]`: what `kdind up` makes of the node.
    pub cluster: ClusterSpec,
}

/// `[cluster]`: the settings of `kdind up` a team keeps with its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// How long `up` and `start` wait for the node to be Ready.
    pub wait: std::time::Duration,
    /// Node ports published on the host.
    pub ports: Vec<PortMapping>,
}

impl Config {
    /// The words `minikube start` gets from this file: the kubelet's settings as
    /// `--extra-config=kubelet.KEY=VALUE`, then `[minikube] args` (which may override them).
    pub fn minikube_start_args(&self) -> Vec<String> {
        self.kubelet_extra_config
            .iter()
            .map(|setting| format!("--extra-config=kubelet.{setting}"))
            .chain(self.minikube_args.iter().cloned())
            .collect()
    }
}

/// `[preload]`: the images carried in the node image and loaded at its first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadSpec {
    pub enabled: bool,
    /// The user's images, besides kubeadm's and minikube's.
    pub images: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("{origin} is not valid: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    kubernetes_version: Option<String>,
    base_image: Option<String>,
    #[serde(default)]
    artifacts: BTreeMap<String, RawArtifact>,
    preload: Option<RawPreload>,
    minikube: Option<RawMinikube>,
    kubelet: Option<RawKubelet>,
    cluster: Option<RawCluster>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubelet {
    extra_config: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    wait: Option<String>,
    ports: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMinikube {
    args: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreload {
    enabled: Option<bool>,
    images: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifact {
    version: Option<String>,
    url: Option<String>,
    checksum_url: Option<String>,
    sha256: Option<BTreeMap<String, String>>,
    extract: Option<String>,
}

impl Config {
    /// The built-in configuration.
    pub fn defaults() -> Self {
        Self::from_layers(None).expect("the built-in assets/kdind.toml is valid")
    }

    /// Load `path` over the defaults (`None`: the defaults alone), then a
    /// `--kubernetes-version` from the command line over both.
    pub fn load(
        path: Option<&Path>,
        kubernetes_version: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            None => Self::defaults(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
                    path: path.to_owned(),
                    cause,
                })?;
                Self::from_layers(Some((&path.display().to_string(), &text)))?
            }
        };
        if let Some(version) = kubernetes_version {
            check_kubernetes_version(version).map_err(|message| ConfigError::Invalid {
                origin: "--kubernetes-version".to_owned(),
                message,
            })?;
            config.kubernetes_version = version.to_owned();
            for (name, spec) in config.artifacts.iter_mut() {
                if name.follows_kubernetes() {
                    spec.version = version.to_owned();
                    // A pin is for the version it was written for.
                    spec.sha256.clear();
                }
            }
        }
        Ok(config)
    }

    /// Parse a user's file given as text, over the defaults.
    #[cfg(test)]
    pub fn from_user_text(origin: &str, text: &str) -> Result<Self, ConfigError> {
        Self::from_layers(Some((origin, text)))
    }

    fn from_layers(user: Option<(&str, &str)>) -> Result<Self, ConfigError> {
        let defaults = parse_raw("the built-in defaults", DEFAULT_FILE)?;
        let Some((origin, text)) = user else {
            return resolve("the built-in defaults", defaults);
        };
        let user = parse_raw(origin, text)?;
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let mut merged = defaults;
        if user.kubernetes_version.is_some() {
            merged.kubernetes_version = user.kubernetes_version;
        }
        if user.base_image.is_some() {
            merged.base_image = user.base_image;
        }
        if let Some(theirs) = user.minikube {
            let ours = merged.minikube.get_or_insert_with(RawMinikube::default);
            merge_option(&mut ours.args, theirs.args);
        }
        if let Some(theirs) = user.kubelet {
            let ours = merged.kubelet.get_or_insert_with(RawKubelet::default);
            merge_option(&mut ours.extra_config, theirs.extra_config);
        }
        if let Some(theirs) = user.cluster {
            let ours = merged.cluster.get_or_insert_with(RawCluster::default);
            merge_option(&mut ours.wait, theirs.wait);
            merge_option(&mut ours.ports, theirs.ports);
        }
        if let Some(theirs) = user.preload {
            let ours = merged.preload.get_or_insert_with(RawPreload::default);
            merge_option(&mut ours.enabled, theirs.enabled);
            merge_option(&mut ours.images, theirs.images);
        }
        for (name, theirs) in user.artifacts {
            let Ok(known) = name.parse::<ArtifactName>() else {
                return Err(invalid(format!(
                    "unknown artifact `{name}` in [artifacts]; the artifacts are {}",
                    ArtifactName::ALL.map(ArtifactName::as_str).join(", ")
                )));
            };
            if known.follows_kubernetes() && theirs.version.is_some() {
                return Err(invalid(format!(
                    "[artifacts.{name}] takes no `version`: set `kubernetes_version` at the top of the file"
                )));
            }
            let ours = merged.artifacts.entry(name).or_default();
            // A URL of the user's choosing needs a checksum of the user's choosing.
            if theirs.url.is_some() {
                ours.checksum_url = None;
                ours.sha256 = None;
            }
            if theirs.version.is_some() {
                ours.sha256 = None;
            }
            merge_option(&mut ours.version, theirs.version);
            merge_option(&mut ours.url, theirs.url);
            merge_option(&mut ours.checksum_url, theirs.checksum_url);
            merge_option(&mut ours.sha256, theirs.sha256);
            merge_option(&mut ours.extract, theirs.extract);
        }
        resolve(origin, merged)
    }

    pub fn artifact(&self, name: ArtifactName) -> &ArtifactSpec {
        &self.artifacts[&name]
    }

    /// The version an artifact is fetched at.
    #[cfg(test)]
    pub fn version_of(&self, name: ArtifactName) -> &str {
        &self.artifact(name).version
    }
}

fn merge_option<T>(ours: &mut Option<T>, theirs: Option<T>) {
    if theirs.is_some() {
        *ours = theirs;
    }
}

fn parse_raw(origin: &str, text: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|error| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: error.to_string().trim_end().to_owned(),
    })
}

fn resolve(origin: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    let kubernetes_version = raw
        .kubernetes_version
        .ok_or_else(|| invalid("`kubernetes_version` is missing".to_owned()))?;
    check_kubernetes_version(&kubernetes_version).map_err(invalid)?;
    let base_image = raw
        .base_image
        .ok_or_else(|| invalid("`base_image` is missing".to_owned()))?;
    if base_image.is_empty() || base_image.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "`base_image` must be an image reference, not `{base_image}`"
        )));
    }
    let mut artifacts = BTreeMap::new();
    for name in ArtifactName::ALL {
        let raw = raw
            .artifacts
            .get(name.as_str())
            .cloned()
            .unwrap_or_default();
        let table = format!("[artifacts.{name}]");
        let version = if name.follows_kubernetes() {
            kubernetes_version.clone()
        } else {
            raw.version
                .ok_or_else(|| invalid(format!("{table} has no `version`")))?
        };
        check_version(&version).map_err(|message| invalid(format!("{table}: {message}")))?;
        let url = raw
            .url
            .ok_or_else(|| invalid(format!("{table} has no `url`")))?;
        check_url_template(&url).map_err(|message| invalid(format!("{table} url: {message}")))?;
        let checksum_url = raw.checksum_url.filter(|url| !url.is_empty());
        if let Some(checksum_url) = &checksum_url {
            check_url_template(checksum_url)
                .map_err(|message| invalid(format!("{table} checksum_url: {message}")))?;
        }
        let mut sha256 = BTreeMap::new();
        for (arch, value) in raw.sha256.unwrap_or_default() {
            let Some(parsed_arch) = Arch::from_machine(&arch).filter(|a| a.as_str() == arch) else {
                return Err(invalid(format!(
                    "{table} sha256 has unknown architecture `{arch}`; use amd64 or arm64"
                )));
            };
            let digest = value
                .parse::<Digest>()
                .map_err(|error| invalid(format!("{table} sha256.{arch}: {error}")))?;
            sha256.insert(parsed_arch, digest);
        }
        let extract = match raw.extract.as_deref() {
            None | Some("") => None,
            Some("*") => Some(Extract::All),
            Some(member) => {
                if member.starts_with('/') || member.split('/').any(|part| part == "..") {
                    return Err(invalid(format!(
                        "{table} extract: `{member}` must be a relative path inside the archive"
                    )));
                }
                Some(Extract::Member(member.to_owned()))
            }
        };
        artifacts.insert(
            name,
            ArtifactSpec {
                version,
                url,
                checksum_url,
                sha256,
                extract,
            },
        );
    }
    let preload = raw.preload.unwrap_or_default();
    let images = preload.images.unwrap_or_default();
    if let Some(bad) = images
        .iter()
        .find(|image| image.is_empty() || image.chars().any(char::is_whitespace))
    {
        return Err(invalid(format!(
            "[preload] images: `{bad}` is not an image reference"
        )));
    }
    let minikube_args = raw
        .minikube
        .and_then(|minikube| minikube.args)
        .unwrap_or_default();
    if let Some(bad) = minikube_args
        .iter()
        .find(|word| word.is_empty() || word.chars().any(char::is_whitespace))
    {
        return Err(invalid(format!(
            "[minikube] args: `{bad}` must be one word without spaces (give each its own entry)"
        )));
    }
    let kubelet_extra_config = raw
        .kubelet
        .and_then(|kubelet| kubelet.extra_config)
        .unwrap_or_default();
    if let Some(bad) = kubelet_extra_config.iter().find(|setting| {
        !matches!(setting.split_once('='), Some((key, _)) if !key.is_empty())
            || setting.chars().any(char::is_whitespace)
    }) {
        return Err(invalid(format!(
            "[kubelet] extra_config: `{bad}` must be KEY=VALUE without spaces, as the kubelet's flag is named (e.g. max-pods=50)"
        )));
    }
    let raw_cluster = raw.cluster.unwrap_or_default();
    let wait = raw_cluster
        .wait
        .ok_or_else(|| invalid("[cluster] `wait` is missing".to_owned()))?;
    let wait =
        parse_duration(&wait).map_err(|message| invalid(format!("[cluster] wait: {message}")))?;
    let ports = raw_cluster
        .ports
        .unwrap_or_default()
        .iter()
        .map(|port| port.parse::<PortMapping>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| invalid(format!("[cluster] ports: {message}")))?;
    Ok(Config {
        minikube_args,
        kubelet_extra_config,
        cluster: ClusterSpec { wait, ports },
        kubernetes_version,
        base_image,
        artifacts,
        preload: PreloadSpec {
            enabled: preload.enabled.unwrap_or(true),
            images,
        },
    })
}

/// `90s`, `5m`, `1h`, `1m30s` or plain seconds: each unit at most once, hours before
/// minutes before seconds, at most a week.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    const WEEK: u64 = 7 * 24 * 3600;
    let bad = || format!("`{text}` is not a duration: use e.g. 90s, 5m, 1h or 1m30s");
    let too_long = || format!("`{text}` is longer than a week");
    if let Ok(seconds) = text.parse::<u64>() {
        if seconds > WEEK {
            return Err(too_long());
        }
        return Ok(std::time::Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    // The units still allowed: each comes once, in this order.
    let mut units = [('h', 3600u64), ('m', 60), ('s', 1)].as_slice();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let at = units
            .iter()
            .position(|(unit, _)| *unit == c)
            .ok_or_else(bad)?;
        let seconds = value.checked_mul(units[at].1).ok_or_else(too_long)?;
        total = total.checked_add(seconds).ok_or_else(too_long)?;
        units = &units[at + 1..];
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    if total > WEEK {
        return Err(too_long());
    }
    Ok(std::time::Duration::from_secs(total))
}

fn check_kubernetes_version(version: &str) -> Result<(), String> {
    let numbers = version.strip_prefix('v').unwrap_or("");
    let core = numbers.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(format!(
            "`kubernetes_version` must look like v1.35.1, not `{version}`"
        ));
    }
    check_version(version)
}

/// Versions end up in URLs, paths and image tags: keep them to a safe alphabet.
fn check_version(version: &str) -> Result<(), String> {
    let safe = !version.is_empty()
        && version.len() <= 64
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'));
    if safe {
        Ok(())
    } else {
        Err(format!(
            "version `{version}` may hold only letters, digits, '.', '-', '+' and '_'"
        ))
    }
}

fn check_url_template(template: &str) -> Result<(), String> {
    let scheme_ok = ["https://", "http://", "file:///"]
        .iter()
        .any(|scheme| template.starts_with(scheme));
    if !scheme_ok {
        return Err(format!(
            "`{template}` must start with https://, http:// or file:/// (an absolute path)"
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{template}` has an unclosed `{{`"))?;
        let key = &after[..close];
        if key != "version" && key != "arch" {
            return Err(format!(
                "`{template}` uses `{{{key}}}`; only {{version}} and {{arch}} are known"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Fill `{version}` and `{arch}` into a URL template.
pub fn expand(template: &str, version: &str, arch: Arch) -> String {
    template
        .replace("{version}", version)
        .replace("{arch}", arch.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("1h1h").is_err());
        assert!(parse_duration("30s1m").is_err());
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(
            parse_duration("99999999999999999h"),
            Err("`99999999999999999h` is longer than a week".to_owned())
        );
        assert!(parse_duration("8d").is_err());
        assert!(parse_duration("999999999999").is_err());
    }

    fn user(text: &str) -> Result<Config, ConfigError> {
        Config::from_user_text("kdind.toml", text)
    }

    #[test]
    fn defaults_hold_every_artifact_at_the_documented_versions() {
        let config = Config::defaults();
        assert_eq!(config.kubernetes_version, "v1.35.1");
        assert_eq!(config.base_image, "debian:trixie-slim");
        let versions: Vec<(&str, &str)> = ArtifactName::ALL
            .iter()
            .map(|name| (name.as_str(), config.version_of(*name)))
            .collect();
        assert_eq!(
            versions,
            [
                ("minikube", "v1.38.1"),
                ("kubectl", "v1.35.1"),
                ("kubeadm", "v1.35.1"),
                ("kubelet", "v1.35.1"),
                ("cri-dockerd", "0.4.3"),
                ("crictl", "v1.34.0"),
                ("cni-plugins", "v1.9.1"),
            ]
        );
        let cri = config.artifact(ArtifactName::CriDockerd);
        assert_eq!(cri.checksum_url, None, "upstream publishes none");
        assert_eq!(
            expand(&cri.url, &cri.version, Arch::Arm64),
            "https://github.com/Mirantis/cri-dockerd/releases/download/v0.4.3/cri-dockerd-0.4.3.arm64.tgz"
        );
        assert_eq!(
            cri.extract,
            Some(Extract::Member("cri-dockerd/cri-dockerd".into()))
        );
        let kubelet = config.artifact(ArtifactName::Kubelet);
        assert_eq!(
            expand(
                kubelet.checksum_url.as_deref().unwrap(),
                &kubelet.version,
                Arch::Amd64
            ),
            "https://dl.k8s.io/release/v1.35.1/bin/linux/amd64/kubelet.sha256"
        );
    }

    #[test]
    fn preloading_is_on_by_default_and_takes_the_users_images() {
        let defaults = Config::defaults();
        assert!(defaults.preload.enabled);
        assert!(defaults.preload.images.is_empty());
        let config = user("[preload]\nimages = [\"example.com/app:1\"]\n").unwrap();
        assert!(config.preload.enabled);
        assert_eq!(config.preload.images, ["example.com/app:1"]);
        let off = user("[preload]\nenabled = false\n").unwrap();
        assert!(!off.preload.enabled);
        let error = user("[preload]\nimages = [\"a b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`a b` is not an image reference"), "{error}");
        let error = user("[preload]\nimage = []\n").unwrap_err().to_string();
        assert!(error.contains("image"), "{error}");
    }

    #[test]
    fn minikube_args_are_words_from_the_file() {
        assert!(Config::defaults().minikube_args.is_empty());
        let config = user("[minikube]\nargs = [\"--extra-config=kubelet.max-pods=50\"]\n").unwrap();
        assert_eq!(config.minikube_args, ["--extra-config=kubelet.max-pods=50"]);
        let error = user("[minikube]\nargs = [\"--a b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`--a b` must be one word"), "{error}");
    }

    #[test]
    fn an_empty_user_file_is_the_defaults() {
        assert_eq!(user("").unwrap(), Config::defaults());
        assert_eq!(user(DEFAULT_FILE).unwrap(), Config::defaults());
    }

    #[test]
    fn kubernetes_version_drives_the_three_kubernetes_binaries() {
        let config = user("kubernetes_version = \"v1.34.2\"\n").unwrap();
        for name in [
            ArtifactName::Kubectl,
            ArtifactName::Kubeadm,
            ArtifactName::Kubelet,
        ] {
            assert_eq!(config.version_of(name), "v1.34.2");
        }
        assert_eq!(config.version_of(ArtifactName::Minikube), "v1.38.1");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let error = user("kubernetes_versoin = \"v1.35.1\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("kubernetes_versoin"), "{error}");
        let error = user("[artifacts.minikube]\nchecksum = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("checksum"), "{error}");
        let error = user("[artifacts.helm]\nversion = \"v3\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown artifact `helm`"), "{error}");
    }

    #[test]
    fn the_cluster_section_gives_up_its_wait_and_ports() {
        let defaults = Config::defaults();
        assert_eq!(defaults.cluster.wait, std::time::Duration::from_secs(300));
        assert!(defaults.cluster.ports.is_empty());
        let config =
            user("[cluster]\nwait = \"10m\"\nports = [\"8080:30080\", \"0.0.0.0:53:30053/udp\"]\n")
                .unwrap();
        assert_eq!(config.cluster.wait, std::time::Duration::from_secs(600));
        let ports: Vec<String> = config
            .cluster
            .ports
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ports, ["127.0.0.1:8080:30080/tcp", "0.0.0.0:53:30053/udp"]);
        let error = user("[cluster]\nports = [\"8080\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("[cluster] ports"), "{error}");
        let error = user("[cluster]\nwait = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("[cluster] wait"), "{error}");
    }

    #[test]
    fn kubelet_settings_become_minikube_extra_config_before_the_users_args() {
        let config = user(
            "[kubelet]\nextra_config = [\"max-pods=50\"]\n[minikube]\nargs = [\"--extra-config=kubelet.max-pods=60\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.minikube_start_args(),
            [
                "--extra-config=kubelet.max-pods=50",
                "--extra-config=kubelet.max-pods=60"
            ]
        );
        for bad in ["max-pods", "=50", "max pods=50"] {
            let error = user(&format!("[kubelet]\nextra_config = [\"{bad}\"]\n"))
                .unwrap_err()
                .to_string();
            assert!(error.contains("KEY=VALUE"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_kubernetes_version_flag_overrides_the_file_and_drops_stale_pins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kdind.toml");
        let pin = "a".repeat(64);
        std::fs::write(
            &path,
            format!("[artifacts.kubelet]\nsha256 = {{ amd64 = \"{pin}\" }}\n"),
        )
        .unwrap();
        let config = Config::load(Some(&path), Some("v1.34.2")).unwrap();
        assert_eq!(config.kubernetes_version, "v1.34.2");
        assert_eq!(config.version_of(ArtifactName::Kubelet), "v1.34.2");
        assert!(config.artifact(ArtifactName::Kubelet).sha256.is_empty());
        assert_eq!(config.version_of(ArtifactName::Minikube), "v1.38.1");
        let error = Config::load(None, Some("1.34")).unwrap_err().to_string();
        assert!(error.contains("--kubernetes-version"), "{error}");
    }

    #[test]
    fn kubernetes_binaries_take_no_version_of_their_own() {
        let error = user("[artifacts.kubelet]\nversion = \"v1.30.0\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("kubernetes_version"), "{error}");
    }

    #[test]
    fn a_user_url_drops_the_default_checksum_url() {
        let config = user("[artifacts.minikube]\nurl = \"file:///opt/minikube\"\n").unwrap();
        let minikube = config.artifact(ArtifactName::Minikube);
        assert_eq!(minikube.url, "file:///opt/minikube");
        assert_eq!(minikube.checksum_url, None);
        // A new version alone keeps the templated checksum URL.
        let config = user("[artifacts.crictl]\nversion = \"v1.34.0\"\n").unwrap();
        assert!(config.artifact(ArtifactName::Crictl).checksum_url.is_some());
    }

    #[test]
    fn pins_are_parsed_per_architecture() {
        let hash = "a".repeat(64);
        let config = user(&format!(
            "[artifacts.cri-dockerd]\nsha256 = {{ amd64 = \"{hash}\" }}\n"
        ))
        .unwrap();
        let pins = &config.artifact(ArtifactName::CriDockerd).sha256;
        assert_eq!(pins[&Arch::Amd64].to_string(), hash);
        assert!(!pins.contains_key(&Arch::Arm64));
        let error = user("[artifacts.cri-dockerd]\nsha256 = { x86 = \"aa\" }\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown architecture `x86`"), "{error}");
        let error = user("[artifacts.cri-dockerd]\nsha256 = { amd64 = \"aa\" }\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("64 hex digits"), "{error}");
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (text, expected) in [
            ("kubernetes_version = \"1.35\"\n", "must look like v1.35.1"),
            (
                "[artifacts.minikube]\nurl = \"ftp://x/{version}\"\n",
                "must start with https://",
            ),
            (
                "[artifacts.minikube]\nurl = \"https://x/{os}\"\n",
                "only {version} and {arch}",
            ),
            (
                "[artifacts.minikube]\nversion = \"v1/../x\"\n",
                "may hold only",
            ),
            (
                "[artifacts.crictl]\nextract = \"../etc/passwd\"\n",
                "relative path",
            ),
            ("base_image = \"\"\n", "image reference"),
            ("kubernetes_version = 1\n", "invalid type"),
        ] {
            let error = user(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn architectures_from_machine_names() {
        assert_eq!(Arch::from_machine("x86_64"), Some(Arch::Amd64));
        assert_eq!(Arch::from_machine("aarch64"), Some(Arch::Arm64));
        assert_eq!(Arch::from_machine("riscv64"), None);
    }
}
