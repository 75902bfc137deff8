//! kdind-systemctl against real processes on the host, under a temporary `--root`.
//!
//! The services are small shell and Python programs written by the tests; the unit files
//! are shaped like the real docker, cri-docker and kubelet units minikube drives.

use std::fs;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

const SYSTEMCTL: &str = env!("CARGO_BIN_EXE_systemctl");

/// A temporary root with unit files, and the systemctl that manages it.
struct Node {
    root: PathBuf,
}

impl Node {
    fn new() -> Node {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        // Short: socket paths must fit in 108 bytes.
        let root = PathBuf::from(format!(
            "/tmp/ks-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Node { root }
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn write(&self, absolute: &str, text: &str) {
        let path = self.path(absolute);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Write an executable script into the root and return its real path.
    fn script(&self, name: &str, text: &str) -> String {
        let path = self.path(&format!("/bin/{name}"));
        self.write(&format!("/bin/{name}"), text);
        let mut permissions = fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        fs::set_permissions(&path, permissions).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(SYSTEMCTL);
        command.arg("--root").arg(&self.root).args(args);
        command
    }

    fn systemctl(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn code(&self, args: &[&str]) -> i32 {
        let output = self.systemctl(args);
        output.status.code().unwrap_or(-1)
    }

    /// Assert an exit code and return stdout, with everything in the failure message.
    fn expect(&self, args: &[&str], code: i32) -> String {
        let output = self.systemctl(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "systemctl {args:?}\nstdout: {stdout}\nstderr: {stderr}\nlogs:\n{}",
            self.logs()
        );
        stdout
    }

    fn stderr(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.systemctl(args).stderr).into_owned()
    }

    fn main_pid(&self, unit: &str) -> i32 {
        self.expect(&["show", unit, "-p", "MainPID", "--value"], 0)
            .trim()
            .parse()
            .unwrap()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nlogs:\n{}",
                self.logs()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// The same binary run under the name `journalctl`, through a link, with this root.
    fn journalctl(&self, args: &[&str]) -> String {
        let link = self.path("/usr/local/bin/journalctl");
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        if !link.exists() {
            std::os::unix::fs::symlink(SYSTEMCTL, &link).unwrap();
        }
        let output = Command::new(&link)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "journalctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for entry in fs::read_dir(self.path("/var/log/kdind"))
            .into_iter()
            .flatten()
            .flatten()
        {
            text.push_str(&format!(
                "== {}\n{}",
                entry.path().display(),
                fs::read_to_string(entry.path()).unwrap_or_default()
            ));
        }
        text
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Stop whatever the test left running, then remove the root.
        for entry in fs::read_dir(self.path("/run/kdind-systemctl/units"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Some(unit) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_suffix(".state"))
            {
                let _ = self.systemctl(&["stop", unit]);
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
            state != 'Z'
        })
        .unwrap_or(false)
}

/// A Python service that reports READY=1 over NOTIFY_SOCKET and, when handed a socket
/// through socket activation, greets every connection on it.
const NOTIFY_AND_SERVE: &str = r#"#!/usr/bin/python3
import os, socket, sys
name = sys.argv[1]
fds = int(os.environ.get("LISTEN_FDS", "0"))
if fds:
    assert os.environ["LISTEN_PID"] == str(os.getpid()), "LISTEN_PID is not my pid"
    listener = socket.socket(fileno=3)
def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
stray = [(fd, os.readlink(f"/proc/self/fd/{fd}")) for fd in range(3 + fds, 256) if is_open(fd)]
notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ready.sendto(b"STATUS=starting\nREADY=1", notify)
print(f"{name} ready fds={fds} names={os.environ.get('LISTEN_FDNAMES', '')} stray={stray}", flush=True)
if fds:
    while True:
        connection, _ = listener.accept()
        connection.sendall(f"hello from {name} on fd 3\n".encode())
        connection.close()
else:
    import time
    while True:
        time.sleep(60)
"#;

fn connect_and_read(path: &Path) -> String {
    let mut stream = UnixStream::connect(path)
        .unwrap_or_else(|error| panic!("connect {}: {error}", path.display()));
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

fn minikube_like_units(node: &Node) -> String {
    let daemon = node.script("fake-daemon", NOTIFY_AND_SERVE);
    node.write("/etc/default/docker", "DOCKER_OPTS=\"docker-daemon\"\n");
    // Debian's docker.io units, in shape.
    node.write(
        "/lib/systemd/system/docker.service",
        &format!(
            "[Unit]\nDescription=Docker Application Container Engine\nAfter=network-online.target docker.socket containerd.service\n\
             Wants=network-online.target containerd.service\nRequires=docker.socket\n\n[Service]\nType=notify\n\
             EnvironmentFile=-/etc/default/docker\nExecStart={daemon} $DOCKER_OPTS -H fd:// --containerd=/run/containerd/containerd.sock\n\
             ExecReload=/bin/kill -s HUP $MAINPID\nTimeoutStartSec=10\nRestart=on-failure\nKillMode=process\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    node.write(
        "/lib/systemd/system/docker.socket",
        "[Unit]\nDescription=Docker Socket for the API\n\n[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\nSocketUser=root\nSocketGroup=docker\n\n[Install]\nWantedBy=sockets.target\n",
    );
    // cri-dockerd's units, in shape, with minikube's 10-cni.conf drop-in.
    node.write(
        "/lib/systemd/system/cri-docker.service",
        &format!(
            "[Unit]\nDescription=CRI Interface for Docker Application Container Engine\nAfter=network-online.target firewalld.service docker.service\n\
             Wants=network-online.target\nRequires=cri-docker.socket\n\n[Service]\nType=notify\nExecStart={daemon} packaged --container-runtime-endpoint fd://\n\
             TimeoutSec=0\nRestartSec=2\nRestart=always\nKillMode=process\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    node.write(
        "/lib/systemd/system/cri-docker.socket",
        "[Unit]\nDescription=CRI Docker Socket for the API\nPartOf=cri-docker.service\n\n[Socket]\nListenStream=%t/cri-dockerd.sock\nSocketMode=0660\nSocketUser=root\nSocketGroup=docker\n\n[Install]\nWantedBy=sockets.target\n",
    );
    node.write(
        "/etc/systemd/system/cri-docker.service.d/10-cni.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart={daemon} cri-dockerd --container-runtime-endpoint fd:// --pod-infra-container-image=registry.k8s.io/pause:3.10.1 --network-plugin=cni --hairpin-mode=hairpin-veth\n"
        ),
    );
    // kubelet crash-loops until kubeadm writes its configuration.
    node.script(
        "fake-kubelet",
        &format!(
            "#!/bin/sh\nif [ ! -f {config} ]; then echo \"failed to load kubelet config file {config}\"; exit 1; fi\necho kubelet running; exec sleep 300\n",
            config = node.path("/var/lib/kubelet/config.yaml").display()
        ),
    )
}

fn write_kubelet_units(node: &Node, kubelet: &str) {
    node.write(
        "/lib/systemd/system/kubelet.service",
        &format!("[Unit]\nDescription=kubelet: The Kubernetes Node Agent\nStartLimitIntervalSec=0\n\n[Service]\nExecStart={kubelet}\nRestart=always\nRestartSec=600ms\n\n[Install]\nWantedBy=multi-user.target\n"),
    );
    node.write(
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        &format!("[Unit]\nWants=docker.socket\n\n[Service]\nExecStart=\nExecStart={kubelet} --config=/var/lib/kubelet/config.yaml --hostname-override=minikube --node-ip=10.0.0.2\n\n[Install]\n"),
    );
}

#[test]
fn replays_minikube_none_driver_call_sequence() {
    let node = Node::new();
    let kubelet = minikube_like_units(&node);

    // Driver detection.
    assert!(node.expect(&["--version"], 0).starts_with("systemd "));
    // containerd: no unit here; minikube treats this as non-fatal.
    node.expect(&["daemon-reload"], 0);
    node.expect(&["restart", "containerd"], 5);
    // docker.
    node.expect(&["unmask", "docker.service"], 0);
    node.expect(&["enable", "docker.socket"], 0);
    node.expect(&["reset-failed", "docker"], 0);
    node.expect(&["daemon-reload"], 0);
    node.expect(&["restart", "docker"], 0);
    node.expect(&["is-active", "--quiet", "service", "docker"], 0);
    assert_eq!(
        connect_and_read(&node.path("/run/docker.sock")),
        "hello from docker-daemon on fd 3\n"
    );
    // cri-docker: not running yet.
    node.expect(&["is-active", "--quiet", "service", "cri-docker.socket"], 3);
    node.expect(
        &["is-active", "--quiet", "service", "cri-docker.service"],
        3,
    );
    node.expect(&["unmask", "cri-docker.socket"], 0);
    node.expect(&["enable", "cri-docker.socket"], 0);
    node.expect(&["daemon-reload"], 0);
    node.expect(&["restart", "cri-docker.socket"], 0);
    node.expect(&["reset-failed", "cri-docker.service"], 0);
    node.expect(&["daemon-reload"], 0);
    node.expect(&["restart", "cri-docker.service"], 0);
    node.expect(
        &["is-active", "--quiet", "service", "cri-docker.service"],
        0,
    );
    // minikube's checks: the socket exists and answers (through the drop-in's command).
    let socket = node.path("/run/cri-dockerd.sock");
    assert!(socket.exists());
    assert_eq!(
        connect_and_read(&socket),
        "hello from cri-dockerd on fd 3\n"
    );
    // kubelet: no units yet.
    node.expect(&["is-active", "--quiet", "service", "kubelet"], 3);
    node.expect(&["stop", "-f", "kubelet"], 5);
    write_kubelet_units(&node, &kubelet);
    node.expect(&["daemon-reload"], 0);
    node.expect(&["start", "kubelet"], 0);
    // kubeadm preflight.
    let status = node.systemctl(&["status", "kubelet"]);
    assert!(!String::from_utf8_lossy(&status.stdout).contains("Loaded: not-found"));
    assert!(String::from_utf8_lossy(&status.stdout).contains("10-kubeadm.conf"));
    assert_eq!(
        node.expect(&["is-enabled", "kubelet"], 1).trim(),
        "disabled"
    );
    let firewalld = node.systemctl(&["status", "firewalld"]);
    assert_eq!(firewalld.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&firewalld.stdout).contains("Loaded: not-found"));
    assert!(String::from_utf8_lossy(&firewalld.stderr)
        .contains("Unit firewalld.service could not be found."));
    assert_eq!(
        node.expect(&["is-active", "firewalld"], 3).trim(),
        "inactive"
    );
    // kubeadm's kubelet-start phase, then the wait.
    node.expect(&["stop", "kubelet"], 0);
    node.expect(&["daemon-reload"], 0);
    node.expect(&["restart", "kubelet"], 0);
    node.expect(&["daemon-reload"], 0);
    node.expect(&["start", "kubelet"], 0);
    // Crash-looping: never "active" while the config is missing.
    sleep(Duration::from_millis(300));
    assert_ne!(node.code(&["is-active", "kubelet"]), 0);
    node.write(
        "/var/lib/kubelet/config.yaml",
        "kind: KubeletConfiguration\n",
    );
    node.wait_for("kubelet to become active", Duration::from_secs(10), || {
        node.code(&["is-active", "kubelet"]) == 0
    });
    let restarts: u32 = node
        .expect(&["show", "kubelet", "-p", "NRestarts", "--value"], 0)
        .trim()
        .parse()
        .unwrap();
    assert!(
        restarts >= 1,
        "kubelet should have been restarted at least once"
    );
    // minikube stop / delete.
    node.expect(&["stop", "-f", "kubelet"], 0);
    node.expect(&["is-active", "kubelet"], 3);
    node.expect(&["stop", "cri-docker.service"], 0);
    node.expect(&["stop", "docker"], 0);
}

#[test]
fn kubelet_pattern_fails_until_its_file_appears_then_stays_active() {
    let node = Node::new();
    let marker = node.path("/etc/ready");
    let program = node.script(
        "waiter",
        &format!(
            "#!/bin/sh\n[ -f {} ] || {{ echo not yet; exit 1; }}\necho running; exec sleep 300\n",
            marker.display()
        ),
    );
    node.write(
        "/etc/systemd/system/waiter.service",
        &format!("[Service]\nExecStart={program}\nRestart=always\nRestartSec=100ms\n"),
    );
    node.expect(&["start", "waiter"], 0);
    sleep(Duration::from_millis(350));
    let state = node.systemctl(&["is-active", "waiter"]);
    assert_eq!(state.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "activating");
    fs::write(&marker, "").unwrap();
    node.wait_for("waiter to become active", Duration::from_secs(5), || {
        node.code(&["is-active", "waiter"]) == 0
    });
    sleep(Duration::from_millis(300));
    assert_eq!(
        node.code(&["is-active", "waiter"]),
        0,
        "it must stay active"
    );
    let log = node.journalctl(&["-u", "waiter"]);
    assert!(log.contains("not yet") && log.contains("running"), "{log}");
}

#[test]
fn stop_kills_a_service_that_ignores_sigterm() {
    let node = Node::new();
    let program = node.script(
        "stubborn",
        "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n",
    );
    node.write(
        "/etc/systemd/system/stubborn.service",
        &format!("[Service]\nExecStart={program}\nTimeoutStopSec=1\n"),
    );
    node.expect(&["start", "stubborn"], 0);
    let pid = node.main_pid("stubborn");
    assert!(alive(pid));
    let started = Instant::now();
    node.systemctl(&["stop", "stubborn"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "stop returned before the timeout: {took:?}"
    );
    assert!(!alive(pid), "the service survived stop");
    // systemd reports a stop that needed SIGKILL as a failure with result "timeout".
    assert_eq!(
        node.expect(&["show", "stubborn", "-p", "Result", "--value"], 0)
            .trim(),
        "timeout"
    );
}

#[test]
fn start_returns_at_once_under_a_captured_pipe_and_the_service_keeps_running() {
    let node = Node::new();
    node.write(
        "/etc/systemd/system/sleeper.service",
        "[Service]\nExecStart=/bin/sleep 300\n",
    );
    let started = Instant::now();
    // output() waits until every writer of the pipes has closed them, as minikube does.
    let output = node
        .command(&["start", "sleeper"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(output.status.success());
    assert!(
        took < Duration::from_secs(2),
        "start held the caller's pipe for {took:?}"
    );
    let pid = node.main_pid("sleeper");
    assert!(alive(pid));
    sleep(Duration::from_millis(200));
    assert!(alive(pid), "the service did not keep running");
}

#[test]
fn a_second_start_does_not_start_a_second_copy() {
    let node = Node::new();
    let record = node.path("/var/starts");
    let program = node.script(
        "once",
        &format!(
            "#!/bin/sh\necho $$ >> {}\nexec sleep 300\n",
            record.display()
        ),
    );
    node.write(
        "/etc/systemd/system/once.service",
        &format!("[Service]\nExecStart={program}\n"),
    );
    node.expect(&["start", "once"], 0);
    let first = node.main_pid("once");
    node.expect(&["start", "once"], 0);
    node.expect(&["start", "once.service"], 0);
    assert_eq!(node.main_pid("once"), first);
    sleep(Duration::from_millis(100));
    assert_eq!(fs::read_to_string(&record).unwrap().lines().count(), 1);
}

#[test]
fn socket_activation_hands_over_the_listening_socket() {
    let node = Node::new();
    let daemon = node.script("server", NOTIFY_AND_SERVE);
    node.write(
        "/etc/systemd/system/greeter.socket",
        "[Socket]\nListenStream=%t/greeter.sock\nSocketMode=0600\n",
    );
    node.write(
        "/etc/systemd/system/greeter.service",
        &format!(
            "[Unit]\nRequires=greeter.socket\n[Service]\nType=notify\nExecStart={daemon} greeter\n"
        ),
    );
    node.expect(&["start", "greeter.socket"], 0);
    node.expect(&["start", "greeter"], 0);
    let socket = node.path("/run/greeter.sock");
    let mode = fs::metadata(&socket).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    assert_eq!(connect_and_read(&socket), "hello from greeter on fd 3\n");
    assert_eq!(connect_and_read(&socket), "hello from greeter on fd 3\n");
    assert!(
        node.logs()
            .contains("greeter ready fds=1 names=greeter.socket stray=[]"),
        "{}",
        node.logs()
    );
}

#[test]
fn a_notify_service_that_exits_before_ready_fails_start() {
    let node = Node::new();
    node.write(
        "/etc/systemd/system/broken.service",
        "[Service]\nType=notify\nExecStart=/bin/sh -c 'echo cannot start; exit 3'\n",
    );
    let output = node.systemctl(&["start", "broken"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Job for broken.service failed"), "{stderr}");
    assert!(stderr.contains("status=3"), "{stderr}");
    assert_eq!(node.expect(&["is-failed", "broken"], 0).trim(), "failed");
    node.expect(&["reset-failed", "broken"], 0);
    assert_eq!(node.expect(&["is-active", "broken"], 3).trim(), "inactive");
}

#[test]
fn unknown_masked_and_bad_units_answer_like_systemd() {
    let node = Node::new();
    assert_eq!(node.code(&["start", "nope"]), 5);
    assert!(node
        .stderr(&["start", "nope"])
        .contains("Failed to start nope.service: Unit nope.service not found."));
    assert_eq!(node.code(&["stop", "nope"]), 5);
    assert_eq!(node.expect(&["is-active", "nope"], 3).trim(), "inactive");
    assert_eq!(node.expect(&["is-active", "-q", "nope"], 3), "");
    assert_eq!(node.code(&["status", "nope"]), 4);
    assert_eq!(node.code(&["enable", "cri-docker.socket"]), 1);
    assert_eq!(
        node.stderr(&["enable", "cri-docker.socket"]).trim(),
        "Failed to enable unit: Unit file cri-docker.socket does not exist."
    );
    assert_eq!(node.code(&["is-enabled", "nope"]), 1);

    node.write(
        "/etc/systemd/system/quiet.service",
        "[Service]\nExecStart=/bin/sleep 300\n[Install]\nWantedBy=multi-user.target\n",
    );
    node.expect(&["mask", "quiet"], 0);
    assert_eq!(node.code(&["start", "quiet"]), 1);
    assert!(node
        .stderr(&["start", "quiet"])
        .contains("Unit quiet.service is masked."));
    assert_eq!(node.expect(&["is-enabled", "quiet"], 1).trim(), "masked");
    node.expect(&["unmask", "quiet"], 0);
    node.expect(&["enable", "--now", "quiet"], 0);
    assert_eq!(node.expect(&["is-enabled", "quiet"], 0).trim(), "enabled");
    node.expect(&["is-active", "quiet"], 0);
    node.expect(&["disable", "--now", "quiet"], 0);
    node.expect(&["is-active", "quiet"], 3);

    node.write(
        "/etc/systemd/system/bad.service",
        "[Service]\nType=simple\nRestart=sometimes\nExecStart=/bin/true\n",
    );
    assert_eq!(node.code(&["start", "bad"]), 1);
    let stderr = node.stderr(&["start", "bad"]);
    assert!(
        stderr.contains("bad unit file setting") && stderr.contains("Restart=sometimes"),
        "{stderr}"
    );
    node.write(
        "/etc/systemd/system/garbage.service",
        "[Service]\nnot an assignment\n",
    );
    assert!(node.stderr(&["start", "garbage"]).contains("line 2"));
    node.write(
        "/etc/systemd/system/missing.service",
        "[Service]\nExecStart=/nonexistent/binary\n",
    );
    assert_eq!(node.code(&["start", "missing"]), 1);
    assert!(node
        .stderr(&["start", "missing"])
        .contains("/nonexistent/binary"));
}

#[test]
fn kill_mode_process_leaves_the_services_children_and_control_group_does_not() {
    for (mode, survives) in [("process", true), ("control-group", false)] {
        let node = Node::new();
        let child_pid_file = node.path("/var/child.pid");
        let program = node.script(
            "parent",
            &format!(
                "#!/bin/sh\nsleep 300 &\necho $! > {}\nexec sleep 300\n",
                child_pid_file.display()
            ),
        );
        node.write(
            "/etc/systemd/system/family.service",
            &format!("[Service]\nExecStart={program}\nKillMode={mode}\n"),
        );
        node.expect(&["start", "family"], 0);
        node.wait_for("the child's pid", Duration::from_secs(5), || {
            fs::read_to_string(&child_pid_file).is_ok_and(|t| t.ends_with('\n'))
        });
        let child: i32 = fs::read_to_string(&child_pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        node.expect(&["stop", "family"], 0);
        assert_eq!(alive(child), survives, "KillMode={mode}");
        if survives {
            Command::new("kill")
                .arg(child.to_string())
                .status()
                .unwrap();
        }
    }
}

#[test]
fn a_pid_from_an_earlier_life_is_not_mistaken_for_a_live_service() {
    let node = Node::new();
    node.write(
        "/etc/systemd/system/ghost.service",
        "[Service]\nExecStart=/bin/sleep 300\n",
    );
    // A record naming a live PID (this test) with another start time, as after a restart.
    let me = std::process::id();
    node.write(
        "/run/kdind-systemctl/units/ghost.service.state",
        &format!("active=active\nsub=running\nsupervisor={me} 1\nmain={me} 1\n"),
    );
    assert_ne!(node.code(&["is-active", "ghost"]), 0);
    node.expect(&["start", "ghost"], 0);
    assert_ne!(node.main_pid("ghost"), me as i32);
    node.expect(&["is-active", "ghost"], 0);
}

#[test]
fn oneshot_with_remain_after_exit_stays_active_and_journal_shows_its_output() {
    let node = Node::new();
    node.write(
        "/etc/systemd/system/setup.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nEnvironment=\"GREETING=hello world\"\nExecStart=/bin/echo ${GREETING}\nExecStart=/bin/echo $GREETING again\n",
    );
    node.expect(&["start", "setup"], 0);
    node.expect(&["is-active", "setup"], 0);
    let text = node.journalctl(&["-u", "setup", "--no-pager"]);
    assert!(
        text.contains("hello world\n") && text.contains("hello world again\n"),
        "{text}"
    );
    assert_eq!(
        node.journalctl(&["-u", "setup", "-n", "1"]).lines().count(),
        1
    );
}

#[test]
fn cat_and_list_units_show_files_and_states() {
    let node = Node::new();
    node.write(
        "/lib/systemd/system/a.service",
        "[Unit]\nDescription=Service A\n[Service]\nExecStart=/bin/sleep 300\n",
    );
    node.write(
        "/etc/systemd/system/a.service.d/override.conf",
        "[Service]\nEnvironment=X=1\n",
    );
    let cat = node.expect(&["cat", "a"], 0);
    assert!(
        cat.contains("# /lib/systemd/system/a.service\n[Unit]"),
        "{cat}"
    );
    assert!(
        cat.contains("# /etc/systemd/system/a.service.d/override.conf\n"),
        "{cat}"
    );
    node.expect(&["start", "a"], 0);
    let list = node.expect(&["list-units", "--type=service", "--no-legend"], 0);
    assert!(
        list.lines().any(|line| line.starts_with("a.service")
            && line.contains("active")
            && line.contains("running")),
        "{list}"
    );
    let mut writer = node
        .command(&["status", "a"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = String::new();
    writer
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut status)
        .unwrap();
    assert_eq!(writer.wait().unwrap().code(), Some(0));
    assert!(status.contains("Active: active (running)"), "{status}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_without_a_panic() {
    let node = Node::new();
    for index in 0..200 {
        node.write(
            &format!("/etc/systemd/system/unit-{index}.service"),
            "[Service]\nExecStart=/bin/true\n",
        );
    }
    // The read end is closed before the listing is written: the write meets a broken pipe.
    let mut child = node
        .command(&["list-unit-files"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}
