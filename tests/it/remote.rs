//! A remote engine: a kdind node's own TLS docker, reached from this machine on the node's
//! address on the `kdind` network (not loopback), as GitLab's docker:dind service or a
//! build host is. `up` against it publishes where this machine reaches, and what kdind
//! writes (kubeconfig, `kdind env`) reaches the cluster with TLS verification on. It is
//! reached once through DOCKER_HOST and once through a Docker context.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    engine_objects_lock, exports, run, standin_image, text, unique, value, Docker, User,
};

/// The docker CLI with the given engine environment.
fn docker_with(pairs: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .env_remove("DOCKER_HOST")
        .envs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .output()
        .unwrap()
}

/// A Docker CLI configuration directory with one context, `name`, for `host` and the TLS
/// files in `certs`, laid out as `docker context create` does.
fn context_store(dir: &Path, name: &str, host: &str, certs: &Path) {
    use sha2::Digest;
    let id: String = sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let meta = dir.join("contexts/meta").join(&id);
    std::fs::create_dir_all(&meta).unwrap();
    let document = serde_json::json!({
        "Name": name,
        "Metadata": {},
        "Endpoints": { "docker": { "Host": host, "SkipTLSVerify": false } },
    });
    std::fs::write(meta.join("meta.json"), document.to_string()).unwrap();
    let tls = dir.join("contexts/tls").join(&id).join("docker");
    std::fs::create_dir_all(&tls).unwrap();
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(certs.join(file), tls.join(file)).unwrap();
    }
    std::fs::write(dir.join("config.json"), r#"{"auths":{}}"#).unwrap();
}

#[test]
fn engine_up_against_a_remote_engine_writes_a_kubeconfig_and_env_that_reach_it_with_tls() {
    let test =
        "engine_up_against_a_remote_engine_writes_a_kubeconfig_and_env_that_reach_it_with_tls";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();

    // The remote engine: node A's docker, on A's address on the kdind network.
    let local = User::new();
    let outer = unique("remote-engine");
    let (output, description) = run(&mut local.kdind(&["up", "--name", &outer, "--image", &image]));
    assert!(output.status.success(), "{description}");
    let address = text(
        &docker
            .cli(&[
                "inspect",
                "--format",
                "{{(index .NetworkSettings.Networks \"kdind\").IPAddress}}",
                &format!("kdind-{outer}"),
            ])
            .stdout,
    )
    .trim()
    .to_owned();
    assert!(!address.is_empty() && !address.starts_with("127."));
    let (env, description) = run(&mut local.kdind(&["env", "--name", &outer]));
    assert!(env.status.success(), "{description}");
    let certs = PathBuf::from(value(&exports(&env.stdout), "DOCKER_CERT_PATH"));
    let remote_host = format!("tcp://{address}:2376");
    let (loaded, description) = run(&mut local.kdind(&["load", "--name", &outer, &image]));
    assert!(loaded.status.success(), "{description}");

    // `up` through a Docker context that names the remote engine.
    let contexts = tempfile::tempdir().unwrap();
    context_store(contexts.path(), "node-a", &remote_host, &certs);
    let through_context = User::with_engine(&[
        ("DOCKER_CONFIG", contexts.path().to_str().unwrap()),
        ("DOCKER_CONTEXT", "node-a"),
    ]);
    let inner = unique("remote");
    let (output, description) =
        run(&mut through_context.kdind(&["up", "--name", &inner, "--image", &image, "-o", "json"]));
    assert!(output.status.success(), "{description}");
    assert!(
        text(&output.stderr).contains(&format!("the engine is on {address}, not this machine")),
        "{description}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let api_server = report["api_server"].as_str().unwrap();
    assert!(
        api_server.starts_with(&format!("https://{address}:")),
        "{description}"
    );
    let kubeconfig = std::fs::read_to_string(through_context.kubeconfig()).unwrap();
    assert!(
        kubeconfig.contains(&format!("server: {api_server}")),
        "{kubeconfig}"
    );

    // The same engine through DOCKER_HOST: env, list, kubeconfig, logs, down.
    let through_host = User::with_engine(&[
        ("DOCKER_HOST", remote_host.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", certs.to_str().unwrap()),
    ]);
    let (env, description) = run(&mut through_host.kdind(&["env", "--name", &inner]));
    assert!(env.status.success(), "{description}");
    let pairs = exports(&env.stdout);
    assert!(
        value(&pairs, "DOCKER_HOST").starts_with(&format!("tcp://{address}:")),
        "{description}"
    );
    // TLS verified against the inner docker's certificate, which names the address.
    let info = docker_with(&pairs, &["info", "--format", "{{.Name}}"]);
    assert_eq!(
        text(&info.stdout).trim(),
        format!("kdind-{inner}"),
        "{}",
        text(&info.stderr)
    );
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("file"), "remote").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY file /file\n",
    )
    .unwrap();
    let mut build_env = pairs.clone();
    build_env.push(("DOCKER_BUILDKIT".to_owned(), "0".to_owned()));
    let built = docker_with(
        &build_env,
        &[
            "build",
            "-q",
            "-t",
            "kdind-test/remote-built:1",
            context.path().to_str().unwrap(),
        ],
    );
    assert!(built.status.success(), "{}", text(&built.stderr));
    let present = docker_with(&pairs, &["image", "inspect", "kdind-test/remote-built:1"]);
    assert!(
        present.status.success(),
        "the image is not in the remote node's docker"
    );

    let (listed, description) = run(&mut through_host.kdind(&["list", "-o", "json"]));
    assert!(listed.status.success(), "{description}");
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows[0]["name"], inner.as_str(), "{description}");
    assert_eq!(rows[0]["api_endpoint"], api_server, "{description}");
    let (printed, description) = run(&mut through_host.kdind(&["kubeconfig", "--name", &inner]));
    assert!(
        text(&printed.stdout).contains(&format!("server: {api_server}")),
        "{description}"
    );
    let logs = tempfile::tempdir().unwrap();
    let (collected, description) =
        run(&mut through_host.kdind(&["logs", "--name", &inner, logs.path().to_str().unwrap()]));
    assert!(collected.status.success(), "{description}");
    assert!(logs.path().join("entrypoint.log").is_file());

    let (down, description) = run(&mut through_host.kdind(&["down", "--name", &inner]));
    assert!(down.status.success(), "{description}");
    let engine_env: Vec<(String, String)> = through_host.engine().to_vec();
    for listing in [
        vec!["ps", "-aq", "--filter", "label=dev.kdind.cluster"],
        vec!["volume", "ls", "-q", "--filter", "label=dev.kdind.cluster"],
        vec!["network", "ls", "-q", "--filter", "name=^kdind$"],
    ] {
        let left = docker_with(&engine_env, &listing);
        assert!(left.status.success(), "{}", text(&left.stderr));
        assert!(
            text(&left.stdout).trim().is_empty(),
            "left on the remote engine ({listing:?}): {}",
            text(&left.stdout)
        );
    }

    // The GitLab recipe's job steps, with node A in the docker:dind service's place.
    let gitlab = |step: &[&str]| {
        let mut command = Command::new("bash");
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/gitlab/job.sh"))
            .args(step)
            .current_dir(through_host.home.path())
            .env("KDIND", env!("CARGO_BIN_EXE_kdind"))
            .env("KDIND_NAME", &inner)
            .env("HOME", through_host.home.path())
            .env("XDG_CONFIG_HOME", through_host.home.path().join("config"))
            .env(
                "KUBECONFIG",
                through_host.home.path().join("job/kubeconfig"),
            )
            .env("NO_COLOR", "1")
            .envs(
                through_host
                    .engine()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        run(&mut command)
    };
    let (output, description) = gitlab(&["up", "--image", &image]);
    assert!(output.status.success(), "{description}");
    let job_kubeconfig =
        std::fs::read_to_string(through_host.home.path().join("job/kubeconfig")).unwrap();
    assert!(
        job_kubeconfig.contains(&format!("server: https://{address}:")),
        "{job_kubeconfig}"
    );
    let (output, description) = gitlab(&["down"]);
    assert!(output.status.success(), "{description}");

    let (down, description) = run(&mut local.kdind(&["down", "--name", &outer]));
    assert!(down.status.success(), "{description}");
    let left = docker.cli(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=dev.kdind.cluster={outer}"),
    ]);
    assert!(text(&left.stdout).trim().is_empty());
}
