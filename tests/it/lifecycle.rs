//! `kdind up`, `kubeconfig`, `env`, `logs` and `down` against a real engine, with node
//! images made of stand-ins (the stand-in minikube and kubectl; real Debian packages,
//! systemctl replacement, dockerd and entrypoint). No Kubernetes runs here: these tests
//! check the lifecycle around it: ports, kubeconfigs, TLS to the inner docker, the
//! sibling network, the wait, and clean-up.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    engine_objects_lock, exports, kdind, run, standin_image, text, unique, value, Docker, Standins,
    User,
};

/// Objects on the engine labelled with this cluster's name.
fn leftovers(docker: &Docker, name: &str) -> String {
    let filter = format!("label=dev.kdind.cluster={name}");
    let containers = docker.cli(&["ps", "-a", "-q", "--filter", &filter]);
    let volumes = docker.cli(&["volume", "ls", "-q", "--filter", &filter]);
    format!("{}{}", text(&containers.stdout), text(&volumes.stdout))
}

fn inspect(docker: &Docker, container: &str, format: &str) -> String {
    let output = docker.cli(&["inspect", "--format", format, container]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).trim().to_owned()
}

const OTHER_CONTEXTS: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: 'https://one.example:6443'}
- name: two
  cluster: {server: 'https://two.example:6443'}
- name: three
  cluster: {server: 'https://three.example:6443'}
contexts:
- name: one
  context: {cluster: one, user: someone}
- name: two
  context: {cluster: two, user: someone}
- name: three
  context: {cluster: three, user: someone}
current-context: two
users:
- name: someone
  user: {token: kept-secret}
";

#[test]
fn engine_up_builds_publishes_on_loopback_merges_the_kubeconfig_and_down_removes_only_ours() {
    let test =
        "engine_up_builds_publishes_on_loopback_merges_the_kubeconfig_and_down_removes_only_ours";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let _lock = engine_objects_lock();
    let user = User::new();
    std::fs::create_dir_all(user.kubeconfig().parent().unwrap()).unwrap();
    std::fs::write(user.kubeconfig(), OTHER_CONTEXTS).unwrap();
    let name = unique("up");
    // No --image: up makes the image from the configuration (built, or found by its tag).
    let standins = Standins::new();
    let config = standins.config(
        "kdind.toml",
        &format!("base_image = \"{}\"", docker.base_image),
        "",
    );
    let mut command = user.kdind(&[
        "up",
        "--name",
        &name,
        "-o",
        "json",
        "--config",
        config.to_str().unwrap(),
        "--mirror",
        &standins.mirror(),
    ]);
    let (output, description) = run(&mut command);
    assert!(output.status.success(), "{description}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let container = format!("kdind-{name}");
    assert_eq!(report["container"], container.as_str());
    assert_eq!(report["context"], container.as_str());

    // A Ready node comes back after an engine restart (and only then gets that policy).
    assert_eq!(
        inspect(&docker, &container, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );

    // Every published port is on 127.0.0.1, and they are the ones the report names.
    let bindings = inspect(
        &docker,
        &container,
        "{{range $port, $b := .HostConfig.PortBindings}}{{$port}}={{(index $b 0).HostIp}}:{{(index $b 0).HostPort}} {{end}}",
    );
    let bindings: Vec<&str> = bindings.split_whitespace().collect();
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    assert!(
        bindings.iter().all(|b| b.contains("=127.0.0.1:")),
        "{bindings:?}"
    );
    let api_port = report["api_server"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        bindings.contains(&format!("8443/tcp=127.0.0.1:{api_port}").as_str()),
        "{bindings:?}"
    );

    // The kubeconfig: mode 0600, read by the real kubectl, the three other contexts kept.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(user.kubeconfig())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let contexts = user.kubectl(&["config", "get-contexts", "-o", "name"]);
    assert!(contexts.status.success(), "{}", text(&contexts.stderr));
    let mut names: Vec<String> = text(&contexts.stdout).lines().map(str::to_owned).collect();
    names.sort();
    let mut expected = vec![
        container.clone(),
        "one".into(),
        "three".into(),
        "two".into(),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let current = user.kubectl(&["config", "current-context"]);
    assert_eq!(text(&current.stdout).trim(), container);
    let view = user.kubectl(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    assert_eq!(text(&view.stdout), format!("https://127.0.0.1:{api_port}"));

    // list sees it.
    let (listed, description) = run(&mut user.kdind(&["list", "-o", "json"]));
    assert!(listed.status.success(), "{description}");
    assert!(
        text(&listed.stdout).contains(&format!("\"name\": \"{name}\"")),
        "{description}"
    );

    // down removes the node, its volume and our context, nothing else; twice is fine.
    let (output, description) = user.down(&name);
    assert!(output.status.success(), "{description}");
    assert_eq!(leftovers(&docker, &name), "", "{description}");
    let contexts = user.kubectl(&["config", "get-contexts", "-o", "name"]);
    let mut names: Vec<String> = text(&contexts.stdout).lines().map(str::to_owned).collect();
    names.sort();
    assert_eq!(names, ["one", "three", "two"]);
    assert!(std::fs::read_to_string(user.kubeconfig())
        .unwrap()
        .contains("kept-secret"));
    let (output, description) = user.down(&name);
    assert!(output.status.success(), "{description}");
    assert!(
        text(&output.stderr).contains("nothing to remove"),
        "{description}"
    );
}

/// The `export` lines of `kdind env`, as pairs.
#[test]
fn engine_inner_docker_answers_over_tls_builds_into_the_node_and_refuses_clients_without_certificates(
) {
    let test = "engine_inner_docker_answers_over_tls_builds_into_the_node_and_refuses_clients_without_certificates";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();
    let user = User::new();
    let name = unique("tls");
    let (output, description) = user.up(&name, &image, &[]);
    assert!(output.status.success(), "{description}");
    let (env, description) = run(&mut user.kdind(&["env", "--name", &name]));
    assert!(env.status.success(), "{description}");
    let pairs = exports(&env.stdout);
    let cert_path = value(&pairs, "DOCKER_CERT_PATH").to_owned();
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(Path::new(&cert_path).join("key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    let inner = |args: &[&str]| {
        Command::new("docker")
            .envs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .output()
            .unwrap()
    };
    let info = inner(&["info", "--format", "{{.Name}}"]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    assert_eq!(text(&info.stdout).trim(), format!("kdind-{name}"));

    // kdind itself speaks to a TLS engine the same way (DOCKER_HOST, DOCKER_TLS_VERIFY,
    // DOCKER_CERT_PATH): the node's docker has no kdind clusters of its own.
    let (listed, description) = run(kdind()
        .envs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["list", "-o", "json"]));
    assert!(listed.status.success(), "{description}");
    assert_eq!(text(&listed.stdout).trim(), "[]", "{description}");

    // docker build over TLS lands in the node's own docker.
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("hello"), "built into the cluster\n").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY hello /hello\n",
    )
    .unwrap();
    let tag = "kdind-test/built-inside:1";
    let build = inner(&["build", "-q", "-t", tag, context.path().to_str().unwrap()]);
    assert!(build.status.success(), "{}", text(&build.stderr));
    let seen = docker.cli(&[
        "exec",
        &format!("kdind-{name}"),
        "docker",
        "image",
        "inspect",
        tag,
    ]);
    assert!(
        seen.status.success(),
        "the node's docker does not have {tag}: {}",
        text(&seen.stderr)
    );
    assert!(
        docker.cli(&["image", "inspect", tag]).status.code() != Some(0),
        "not on the host"
    );

    // The node's docker runs containers of its own (cgroups prepared by the entrypoint):
    // load the base image over TLS and run it there.
    let saved = docker.cli(&[
        "save",
        "-o",
        user.home.path().join("base.tar").to_str().unwrap(),
        &docker.base_image,
    ]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    let loaded = inner(&[
        "load",
        "-q",
        "-i",
        user.home.path().join("base.tar").to_str().unwrap(),
    ]);
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    let nested = inner(&[
        "run",
        "--rm",
        &docker.base_image,
        "echo",
        "a container inside the node",
    ]);
    assert!(
        nested.status.success(),
        "nested container: {}",
        text(&nested.stderr)
    );
    assert_eq!(text(&nested.stdout), "a container inside the node\n");

    // Without a client certificate the TLS port refuses, with TLS or without.
    let host = value(&pairs, "DOCKER_HOST").to_owned();
    let no_cert = Command::new("docker")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .args([
            "--tlsverify",
            "--tlscacert",
            &format!("{cert_path}/ca.pem"),
            "-H",
            &host,
            "version",
        ])
        .output()
        .unwrap();
    assert!(
        !no_cert.status.success(),
        "a client without certificate was served"
    );
    let plain = Command::new("docker")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .args(["-H", &host, "version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    assert!(
        !plain.status.success() || text(&plain.stdout).trim().is_empty(),
        "plain TCP was served: {}",
        text(&plain.stdout)
    );

    // A sibling container on the kdind network reaches the inner docker by the node's name
    // (the server certificate covers it) and resolves the --internal API address.
    let (internal, description) = run(&mut user.kdind(&["env", "--internal", "--name", &name]));
    assert!(internal.status.success(), "{description}");
    let internal_pairs = exports(&internal.stdout);
    assert_eq!(
        value(&internal_pairs, "DOCKER_HOST"),
        format!("tcp://kdind-{name}:2376")
    );
    let (kubeconfig, description) =
        run(&mut user.kdind(&["kubeconfig", "--internal", "--name", &name]));
    assert!(kubeconfig.status.success(), "{description}");
    assert!(
        text(&kubeconfig.stdout).contains(&format!("server: https://kdind-{name}:8443")),
        "{description}"
    );
    let sibling = docker.cli(&[
        "run",
        "--rm",
        "--network",
        "kdind",
        "-v",
        &format!("{}:/certs:ro", value(&internal_pairs, "DOCKER_CERT_PATH")),
        "-e",
        &format!("DOCKER_HOST={}", value(&internal_pairs, "DOCKER_HOST")),
        "-e",
        "DOCKER_TLS_VERIFY=1",
        "-e",
        "DOCKER_CERT_PATH=/certs",
        "--entrypoint",
        "bash",
        &image,
        "-c",
        &format!("getent hosts kdind-{name} >/dev/null && docker info --format '{{{{.Name}}}}'"),
    ]);
    assert!(
        sibling.status.success(),
        "sibling: {}",
        text(&sibling.stderr)
    );
    assert_eq!(text(&sibling.stdout).trim(), format!("kdind-{name}"));

    // Logs for bug reports.
    let logs_dir = user.home.path().join("logs");
    let (logs, description) =
        run(&mut user.kdind(&["logs", "--name", &name, logs_dir.to_str().unwrap()]));
    assert!(logs.status.success(), "{description}");
    let entrypoint = std::fs::read_to_string(logs_dir.join("entrypoint.log")).unwrap();
    assert!(entrypoint.contains("kdind-phase: ready"), "{entrypoint}");
    assert!(logs_dir.join("docker.log").exists());
    assert!(logs_dir.join("minikube.log").exists());

    let (output, description) = user.down(&name);
    assert!(output.status.success(), "{description}");
    assert_eq!(leftovers(&docker, &name), "");
    assert!(
        !Path::new(&cert_path).exists(),
        "down removes the copied certificates"
    );
}

#[test]
fn engine_a_failing_minikube_fails_up_at_once_with_the_log_tail_and_leaves_nothing() {
    let test = "engine_a_failing_minikube_fails_up_at_once_with_the_log_tail_and_leaves_nothing";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "fail");
    let _lock = engine_objects_lock();
    let user = User::new();
    let name = unique("fail");
    let started = Instant::now();
    let (output, description) = user.up(&name, &image, &[]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the node failed at stage `minikube`"),
        "{description}"
    );
    assert!(
        stderr.contains("failing on purpose"),
        "the log tail is shown: {description}"
    );
    assert!(stderr.contains("exited with code 1"), "{description}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(leftovers(&docker, &name), "", "{description}");
    assert!(
        !user.kubeconfig().exists()
            || !std::fs::read_to_string(user.kubeconfig())
                .unwrap()
                .contains(&name),
        "no kubeconfig entry for a failed cluster"
    );

    // --retain keeps the failed node for inspection; down removes it.
    let (output, description) = user.up(&name, &image, &["--retain"]);
    assert_eq!(output.status.code(), Some(1), "{description}");
    assert!(
        text(&output.stderr).contains("kept the failed node"),
        "{description}"
    );
    assert_ne!(leftovers(&docker, &name), "", "{description}");
    // It stays down to be inspected: no restart policy brings it back into a loop.
    let container = format!("kdind-{name}");
    assert_eq!(
        inspect(
            &docker,
            &container,
            "{{.HostConfig.RestartPolicy.Name}} {{.State.Running}}"
        ),
        "no false"
    );
    let (output, description) = user.down(&name);
    assert!(output.status.success(), "{description}");
    assert_eq!(leftovers(&docker, &name), "");
}

#[test]
fn engine_a_hanging_minikube_makes_up_time_out_naming_the_stage() {
    let test = "engine_a_hanging_minikube_makes_up_time_out_naming_the_stage";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "hang");
    let _lock = engine_objects_lock();
    let user = User::new();
    let name = unique("hang");
    let (output, description) = user.up(&name, &image, &["--wait", "20s"]);
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("not Ready within 20s"), "{description}");
    assert!(
        stderr.contains("stuck in stage `minikube`"),
        "{description}"
    );
    assert!(stderr.contains("hanging on purpose"), "{description}");
    assert_eq!(leftovers(&docker, &name), "", "{description}");
}

#[test]
fn engine_ctrl_c_during_up_exits_130_and_leaves_nothing() {
    let test = "engine_ctrl_c_during_up_exits_130_and_leaves_nothing";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "hang");
    let _lock = engine_objects_lock();
    let user = User::new();
    let name = unique("int");
    let child = user
        .kdind(&["up", "--name", &name, "--image", &image])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let filter = format!("label=dev.kdind.cluster={name}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = docker.cli(&["ps", "-q", "--filter", &filter]);
        if !text(&running.stdout).trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the node never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("interrupted"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(leftovers(&docker, &name), "");
}

#[test]
fn engine_two_clusters_run_at_once_and_down_all_removes_both() {
    let test = "engine_two_clusters_run_at_once_and_down_all_removes_both";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();
    let user = User::new();
    let first = unique("two-a");
    let second = unique("two-b");
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| user.up(&first, &image, &[]));
        let b = scope.spawn(|| user.up(&second, &image, &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.0.status.success(), "{}", a.1);
    assert!(b.0.status.success(), "{}", b.1);
    for name in [&first, &second] {
        let state = inspect(&docker, &format!("kdind-{name}"), "{{.State.Running}}");
        assert_eq!(state, "true");
    }
    let contexts = user.kubectl(&["config", "get-contexts", "-o", "name"]);
    let contexts = text(&contexts.stdout);
    assert!(
        contexts.contains(&format!("kdind-{first}"))
            && contexts.contains(&format!("kdind-{second}")),
        "{contexts}"
    );
    let (output, description) = run(&mut user.kdind(&["down", "--all"]));
    assert!(output.status.success(), "{description}");
    assert_eq!(leftovers(&docker, &first), "");
    assert_eq!(leftovers(&docker, &second), "");
    let network = docker.cli(&["network", "ls", "-q", "--filter", "name=^kdind$"]);
    assert_eq!(
        text(&network.stdout),
        "",
        "the network goes with the last node"
    );
}

#[test]
fn engine_up_leaves_a_volume_it_did_not_create_alone_and_racing_ups_leave_nothing() {
    let test = "engine_up_leaves_a_volume_it_did_not_create_alone_and_racing_ups_leave_nothing";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let failing = standin_image(&docker, "fail");
    let healthy = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();
    let user = User::new();

    // A volume of the node's name that the user made, holding a file.
    let name = unique("vol");
    let volume = format!("kdind-{name}-docker");
    assert!(docker.cli(&["volume", "create", &volume]).status.success());
    let mount = format!("{volume}:/data");
    let write = docker.cli(&[
        "run",
        "--rm",
        "-v",
        &mount,
        &docker.base_image,
        "sh",
        "-c",
        "echo kept >/data/file",
    ]);
    assert!(write.status.success(), "{}", text(&write.stderr));
    let (output, description) = user.up(&name, &failing, &[]);
    assert_eq!(output.status.code(), Some(1), "{description}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("a volume named {volume} already exists"))
            && stderr.contains(&format!("docker volume rm {volume}")),
        "{description}"
    );
    let read = docker.cli(&[
        "run",
        "--rm",
        "-v",
        &mount,
        &docker.base_image,
        "cat",
        "/data/file",
    ]);
    assert_eq!(
        text(&read.stdout),
        "kept\n",
        "the volume and its file survive"
    );
    let node = format!("name=^kdind-{name}$");
    let containers = docker.cli(&["ps", "-a", "-q", "--filter", &node]);
    assert_eq!(text(&containers.stdout), "", "no node was created");
    assert!(docker.cli(&["volume", "rm", &volume]).status.success());

    // Two `up` of one name at once: one claims the name, the other fails without touching
    // what the first made; `down` then leaves nothing, labelled or not. The shared network is
    // there first (as kdind labels it), so that only the name is raced for.
    let network = docker.cli(&["network", "inspect", "kdind"]);
    if !network.status.success() {
        let created = docker.cli(&[
            "network",
            "create",
            "--label",
            "dev.kdind.role=network",
            "kdind",
        ]);
        assert!(created.status.success(), "{}", text(&created.stderr));
    }
    let name = unique("race");
    let volume = format!("kdind-{name}-docker");
    let racers: Vec<_> = (0..2)
        .map(|_| {
            user.kdind(&["up", "--name", &name, "--image", &healthy])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start kdind up")
        })
        .collect();
    let outputs: Vec<Output> = racers
        .into_iter()
        .map(|child| child.wait_with_output().expect("wait for kdind up"))
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|output| output.status.code()).collect();
    let described: Vec<String> = outputs.iter().map(|output| text(&output.stderr)).collect();
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "exactly one wins: {codes:?}\n{described:#?}"
    );
    let (output, description) = user.down(&name);
    assert!(output.status.success(), "{description}");
    assert_eq!(leftovers(&docker, &name), "", "{description}");
    let by_name = format!("name={volume}");
    let volumes = docker.cli(&["volume", "ls", "-q", "--filter", &by_name]);
    assert_eq!(
        text(&volumes.stdout),
        "",
        "no unlabelled volume is left either"
    );
}

#[test]
fn engine_minikube_args_from_the_config_reach_minikube_start() {
    let test = "engine_minikube_args_from_the_config_reach_minikube_start";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();
    let user = User::new();
    let name = unique("args");
    let config = user.home.path().join("kdind.toml");
    std::fs::write(
        &config,
        "[minikube]\nargs = [\"--extra-config=kubelet.max-pods=50\", \"--v=2\"]\n",
    )
    .unwrap();
    let (output, description) = user.up(&name, &image, &["--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{description}");
    let logs = docker.cli(&["logs", &format!("kdind-{name}")]);
    let logs = format!("{}{}", text(&logs.stdout), text(&logs.stderr));
    let (output, down) = user.down(&name);
    assert!(output.status.success(), "{down}");
    assert!(
        logs.contains("--interactive=false --extra-config=kubelet.max-pods=50 --v=2"),
        "the stand-in minikube was started with kdind's arguments and then the config's:\n{logs}"
    );
}

/// A tiny image on the outer engine: one file, imported.
fn tiny_image(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), tag).unwrap();
    let imported = Command::new("sh")
        .current_dir(dir.path())
        .args(["-c", &format!("tar -c hello | docker import - {tag}")])
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", text(&imported.stderr));
}

#[test]
fn engine_load_streams_images_and_archives_into_the_node_and_refuses_missing_ones() {
    let test = "engine_load_streams_images_and_archives_into_the_node_and_refuses_missing_ones";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();
    let user = User::new();
    let name = unique("load");
    let first = format!("kdind-test/load-a:{name}");
    let second = format!("kdind-test/load-b:{name}");
    tiny_image(&first);
    tiny_image(&second);
    let (output, description) = user.up(&name, &image, &[]);
    assert!(output.status.success(), "{description}");
    let node = format!("kdind-{name}");
    let inside = |reference: &str| {
        docker
            .cli(&["exec", &node, "docker", "image", "inspect", reference])
            .status
            .success()
    };

    // A missing image: named, and nothing is loaded (not even the one that exists).
    let (output, description) =
        run(&mut user.kdind(&["load", "--name", &name, &second, "kdind-test/no-such:1"]));
    assert_eq!(output.status.code(), Some(1), "{description}");
    assert!(
        text(&output.stderr).contains("has no kdind-test/no-such:1; nothing was loaded"),
        "{description}"
    );
    assert!(!inside(&second), "nothing was half-loaded");

    // From the engine.
    let (output, description) = run(&mut user.kdind(&["load", "--name", &name, &first]));
    assert!(output.status.success(), "{description}");
    assert_eq!(text(&output.stdout), format!("{first}\n"), "{description}");
    assert!(inside(&first), "{description}");

    // From a `docker save` archive.
    let archive = user.home.path().join("images.tar");
    let saved = docker.cli(&["save", "-o", archive.to_str().unwrap(), &second]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    let (output, description) = run(&mut user.kdind(&[
        "load",
        "--name",
        &name,
        "--archive",
        archive.to_str().unwrap(),
    ]));
    assert!(output.status.success(), "{description}");
    assert!(inside(&second), "{description}");

    let (output, description) = user.down(&name);
    assert!(output.status.success(), "{description}");
    let _ = docker.cli(&["rmi", &first, &second]);
}

#[test]
fn engine_stop_keeps_the_cluster_and_start_brings_it_back_ready_on_the_same_ports() {
    let test = "engine_stop_keeps_the_cluster_and_start_brings_it_back_ready_on_the_same_ports";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();
    let user = User::new();
    let name = unique("stop");
    let container = format!("kdind-{name}");
    let (output, description) = user.up(&name, &image, &["--wait", "2m"]);
    assert!(output.status.success(), "{description}");
    let ports = |docker: &Docker| inspect(docker, &container, "{{json .HostConfig.PortBindings}}");
    let ports_before = ports(&docker);

    let (output, description) = run(&mut user.kdind(&["stop", "--name", &name]));
    assert!(output.status.success(), "{description}");
    assert_eq!(inspect(&docker, &container, "{{.State.Status}}"), "exited");
    let (listed, _) = run(&mut user.kdind(&["list", "-o", "json"]));
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == name.as_str())
        .expect("a stopped cluster is listed");
    assert_eq!(row["state"], "exited");
    assert!(docker
        .cli(&["volume", "inspect", &format!("{container}-docker")])
        .status
        .success());
    let (output, description) = run(&mut user.kdind(&["stop", "--name", &name]));
    assert!(output.status.success(), "{description}");
    assert!(
        text(&output.stderr).contains("is not running"),
        "{description}"
    );

    let (output, description) = run(&mut user.kdind(&["start", "--name", &name]));
    assert!(output.status.success(), "{description}");
    let said = text(&output.stderr);
    assert!(said.contains("node: ready"), "{description}");
    assert!(said.contains("is ready again"), "{description}");
    assert_eq!(inspect(&docker, &container, "{{.State.Status}}"), "running");
    assert_eq!(ports(&docker), ports_before);
    let (output, description) = run(&mut user.kdind(&["start", "--name", &name]));
    assert!(output.status.success(), "{description}");
    assert!(
        text(&output.stderr).contains("already running"),
        "{description}"
    );

    let (output, description) = user.down(&name);
    assert!(output.status.success(), "{description}");
    assert_eq!(leftovers(&docker, &name), "");
}
