//! `kdind build`: the node image from stand-in artifacts (tests/fixtures/standin.toml) and
//! the real Debian packages, systemctl replacement and dockerd.

use std::process::Command;

use crate::support::{image_build_lock, run, text, unique, Docker, ImageGuard, Standins};

/// `docker image inspect` fields as (id, layers).
fn layers(docker: &Docker, reference: &str) -> (String, Vec<String>) {
    let output = docker.cli(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{range .RootFS.Layers}}{{.}},{{end}}",
        reference,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line = text(&output.stdout);
    let (id, layers) = line.trim().split_once(' ').unwrap();
    (
        id.to_owned(),
        layers
            .split(',')
            .filter(|layer| !layer.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn engine_build_then_rebuild_from_cache_then_change_the_kubernetes_version() {
    let test = "engine_build_then_rebuild_from_cache_then_change_the_kubernetes_version";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let _building = image_build_lock();
    let standins = Standins::new();
    let config = standins.config("kdind.toml", "", "");
    let first_tag = format!("kdind-test/node:{}", unique("first"));
    let _first_guard = ImageGuard(first_tag.clone());

    let (output, description) =
        run(&mut standins.build(&config, &docker.base_image, &["--tag", &first_tag]));
    assert!(output.status.success(), "{description}");
    assert_eq!(
        text(&output.stdout),
        format!("{first_tag}\n"),
        "{description}"
    );
    let (built_id, _) = layers(&docker, &first_tag);
    let labels = docker.cli(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"dev.kdind.kubernetes-version\"}} {{index .Config.Labels \"dev.kdind.artifact.minikube\"}}",
        &first_tag,
    ]);
    let labels = text(&labels.stdout);
    assert!(
        labels.starts_with("v1.35.1 v0.0.0-stand-in sha256:"),
        "image labels: {labels}"
    );

    // Inside: the replacement answers as systemd, and everything is where minikube looks.
    let check = r#"set -e
systemctl --version | head -n1
sudo -n systemctl --version | head -n1
for tool in systemctl journalctl minikube kubectl cri-dockerd crictl docker dockerd iptables conntrack tini; do
  echo "$tool=$(command -v $tool)"
done
ls /var/lib/minikube/binaries/v1.35.1 | tr '\n' ' '; echo
ls /opt/cni/bin | tr '\n' ' '; echo
ls /etc/systemd/system/cri-docker.service /etc/systemd/system/cri-docker.socket
kubectl version --client
"#;
    let inside = docker.cli(&[
        "run",
        "--rm",
        "--entrypoint",
        "bash",
        &first_tag,
        "-c",
        check,
    ]);
    let listing = text(&inside.stdout);
    assert!(
        inside.status.success(),
        "{listing}\n{}",
        text(&inside.stderr)
    );
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("systemd "), "{listing}");
    assert!(
        lines[1].starts_with("systemd "),
        "sudo finds the replacement: {listing}"
    );
    for expected in [
        "systemctl=/usr/local/bin/systemctl",
        "journalctl=/usr/local/bin/journalctl",
        "minikube=/usr/local/bin/minikube",
        "kubectl=/usr/local/bin/kubectl",
        "cri-dockerd=/usr/local/bin/cri-dockerd",
        "crictl=/usr/local/bin/crictl",
        "docker=/usr/bin/docker",
        "tini=/usr/bin/tini",
        "kubeadm kubectl kubelet ",
        "bridge firewall host-local loopback portmap ",
        "Client Version: v0.0.0-kdind-stand-in",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from:\n{listing}"
        );
    }

    // Unchanged config: every step from the layer cache, nothing downloaded.
    let (again, description) =
        run(&mut standins.build(&config, &docker.base_image, &["--tag", &first_tag]));
    assert!(again.status.success(), "{description}");
    let stderr = text(&again.stderr);
    assert!(stderr.contains(" 0 steps ran"), "{description}");
    assert!(!stderr.contains("downloaded"), "{description}");
    assert_eq!(layers(&docker, &first_tag).0, built_id, "the same image");

    // Another Kubernetes version: only the layers that hold the Kubernetes binaries change.
    let second_tag = format!("kdind-test/node:{}", unique("second"));
    let _second_guard = ImageGuard(second_tag.clone());
    let other = standins.config("other.toml", "kubernetes_version = \"v1.34.0\"", "");
    let (output, description) =
        run(&mut standins.build(&other, &docker.base_image, &["--tag", &second_tag]));
    assert!(output.status.success(), "{description}");
    let (first_id, first_layers) = layers(&docker, &first_tag);
    let (second_id, second_layers) = layers(&docker, &second_tag);
    assert_ne!(first_id, second_id);
    assert_eq!(first_layers.len(), second_layers.len());
    // The last three: the binaries, the kubectl link, and the preloaded images (kubeadm's list
    // follows the version; the layer also records the time its parent directories changed).
    let differing: Vec<usize> = first_layers
        .iter()
        .zip(&second_layers)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(index, _)| index)
        .collect();
    let last = first_layers.len() - 1;
    assert_eq!(
        differing,
        [last - 2, last - 1, last],
        "only the kubernetes binaries, the kubectl link and the preload differ:\n{first_layers:#?}\n{second_layers:#?}"
    );
    let inside = docker.cli(&[
        "run",
        "--rm",
        "--entrypoint",
        "ls",
        &second_tag,
        "/var/lib/minikube/binaries/v1.34.0",
    ]);
    assert_eq!(text(&inside.stdout), "kubeadm\nkubectl\nkubelet\n");
}

#[test]
fn engine_a_failing_step_shows_its_output_and_leaves_no_container() {
    let test = "engine_a_failing_step_shows_its_output_and_leaves_no_container";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    // A base image whose apt-get fails, so the first RUN of the build fails.
    let broken = format!("kdind-test/broken-apt:{}", unique("base"));
    let _broken_guard = ImageGuard(broken.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nRUN printf '#!/bin/sh\\necho kdind-test: apt-get is broken on purpose >&2\\nexit 100\\n' > /usr/bin/apt-get && chmod 0755 /usr/bin/apt-get\n",
            docker.base_image
        ),
    )
    .unwrap();
    let made = docker.cli(&["build", "-q", "-t", &broken, dir.path().to_str().unwrap()]);
    assert!(made.status.success(), "{}", text(&made.stderr));

    let standins = Standins::new();
    let config = standins.config("kdind.toml", "", "");
    let tag = format!("kdind-test/node:{}", unique("broken"));
    let _guard = ImageGuard(tag.clone());
    let (output, description) = run(&mut standins.build(&config, &broken, &["--tag", &tag]));
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the image build failed at Step 2/"),
        "{description}"
    );
    assert!(
        stderr.contains("apt-get is broken on purpose"),
        "{description}"
    );
    assert!(
        stderr.contains("returned a non-zero code: 100"),
        "{description}"
    );
    let left = docker.cli(&["ps", "-a", "-q", "--filter", &format!("ancestor={broken}")]);
    assert_eq!(
        text(&left.stdout),
        "",
        "intermediate containers were left behind"
    );
}

#[test]
fn the_context_out_is_a_deterministic_tar_with_the_artifacts_laid_out() {
    let standins = Standins::new();
    let config = standins.config("kdind.toml", "", "");
    let first = standins.dir.path().join("first.tar");
    let second = standins.dir.path().join("second.tar");
    for path in [&first, &second] {
        let (output, description) = run(&mut standins.build(
            &config,
            "example.invalid/debian:trixie",
            &["--context-out", path.to_str().unwrap()],
        ));
        assert!(output.status.success(), "{description}");
        assert_eq!(text(&output.stdout), "", "{description}");
    }
    let bytes = std::fs::read(&first).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&second).unwrap(),
        "same config, same bytes"
    );
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&first)
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    for expected in [
        " Dockerfile",
        " rootfs/usr/local/bin/kdind-entrypoint",
        " rootfs/etc/systemd/system/cri-docker.socket",
        " systemctl/Cargo.toml",
        " artifacts/bin/minikube",
        " artifacts/bin/cri-dockerd",
        " artifacts/bin/crictl",
        " artifacts/kubernetes/kubelet",
        " artifacts/cni/portmap",
    ] {
        assert!(
            listing.lines().any(|line| line.ends_with(expected)),
            "{expected} missing:\n{listing}"
        );
    }
    assert!(
        listing
            .lines()
            .filter(|line| line.contains("artifacts/"))
            .all(|line| line.starts_with("-rwxr-xr-x 0/0")),
        "{listing}"
    );

    let (output, description) = run(&mut standins.build(
        &config,
        "example.invalid/debian:trixie",
        &["--print-dockerfile"],
    ));
    assert!(output.status.success(), "{description}");
    let dockerfile = text(&output.stdout);
    assert!(dockerfile.contains("FROM example.invalid/debian:trixie AS systemctl"));
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut inside = String::new();
    std::io::Read::read_to_string(&mut entry, &mut inside).unwrap();
    assert_eq!(
        inside, dockerfile,
        "the context's Dockerfile is the printed one"
    );
}
