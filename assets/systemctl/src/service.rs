//! Turning a unit into processes: the service's environment, its command lines, the
//! listening sockets it is handed (socket activation), and the one correction the node
//! needs (dockerd on the cgroupfs driver, since there is no systemd to delegate cgroups).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::paths::Root;
use crate::state::{remove_if_present, write_atomically};
use crate::syntax::{self, ExecLine};
use crate::sys;
use crate::unit::{self, BadUnit, Unit};

/// The environment systemd gives a system service before the unit adds to it.
const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The service's environment: a clean base, then `Environment=` and `EnvironmentFile=`
/// in the order systemd applies them (files override assignments).
pub fn environment(root: &Root, unit: &Unit) -> Result<BTreeMap<String, String>, BadUnit> {
    let mut environment = BTreeMap::new();
    environment.insert("PATH".to_owned(), BASE_PATH.to_owned());
    environment.insert("LANG".to_owned(), "C.UTF-8".to_owned());
    environment.insert("HOME".to_owned(), "/root".to_owned());
    let specifiers = unit.specifiers();
    for value in unit.all("Service", "Environment") {
        let value = syntax::expand_specifiers(value, &specifiers).map_err(BadUnit)?;
        let pairs = syntax::parse_environment(&value)
            .map_err(|error| BadUnit(format!("Environment=: {error}")))?;
        environment.extend(pairs);
    }
    for value in unit.all("Service", "EnvironmentFile") {
        let value = syntax::expand_specifiers(value, &specifiers).map_err(BadUnit)?;
        let (optional, path) = match value.strip_prefix('-') {
            Some(path) => (true, path.trim()),
            None => (false, value.trim()),
        };
        match fs::read_to_string(root.join(path)) {
            Ok(text) => environment.extend(syntax::parse_environment_file(&text)),
            Err(error) if optional && error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(BadUnit(format!("EnvironmentFile={path}: {error}"))),
        }
    }
    Ok(environment)
}

/// A command ready to spawn: program, argv[0] and arguments after variable expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: String,
    pub argv0: Option<String>,
    pub args: Vec<String>,
    pub ignore_failure: bool,
}

impl Invocation {
    pub fn new(
        line: &ExecLine,
        expand: bool,
        environment: &BTreeMap<String, String>,
    ) -> Invocation {
        let mut words: Vec<String> = if expand {
            syntax::expand_variables(&line.words, environment)
        } else {
            line.words.iter().map(|word| word.text.clone()).collect()
        };
        let program = words.remove(0);
        let argv0 = if line.prefix.custom_argv0 && !words.is_empty() {
            Some(words.remove(0))
        } else {
            None
        };
        Invocation {
            program,
            argv0,
            args: words,
            ignore_failure: line.prefix.ignore_failure,
        }
    }

    pub fn describe(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A `Command` with the service's environment, stdin from /dev/null and output
    /// appended to the unit's log.
    pub fn command(
        &self,
        environment: &BTreeMap<String, String>,
        log: &File,
    ) -> io::Result<Command> {
        let mut command = Command::new(&self.program);
        if let Some(argv0) = &self.argv0 {
            command.arg0(argv0);
        }
        command
            .args(&self.args)
            .env_clear()
            .envs(environment)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .current_dir("/");
        Ok(command)
    }
}

/// Every command of one `Exec*=` directive, expanded against `environment`.
pub fn invocations(
    unit: &Unit,
    key: &str,
    environment: &BTreeMap<String, String>,
) -> Result<Vec<Invocation>, BadUnit> {
    Ok(unit
        .exec(key)?
        .iter()
        .map(|(line, expand)| Invocation::new(line, *expand, environment))
        .collect())
}

/// Listening sockets for a service: those of the `.socket` unit with the same name and of
/// any unit named in `Sockets=`. Each is opened here and handed to the service.
pub struct Listeners {
    fds: Vec<OwnedFd>,
    names: Vec<String>,
}

impl Listeners {
    pub fn open(root: &Root, service: &Unit) -> Result<Listeners, String> {
        let mut socket_units = vec![format!("{}.socket", unit::stem(&service.name))];
        for name in service
            .all("Service", "Sockets")
            .iter()
            .flat_map(|value| value.split_whitespace())
        {
            if !socket_units.iter().any(|known| known == name) {
                socket_units.push(name.to_owned());
            }
        }
        let mut listeners = Listeners {
            fds: Vec::new(),
            names: Vec::new(),
        };
        for name in socket_units {
            let socket = Unit::load(root, &name).map_err(|error| error.0)?;
            if !socket.exists() {
                continue;
            }
            let file_descriptor_name = socket
                .get("Socket", "FileDescriptorName")
                .unwrap_or(&name)
                .to_owned();
            for listen in socket.all("Socket", "ListenStream") {
                let address = syntax::expand_specifiers(listen, &socket.specifiers())?;
                let fd = bind_stream(root, &socket, &address)
                    .map_err(|error| format!("{name}: {address}: {error}"))?;
                listeners.fds.push(fd);
                listeners.names.push(file_descriptor_name.clone());
            }
        }
        Ok(listeners)
    }

    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Hand the sockets to `command` as descriptors 3, 4, ... with LISTEN_FDS and
    /// LISTEN_FDNAMES. LISTEN_PID must be the service's own PID, which only the new process
    /// knows: `command` must run the service through [`LISTEN_EXEC`] (see [`Invocation::through_listen_exec`]).
    pub fn pass_to(&self, command: &mut Command) -> io::Result<()> {
        if self.fds.is_empty() {
            return Ok(());
        }
        command
            .env("LISTEN_FDS", self.fds.len().to_string())
            .env("LISTEN_FDNAMES", self.names.join(":"));
        let raw: Vec<i32> = self.fds.iter().map(|fd| fd.as_raw_fd()).collect();
        // SAFETY: the closure runs between fork and exec in the child of a single-threaded
        // supervisor and only calls dup2 and close, which are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                // Move every descriptor out of the way first so dup2 cannot overwrite a
                // source that happens to sit at a target number.
                for (index, fd) in raw.iter().enumerate() {
                    sys::dup2_in_child(*fd, 100 + index as i32)?;
                }
                for index in 0..raw.len() {
                    sys::dup2_in_child(100 + index as i32, 3 + index as i32)?;
                }
                // The copies at 100... lack close-on-exec: the service must not inherit
                // stray descriptors of its listening sockets.
                for index in 0..raw.len() {
                    sys::close_in_child(100 + index as i32)?;
                }
                Ok(())
            });
        }
        Ok(())
    }
}

/// The hidden verb that sets LISTEN_PID to its own PID and then becomes the service
/// (exec keeps the PID): `systemctl __listen-exec PROGRAM ARGV0 ARGS...`.
pub const LISTEN_EXEC: &str = "__listen-exec";

impl Invocation {
    /// The same command, run through [`LISTEN_EXEC`] so it receives a correct LISTEN_PID.
    pub fn through_listen_exec(&self) -> io::Result<Invocation> {
        let executable = std::env::current_exe()?.to_string_lossy().into_owned();
        let mut args = vec![
            LISTEN_EXEC.to_owned(),
            self.program.clone(),
            self.argv0.clone().unwrap_or_default(),
        ];
        args.extend(self.args.iter().cloned());
        Ok(Invocation {
            program: executable,
            argv0: None,
            args,
            ignore_failure: self.ignore_failure,
        })
    }
}

/// Body of [`LISTEN_EXEC`]: only returns when exec fails.
pub fn listen_exec(args: &[String]) -> i32 {
    let [program, argv0, rest @ ..] = args else {
        eprintln!("systemctl {LISTEN_EXEC}: usage: PROGRAM ARGV0 ARGS...");
        return 1;
    };
    let mut command = Command::new(program);
    if !argv0.is_empty() {
        command.arg0(argv0);
    }
    command
        .args(rest)
        .env("LISTEN_PID", std::process::id().to_string());
    let error = command.exec();
    eprintln!("failed to execute {program}: {error}");
    203
}

fn bind_stream(root: &Root, socket: &Unit, address: &str) -> io::Result<OwnedFd> {
    if address.starts_with('/') {
        let path = root.join(address);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        remove_if_present(&path)?;
        let listener = UnixListener::bind(&path)?;
        let mode = socket
            .get("Socket", "SocketMode")
            .map(|mode| u32::from_str_radix(mode, 8))
            .transpose();
        let mode =
            mode.map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid SocketMode="))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode.unwrap_or(0o666)))?;
        let user = socket
            .get("Socket", "SocketUser")
            .map(|name| lookup_id(root, "/etc/passwd", name));
        let group = socket
            .get("Socket", "SocketGroup")
            .map(|name| lookup_id(root, "/etc/group", name));
        // A group that does not exist (no docker group yet) leaves the socket root's.
        std::os::unix::fs::chown(&path, user.flatten(), group.flatten())?;
        Ok(listener.into())
    } else {
        let address = if address.contains(':') {
            address.to_owned()
        } else {
            format!("0.0.0.0:{address}")
        };
        Ok(TcpListener::bind(address)?.into())
    }
}

/// The numeric id of a user or group from /etc/passwd or /etc/group (a number is taken as is).
fn lookup_id(root: &Root, database: &str, name: &str) -> Option<u32> {
    if let Ok(id) = name.parse() {
        return Some(id);
    }
    let text = fs::read_to_string(root.join(database)).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// dockerd cannot use the systemd cgroup driver when systemd is not running, yet minikube
/// writes `native.cgroupdriver=systemd` into daemon.json on cgroup v2 hosts. Before
/// dockerd starts, switch it to cgroupfs in daemon.json and on its command line; minikube
/// reads the driver back from `docker info` and configures kubelet to match.
pub fn force_cgroupfs(root: &Root, invocation: &mut Invocation, log: &mut File) -> io::Result<()> {
    const SYSTEMD: &str = "native.cgroupdriver=systemd";
    const CGROUPFS: &str = "native.cgroupdriver=cgroupfs";
    if Path::new(&invocation.program)
        .file_name()
        .and_then(|name| name.to_str())
        != Some("dockerd")
    {
        return Ok(());
    }
    let config = root.join("/etc/docker/daemon.json");
    if let Ok(text) = fs::read_to_string(&config) {
        if text.contains(SYSTEMD) {
            write_atomically(&config, text.replace(SYSTEMD, CGROUPFS).as_bytes())?;
            writeln!(
                log,
                "kdind-systemctl: {} asked for the systemd cgroup driver; using cgroupfs",
                config.display()
            )?;
        }
    }
    for arg in &mut invocation.args {
        if arg.contains(SYSTEMD) {
            *arg = arg.replace(SYSTEMD, CGROUPFS);
            writeln!(log, "kdind-systemctl: dockerd's command line asked for the systemd cgroup driver; using cgroupfs")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempDir;

    fn unit_in(dir: &TempDir, name: &str, text: &str) -> (Root, Unit) {
        let path = dir.path().join("etc/systemd/system").join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        let root = Root::new(dir.path());
        let unit = Unit::load(&root, name).unwrap();
        (root, unit)
    }

    #[test]
    fn environment_is_clean_and_files_override_assignments() {
        let dir = TempDir::new();
        fs::create_dir_all(dir.path().join("etc/default")).unwrap();
        fs::write(
            dir.path().join("etc/default/docker"),
            "DOCKER_OPTS=\"--debug\"\nA=file\n",
        )
        .unwrap();
        let (root, unit) = unit_in(
            &dir,
            "docker.service",
            "[Service]\nEnvironment=\"A=unit\" B=%n\nEnvironmentFile=-/etc/default/docker\nEnvironmentFile=-/etc/default/missing\nExecStart=/usr/sbin/dockerd $DOCKER_OPTS\n",
        );
        std::env::set_var("KDIND_TEST_LEAK", "1");
        let environment = environment(&root, &unit).unwrap();
        assert_eq!(environment["A"], "file");
        assert_eq!(environment["B"], "docker.service");
        assert_eq!(environment["DOCKER_OPTS"], "--debug");
        assert!(environment["PATH"].contains("/usr/sbin"));
        assert!(!environment.contains_key("KDIND_TEST_LEAK"));
        let invocation = &invocations(&unit, "ExecStart", &environment).unwrap()[0];
        assert_eq!(invocation.program, "/usr/sbin/dockerd");
        assert_eq!(invocation.args, ["--debug"]);
    }

    #[test]
    fn a_required_environment_file_must_exist() {
        let dir = TempDir::new();
        let (root, unit) = unit_in(
            &dir,
            "x.service",
            "[Service]\nEnvironmentFile=/etc/nope\nExecStart=/bin/true\n",
        );
        let error = environment(&root, &unit).unwrap_err();
        assert!(error.0.contains("/etc/nope"), "{}", error.0);
    }

    #[test]
    fn custom_argv0_takes_the_second_word() {
        let (line, expand) = syntax::parse_exec("@/bin/sleep my-sleeper 5").unwrap();
        let invocation = Invocation::new(&line, expand, &BTreeMap::new());
        assert_eq!(invocation.program, "/bin/sleep");
        assert_eq!(invocation.argv0.as_deref(), Some("my-sleeper"));
        assert_eq!(invocation.args, ["5"]);
    }

    #[test]
    fn dockerd_is_switched_to_cgroupfs_in_config_and_argv() {
        let dir = TempDir::new();
        let root = Root::new(dir.path());
        let config = root.join("/etc/docker/daemon.json");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(
            &config,
            r#"{"exec-opts":["native.cgroupdriver=systemd"],"log-driver":"json-file"}"#,
        )
        .unwrap();
        let mut log = File::create(dir.path().join("log")).unwrap();
        let (line, expand) =
            syntax::parse_exec("/usr/sbin/dockerd -H fd:// --exec-opt=native.cgroupdriver=systemd")
                .unwrap();
        let mut invocation = Invocation::new(&line, expand, &BTreeMap::new());
        force_cgroupfs(&root, &mut invocation, &mut log).unwrap();
        assert_eq!(
            fs::read_to_string(&config).unwrap(),
            r#"{"exec-opts":["native.cgroupdriver=cgroupfs"],"log-driver":"json-file"}"#
        );
        assert_eq!(
            invocation.args[2],
            "--exec-opt=native.cgroupdriver=cgroupfs"
        );
        assert!(fs::read_to_string(dir.path().join("log"))
            .unwrap()
            .contains("cgroupfs"));
    }

    #[test]
    fn other_programs_keep_their_config() {
        let dir = TempDir::new();
        let root = Root::new(dir.path());
        let mut log = File::create(dir.path().join("log")).unwrap();
        let (line, expand) = syntax::parse_exec(
            "/usr/bin/kubelet --cgroup-driver=systemd native.cgroupdriver=systemd",
        )
        .unwrap();
        let mut invocation = Invocation::new(&line, expand, &BTreeMap::new());
        force_cgroupfs(&root, &mut invocation, &mut log).unwrap();
        assert_eq!(invocation.args[1], "native.cgroupdriver=systemd");
    }

    #[test]
    fn group_names_resolve_through_etc_group() {
        let dir = TempDir::new();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\ndocker:x:998:alice\n",
        )
        .unwrap();
        let root = Root::new(dir.path());
        assert_eq!(lookup_id(&root, "/etc/group", "docker"), Some(998));
        assert_eq!(lookup_id(&root, "/etc/group", "17"), Some(17));
        assert_eq!(lookup_id(&root, "/etc/group", "nobody-here"), None);
    }
}
