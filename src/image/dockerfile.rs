//! The node image's Dockerfile: `assets/Dockerfile` with the configuration filled in. A pure
//! function, snapshot-tested against `tests/fixtures/snapshots/node.Dockerfile`.

const TEMPLATE: &str = include_str!("../../assets/Dockerfile");

/// Debian packages of the node stage, in the order they are listed in the Dockerfile.
pub const PACKAGES: &[&str] = &[
    "docker.io",
    "docker-cli",
    "containerd",
    "runc",
    "iptables",
    "conntrack",
    "socat",
    "ethtool",
    "ebtables",
    "iproute2",
    "kmod",
    "procps",
    "mount",
    "util-linux",
    "sudo",
    "openssl",
    "ca-certificates",
    "tini",
];

/// What the Dockerfile depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileInputs<'a> {
    pub base_image: &'a str,
    pub kubernetes_version: &'a str,
}

pub fn render(inputs: &DockerfileInputs<'_>) -> String {
    let packages = PACKAGES.join(" \\\n      ");
    TEMPLATE
        .replace("{{base_image}}", inputs.base_image)
        .replace("{{kubernetes_version}}", inputs.kubernetes_version)
        .replace("{{packages}}", &packages)
        .replace("{{preload_dir}}", crate::cluster::contract::PRELOAD_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str = "tests/fixtures/snapshots/node.Dockerfile";

    #[test]
    fn the_default_dockerfile_matches_its_snapshot() {
        let rendered = render(&DockerfileInputs {
            base_image: "debian:trixie-slim",
            kubernetes_version: "v1.35.1",
        });
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
        if std::env::var_os("KDIND_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            rendered == expected,
            "the rendered Dockerfile differs from {SNAPSHOT}; review it and rerun with \
             KDIND_UPDATE_SNAPSHOTS=1 to accept it.\n--- rendered ---\n{rendered}"
        );
    }

    #[test]
    fn every_placeholder_is_filled() {
        let rendered = render(&DockerfileInputs {
            base_image: "registry.example/debian:trixie",
            kubernetes_version: "v1.34.2",
        });
        assert!(!rendered.contains("{{"), "{rendered}");
        assert_eq!(
            rendered
                .lines()
                .filter(|line| line.starts_with("FROM "))
                .collect::<Vec<_>>(),
            [
                "FROM registry.example/debian:trixie AS systemctl",
                "FROM registry.example/debian:trixie"
            ]
        );
        assert!(rendered.contains("COPY artifacts/kubernetes/ /var/lib/minikube/binaries/v1.34.2/"));
    }

    #[test]
    fn the_kubernetes_version_appears_only_in_the_last_steps() {
        let rendered = render(&DockerfileInputs {
            base_image: "b",
            kubernetes_version: "v9.9.9",
        });
        let steps: Vec<&str> = rendered
            .lines()
            .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .collect();
        let first = steps
            .iter()
            .position(|step| step.contains("v9.9.9"))
            .unwrap();
        let tail = &steps[first..];
        // ENV, the binaries, the kubectl link, the preloaded images (kubeadm's list follows
        // the version), STOPSIGNAL, ENTRYPOINT.
        assert!(tail.len() <= 6, "{tail:#?}");
        assert!(tail.iter().all(|step| !step.starts_with("RUN apt-get")));
    }
}
