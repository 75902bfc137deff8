//! Helpers shared by the integration tests: running the kdind binary, and a Docker engine
//! that is either there, skipped with a visible reason, or a loud failure in CI.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The kdind binary under test, with a clean environment for the settings it reads.
pub fn kdind() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kdind"));
    command.env_remove("KDIND_NAME").env("NO_COLOR", "1");
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run and describe the result in one string, for assertion messages.
pub fn run(command: &mut Command) -> (Output, String) {
    let output = command.output().expect("failed to run command");
    let description = format!(
        "{command:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    (output, description)
}

/// A unique suffix for names of objects a test creates on the shared engine.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The Docker engine, for tests named `engine_*`.
pub struct Docker {
    pub base_image: String,
}

impl Docker {
    /// The engine if it answers. When it does not: panic under `KDIND_REQUIRE_DOCKER=1`,
    /// otherwise print a visible skip line (straight to stderr, past the test harness's
    /// capture) and return None.
    pub fn require(test: &str) -> Option<Self> {
        let answers = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false);
        if !answers {
            if std::env::var("KDIND_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!(
                    "{test}: KDIND_REQUIRE_DOCKER=1 but no Docker engine answers `docker version`"
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no Docker engine answers `docker version` (set KDIND_REQUIRE_DOCKER=1 to make this a failure)"
            );
            return None;
        }
        let base_image = std::env::var("KDIND_TEST_BASE_IMAGE")
            .unwrap_or_else(|_| "kdind-local/debian:trixie".to_owned());
        let docker = Self { base_image };
        let present = docker
            .cli(&["image", "inspect", &docker.base_image])
            .status
            .success();
        assert!(
            present,
            "{test}: base image {} is missing; make it with scripts/local-base-image.sh",
            docker.base_image
        );
        Some(docker)
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .output()
            .expect("failed to run the docker CLI")
    }

    /// `docker create` a container that is removed again when the guard drops.
    pub fn create_container(&self, name: &str, labels: &[(&str, &str)]) -> ContainerGuard {
        let mut args = vec!["create".to_owned(), "--name".to_owned(), name.to_owned()];
        for (key, value) in labels {
            args.push("--label".to_owned());
            args.push(format!("{key}={value}"));
        }
        args.extend([self.base_image.clone(), "true".to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "docker create failed: {}",
            text(&output.stderr)
        );
        ContainerGuard {
            name: name.to_owned(),
        }
    }
}

/// Removes a container when a test ends, passing or failing.
pub struct ContainerGuard {
    pub name: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

/// The test stand-ins laid out as a kdind mirror (tests/fixtures/standin/make-mirror.sh),
/// with a scratch copy of tests/fixtures/standin.toml and a private download cache.
pub struct Standins {
    pub dir: tempfile::TempDir,
}

impl Standins {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a scratch directory");
        let script = fixtures().join("standin/make-mirror.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(dir.path().join("mirror"))
            .output()
            .expect("run make-mirror.sh");
        assert!(
            output.status.success(),
            "make-mirror.sh: {}",
            text(&output.stderr)
        );
        Self { dir }
    }

    pub fn mirror(&self) -> String {
        format!("file://{}", self.dir.path().join("mirror").display())
    }

    pub fn cache(&self) -> std::path::PathBuf {
        self.dir.path().join("cache")
    }

    /// Write a config: `top` (top-level keys such as kubernetes_version) before the
    /// stand-in tables, `tables` after them. Returns its path.
    pub fn config(&self, file: &str, top: &str, tables: &str) -> std::path::PathBuf {
        let standin = std::fs::read_to_string(fixtures().join("standin.toml")).unwrap();
        let path = self.dir.path().join(file);
        std::fs::write(&path, format!("{top}\n{standin}\n{tables}")).unwrap();
        path
    }

    /// `kdind build` with this mirror and cache, from `base_image`.
    pub fn build(&self, config: &std::path::Path, base_image: &str, extra: &[&str]) -> Command {
        let mut command = kdind();
        command
            .env("KDIND_CACHE_DIR", self.cache())
            .env_remove("KDIND_MIRROR")
            .env_remove("KDIND_CONFIG")
            .arg("build")
            .arg("--config")
            .arg(config)
            .arg("--mirror")
            .arg(self.mirror())
            .arg("--base-image")
            .arg(base_image)
            .args(extra);
        command
    }
}

pub fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Removes an image (by reference) when a test ends.
pub struct ImageGuard(pub String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// Tests that create objects labelled `dev.kdind.cluster` take this lock, because
/// `kdind down --all` removes every such object on the engine.
pub fn engine_objects_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Builds of the stand-in context take this lock: two builds of one context running at
/// once on a cold layer cache make two chains of layers, and a later rebuild may then follow
/// either, which would make "a rebuild reuses every layer" untestable.
pub fn image_build_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A stand-in node image whose minikube behaves as `behaviour` says (ok, fail, hang), built
/// once per test run and kept under a fixed tag so that later runs reuse its layers.
pub fn standin_image(docker: &Docker, behaviour: &str) -> String {
    static BUILT: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some((_, reference)) = built.iter().find(|(kind, _)| kind == behaviour) {
        return reference.clone();
    }
    let _building = image_build_lock();
    let standins = Standins::new();
    let config = standins.config("kdind.toml", "", "");
    if behaviour != "ok" {
        // The same stand-in tables, with minikube taken from its variant.
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "standins.kdind.test/minikube",
            &format!("standins.kdind.test/minikube-{behaviour}"),
        );
        std::fs::write(&config, text).unwrap();
    }
    let reference = format!("kdind-test/node:standin-{behaviour}");
    let (output, description) =
        run(&mut standins.build(&config, &docker.base_image, &["--tag", &reference]));
    assert!(
        output.status.success(),
        "building the {behaviour} stand-in image: {description}"
    );
    built.push((behaviour.to_owned(), reference.clone()));
    reference
}

/// A user of kdind with a home of their own (kubeconfig, `kdind env` files, cache), talking
/// to the test engine or, with `with_engine`, to another one.
pub struct User {
    pub home: tempfile::TempDir,
    engine: Vec<(String, String)>,
}

impl User {
    pub fn new() -> Self {
        Self::with_engine(&[])
    }

    /// A user whose engine is named by these variables (DOCKER_HOST, DOCKER_CONTEXT, ...).
    pub fn with_engine(engine: &[(&str, &str)]) -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            engine: engine
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// The variables naming this user's engine (empty: the test engine).
    pub fn engine(&self) -> &[(String, String)] {
        &self.engine
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.home.path().join("kube/config")
    }

    pub fn kdind(&self, args: &[&str]) -> Command {
        let mut command = kdind();
        command
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.kubeconfig())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("KDIND_CACHE_DIR", self.home.path().join("cache"));
        if !self.engine.is_empty() {
            command
                .env_remove("DOCKER_HOST")
                .env_remove("DOCKER_CONTEXT")
                .env_remove("DOCKER_CONFIG")
                .envs(self.engine.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        command.args(args);
        command
    }

    pub fn up(&self, name: &str, image: &str, extra: &[&str]) -> (Output, String) {
        let mut args = vec!["up", "--name", name, "--image", image];
        args.extend_from_slice(extra);
        run(&mut self.kdind(&args))
    }

    pub fn down(&self, name: &str) -> (Output, String) {
        run(&mut self.kdind(&["down", "--name", name]))
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", self.kubeconfig())
            .args(args)
            .output()
            .expect("run kubectl")
    }
}

/// The `export KEY='value'` lines of `kdind env`, as pairs.
pub fn exports(stdout: &[u8]) -> Vec<(String, String)> {
    text(stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.trim_matches('\'').to_owned())
        })
        .collect()
}

/// The value of `key` among `pairs`.
pub fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    &pairs.iter().find(|(k, _)| k == key).unwrap().1
}
