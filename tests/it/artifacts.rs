//! Artifacts through the kdind binary, against an HTTP server on 127.0.0.1: sharing one
//! download between two builds, offline misses, mirrors, file:// URLs, corrupted cache
//! entries, checksum mismatches and the refusal of unverified files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http_server::{Reply, TestServer};
use crate::support::{kdind, run, text};

const NAMES: [&str; 7] = [
    "minikube",
    "kubectl",
    "kubeadm",
    "kubelet",
    "cri-dockerd",
    "crictl",
    "cni-plugins",
];

fn payload(name: &str) -> Vec<u8> {
    format!("{name} stand-in payload\n")
        .repeat(1000)
        .into_bytes()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A scratch directory with a cache and a config.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("kdind.toml")
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).unwrap();
    }

    fn kdind(&self, args: &[&str]) -> std::process::Command {
        let mut command = kdind();
        command
            .env("KDIND_CACHE_DIR", self.cache())
            .env_remove("KDIND_MIRROR")
            .env_remove("KDIND_CONFIG")
            .args(args);
        command
    }

    /// `kdind build --download-only --config <the config> EXTRA...`.
    fn download(&self, extra: &[&str]) -> (std::process::Output, String) {
        let config = self.config();
        let mut args = vec![
            "build",
            "--download-only",
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&mut self.kdind(&args))
    }

    fn cached_entries(&self) -> Vec<String> {
        match std::fs::read_dir(self.cache().join("sha256")) {
            Ok(entries) => entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A config whose seven artifacts come from `base/<name>`, each pinned to its payload.
fn pinned_config(base: &str) -> String {
    let mut text = String::new();
    for name in NAMES {
        let arch = host_arch();
        text.push_str(&format!(
            "[artifacts.{name}]\nurl = \"{base}/{name}\"\nsha256 = {{ {arch} = \"{}\" }}\n\n",
            sha256(&payload(name))
        ));
    }
    text
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

fn serve_payloads() -> TestServer {
    TestServer::start(|path, _| {
        match NAMES
            .iter()
            .find(|name| path == format!("/a/{name}").as_str())
        {
            Some(name) => Reply::ok(payload(name)),
            None => Reply::status(404),
        }
    })
}

#[test]
fn config_defaults_prints_a_complete_file_that_loads() {
    let scratch = Scratch::new();
    let (output, description) = run(&mut scratch.kdind(&["config", "defaults"]));
    assert!(output.status.success(), "{description}");
    let defaults = text(&output.stdout);
    for key in [
        "kubernetes_version",
        "base_image",
        "checksum_url",
        "extract",
    ] {
        assert!(defaults.contains(key), "{key} missing:\n{defaults}");
    }
    scratch.write_config(&defaults);
    let config = scratch.config();
    let (output, description) = run(&mut scratch.kdind(&[
        "build",
        "--print-artifacts",
        "-o",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(output.status.success(), "{description}");
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, NAMES);
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row["cached"] == false));
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let scratch = Scratch::new();
    scratch.write_config("[artifacts.minikube]\nverison = \"v1\"\n");
    let config = scratch.config();
    let (output, description) = run(&mut scratch.kdind(&[
        "build",
        "--print-artifacts",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert_eq!(output.status.code(), Some(1), "{description}");
    assert!(text(&output.stderr).contains("verison"), "{description}");
}

#[test]
fn two_builds_at_once_share_one_download_and_then_run_offline() {
    let big = Reply::ok(payload("kubelet")).paced(2_000, Duration::from_millis(15));
    let server = TestServer::start(move |path, _| match path {
        "/a/kubelet" => big.clone(),
        path => match NAMES.iter().find(|name| path == format!("/a/{name}")) {
            Some(name) => Reply::ok(payload(name)),
            None => Reply::status(404),
        },
    });
    let scratch = Scratch::new();
    scratch.write_config(&pinned_config(&server.url("/a")));
    let config = scratch.config();
    let args = [
        "build",
        "--download-only",
        "--config",
        config.to_str().unwrap(),
    ];
    let spawn = || {
        scratch
            .kdind(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    for name in NAMES {
        assert_eq!(server.count(&format!("/a/{name}")), 1, "{name}");
    }
    assert_eq!(scratch.cached_entries().len(), 7);
    let partials = std::fs::read_dir(scratch.cache().join("partial")).unwrap();
    assert_eq!(partials.count(), 0, "no partial file is left behind");

    let (output, description) = scratch.download(&["--offline"]);
    assert!(output.status.success(), "{description}");
    assert!(
        text(&output.stderr).contains("cached     minikube"),
        "{description}"
    );
    assert_eq!(server.seen().len(), 7, "offline made no requests");
}

#[test]
fn an_offline_miss_lists_each_file_and_where_to_put_it() {
    let server = serve_payloads();
    let scratch = Scratch::new();
    scratch.write_config(&pinned_config(&server.url("/a")));
    let (output, description) = scratch.download(&["--offline"]);
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("7 of the artifacts block the build (7 of them are not in the cache"),
        "{stderr}"
    );
    for name in NAMES {
        let entry = scratch.cache().join("sha256").join(sha256(&payload(name)));
        assert!(
            stderr.contains(&format!("and put it at {}", entry.display())),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&server.url(&format!("/a/{name}"))),
            "{stderr}"
        );
    }
    assert!(server.seen().is_empty(), "offline made requests");
}

#[test]
fn the_mirror_serves_every_upstream_url_and_checksums_are_locked() {
    // Serves any path: the body is derived from the path, `<path>.sha256` is its hash.
    let server = TestServer::start(|path, _| match path.strip_suffix(".sha256") {
        Some(file) => Reply::ok(format!("{}\n", sha256(file.as_bytes()))),
        None => Reply::ok(path.as_bytes().to_vec()),
    });
    let scratch = Scratch::new();
    let mirror = server.url("/m");
    let mirrored = || {
        run(&mut scratch.kdind(&[
            "build",
            "--download-only",
            "--allow-unverified",
            "--mirror",
            &mirror,
        ]))
    };
    let (output, description) = mirrored();
    assert!(output.status.success(), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("warning: cri-dockerd 0.4.3") && stderr.contains("--allow-unverified"),
        "{stderr}"
    );
    let seen: Vec<String> = server.seen().into_iter().map(|seen| seen.path).collect();
    let arch = host_arch();
    for expected in [
        format!("/m/storage.googleapis.com/minikube/releases/v1.38.1/minikube-linux-{arch}"),
        format!("/m/storage.googleapis.com/minikube/releases/v1.38.1/minikube-linux-{arch}.sha256"),
        format!("/m/dl.k8s.io/release/v1.35.1/bin/linux/{arch}/kubelet.sha256"),
        format!("/m/github.com/Mirantis/cri-dockerd/releases/download/v0.4.3/cri-dockerd-0.4.3.{arch}.tgz"),
        format!("/m/github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-{arch}-v1.9.1.tgz"),
    ] {
        assert!(seen.contains(&expected), "{expected} not in {seen:#?}");
    }
    assert_eq!(seen.len(), 13, "7 files and 6 checksum files: {seen:#?}");
    // Without --config the lock lives in the cache; it holds the six published checksums.
    let lock = std::fs::read_to_string(scratch.cache().join("kdind.lock")).unwrap();
    assert_eq!(lock.matches("[[checksum]]").count(), 6, "{lock}");
    assert!(lock.contains(&format!(
        "url = \"https://dl.k8s.io/release/v1.35.1/bin/linux/{arch}/kubeadm\""
    )));

    // A second run reads the lock and the cache: nothing is requested.
    let (output, description) = mirrored();
    assert!(output.status.success(), "{description}");
    assert_eq!(server.seen().len(), 13, "{description}");
}

#[test]
fn files_without_a_checksum_are_refused_before_any_request() {
    let server = TestServer::start(|_, _| Reply::ok("x"));
    let scratch = Scratch::new();
    let (output, description) =
        run(&mut scratch.kdind(&["build", "--download-only", "--mirror", &server.url("/m")]));
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("refusing files with no checksum"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[artifacts.cri-dockerd] sha256"),
        "{stderr}"
    );
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

#[test]
fn file_urls_are_copied_into_the_cache() {
    let scratch = Scratch::new();
    let source = scratch.dir.path().join("source");
    std::fs::create_dir(&source).unwrap();
    for name in NAMES {
        std::fs::write(source.join(name), payload(name)).unwrap();
    }
    scratch.write_config(&pinned_config(&format!("file://{}", source.display())));
    let (output, description) = scratch.download(&[]);
    assert!(output.status.success(), "{description}");
    let listing = text(&output.stdout);
    assert_eq!(listing.lines().count(), 7, "{listing}");
    let first: Vec<&str> = listing.lines().next().unwrap().split('\t').collect();
    let minikube = sha256(&payload("minikube"));
    let entry = scratch.cache().join("sha256").join(&minikube);
    assert_eq!(
        first,
        [
            "minikube",
            "v1.38.1",
            minikube.as_str(),
            entry.to_str().unwrap()
        ]
    );
    let mut cached = scratch.cached_entries();
    cached.sort();
    let mut expected: Vec<String> = NAMES.iter().map(|name| sha256(&payload(name))).collect();
    expected.sort();
    assert_eq!(cached, expected);
}

#[test]
fn a_corrupted_cache_entry_is_discarded_and_fetched_again() {
    let server = serve_payloads();
    let scratch = Scratch::new();
    scratch.write_config(&pinned_config(&server.url("/a")));
    let (output, description) = scratch.download(&[]);
    assert!(output.status.success(), "{description}");
    let entry = scratch
        .cache()
        .join("sha256")
        .join(sha256(&payload("crictl")));
    corrupt(&entry);
    let (output, description) = scratch.download(&[]);
    assert!(output.status.success(), "{description}");
    assert!(
        text(&output.stderr).contains("the cached crictl v1.34.0"),
        "{description}"
    );
    assert_eq!(server.count("/a/crictl"), 2);
    assert_eq!(server.count("/a/minikube"), 1);
    assert_eq!(std::fs::read(&entry).unwrap(), payload("crictl"));
}

fn corrupt(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_checksum_mismatch_names_both_hashes_and_caches_nothing() {
    let server = serve_payloads();
    let scratch = Scratch::new();
    let wrong = sha256(b"something else");
    let config_text =
        pinned_config(&server.url("/a")).replace(&sha256(&payload("minikube")), &wrong);
    scratch.write_config(&config_text);
    let (output, description) = scratch.download(&[]);
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("checksum mismatch for minikube"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("expected sha256 {wrong}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("computed sha256 {}", sha256(&payload("minikube")))),
        "{stderr}"
    );
    assert!(!scratch.cached_entries().contains(&wrong));
    assert!(!scratch
        .cached_entries()
        .contains(&sha256(&payload("minikube"))));
    let partial = scratch.cache().join("partial").join(&wrong);
    assert!(
        !partial.exists(),
        "the bad download was left at {partial:?}"
    );
}

#[test]
fn a_missing_file_names_its_url() {
    let server = serve_payloads();
    let scratch = Scratch::new();
    let config_text = pinned_config(&server.url("/a")).replace("/a/kubectl", "/a/nope");
    scratch.write_config(&config_text);
    let (output, description) = scratch.download(&[]);
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{} was not found (HTTP 404)",
            server.url("/a/nope")
        )),
        "{stderr}"
    );
    assert_eq!(server.count("/a/nope"), 1, "a 404 is not retried");
}
