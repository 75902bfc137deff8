//! The CI recipes: the GitHub Action's steps (ci/github/action.sh) run against a real engine
//! with a stand-in node, and the recipe files call their step scripts the way those scripts
//! expect. (The Jenkins recipe's build and deploy need a real cluster: the real tier runs
//! them; the GitLab job's steps run against a remote engine in `remote.rs`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{engine_objects_lock, run, standin_image, text, unique, Docker};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A runner's files and environment for action.sh.
struct Runner {
    temp: tempfile::TempDir,
}

impl Runner {
    fn new() -> Self {
        Self {
            temp: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    fn step(&self, step: &str, inputs: &[(&str, &str)]) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(repository().join("ci/github/action.sh"))
            .arg(step)
            .env("KDIND", env!("CARGO_BIN_EXE_kdind"))
            .env("HOME", self.file("home"))
            .env("XDG_CONFIG_HOME", self.file("home/config"))
            .env("RUNNER_TEMP", self.temp.path())
            .env("GITHUB_ENV", self.file("github_env"))
            .env("GITHUB_OUTPUT", self.file("github_output"))
            .env("GITHUB_PATH", self.file("github_path"))
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .env_remove("DOCKER_HOST");
        for (key, value) in inputs {
            command.env(key, value);
        }
        command
    }
}

fn lines_with<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .collect()
}

#[test]
fn engine_the_github_actions_steps_bring_a_cluster_up_export_it_collect_logs_and_remove_it() {
    let test =
        "engine_the_github_actions_steps_bring_a_cluster_up_export_it_collect_logs_and_remove_it";
    let Some(docker) = Docker::require(test) else {
        return;
    };
    let image = standin_image(&docker, "ok");
    let _lock = engine_objects_lock();
    let runner = Runner::new();
    let name = unique("action");
    let inputs = [
        ("INPUT_NAME", name.as_str()),
        ("INPUT_IMAGE", image.as_str()),
        ("INPUT_WAIT", "3m"),
        ("INPUT_DOCKER_ENV", "true"),
    ];

    let (output, description) = run(&mut runner.step("install", &inputs));
    assert!(output.status.success(), "{description}");
    assert!(
        text(&output.stdout).contains("kdind: using"),
        "{description}"
    );

    let (output, description) = run(&mut runner.step("up", &inputs));
    assert!(output.status.success(), "{description}");
    let github_env = runner.read("github_env");
    let kubeconfig = lines_with(&github_env, "KUBECONFIG");
    assert_eq!(kubeconfig.len(), 1, "{github_env}");
    let kubeconfig = Path::new(kubeconfig[0]);
    assert!(kubeconfig.starts_with(runner.temp.path()));
    let written = std::fs::read_to_string(kubeconfig).unwrap();
    assert!(
        written.contains(&format!("current-context: kdind-{name}")),
        "{written}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // docker-env: later steps' docker CLI talks to the cluster's own docker over TLS.
    let docker_host = lines_with(&github_env, "DOCKER_HOST");
    assert_eq!(docker_host.len(), 1, "{github_env}");
    assert!(
        docker_host[0].starts_with("tcp://127.0.0.1:"),
        "{github_env}"
    );
    assert_eq!(lines_with(&github_env, "DOCKER_TLS_VERIFY"), ["1"]);
    let cert_path = lines_with(&github_env, "DOCKER_CERT_PATH")[0].to_owned();
    let inner = Command::new("docker")
        .env("DOCKER_HOST", docker_host[0])
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &cert_path)
        .args(["info", "--format", "{{.Name}}"])
        .output()
        .unwrap();
    assert_eq!(
        text(&inner.stdout).trim(),
        format!("kdind-{name}"),
        "{}",
        text(&inner.stderr)
    );
    let outputs = runner.read("github_output");
    assert_eq!(
        lines_with(&outputs, "kubeconfig"),
        [kubeconfig.to_str().unwrap()]
    );
    assert_eq!(lines_with(&outputs, "docker-host"), docker_host);

    let (output, description) = run(&mut runner.step("logs", &inputs));
    assert!(output.status.success(), "{description}");
    let outputs = runner.read("github_output");
    let logs = PathBuf::from(lines_with(&outputs, "logs-dir")[0]);
    assert!(logs.join("entrypoint.log").is_file(), "{description}");

    let (output, description) = run(&mut runner.step("down", &inputs));
    assert!(output.status.success(), "{description}");
    let left = docker.cli(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=dev.kdind.cluster={name}"),
    ]);
    assert!(
        text(&left.stdout).trim().is_empty(),
        "left: {}",
        text(&left.stdout)
    );
}

#[test]
fn the_github_actions_steps_refuse_an_unknown_step() {
    let runner = Runner::new();
    let (output, description) = run(&mut runner.step("deploy", &[]));
    assert_eq!(output.status.code(), Some(2), "{description}");
    assert!(text(&output.stderr).contains("usage:"), "{description}");
}

/// Every `inputs.NAME` the action uses is one it declares, and its steps run
/// ci/github/action.sh with each of the script's steps.
#[test]
fn action_yml_declares_the_inputs_it_uses_and_runs_every_step_of_its_script() {
    let text = std::fs::read_to_string(repository().join("action.yml")).unwrap();
    let action: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let declared: BTreeSet<String> = action["inputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|key| key.as_str().unwrap().to_owned())
        .collect();
    let used: BTreeSet<String> = text
        .split("inputs.")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect()
        })
        .collect();
    assert!(
        used.is_subset(&declared),
        "used {used:?}, declared {declared:?}"
    );
    assert_eq!(action["runs"]["using"], "composite");
    let runs: Vec<String> = action["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|step| step["run"].as_str().map(str::to_owned))
        .collect();
    for step in ["install", "up", "logs", "down"] {
        let call = format!("\"$GITHUB_ACTION_PATH/ci/github/action.sh\" {step}");
        assert!(runs.contains(&call), "no step runs `{call}`: {runs:?}");
    }
    // The up step hands the script every input it reads.
    let script = std::fs::read_to_string(repository().join("ci/github/action.sh")).unwrap();
    let up = action["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|step| step["id"] == "up")
        .unwrap();
    for variable in script
        .split("INPUT_")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|variable| !variable.is_empty())
    {
        assert!(
            up["env"][format!("INPUT_{variable}").as_str()].is_string(),
            "the up step does not pass INPUT_{variable}"
        );
    }
}

#[test]
fn the_gitlab_job_runs_every_step_of_its_script_against_the_dind_service_with_tls() {
    let text = std::fs::read_to_string(repository().join("ci/gitlab/kdind.gitlab-ci.yml")).unwrap();
    let jobs: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let job = &jobs["kdind"];
    assert_eq!(job["variables"]["DOCKER_HOST"], "tcp://docker:2376");
    assert_eq!(job["variables"]["DOCKER_TLS_VERIFY"], "1");
    assert_eq!(job["services"][0]["alias"], "docker");
    let steps: Vec<&str> = ["script", "after_script"]
        .iter()
        .flat_map(|key| job[*key].as_sequence().unwrap())
        .filter_map(|step| step.as_str())
        .collect();
    for step in ["up", "logs", "down"] {
        let call = format!("ci/gitlab/job.sh {step}");
        assert!(
            steps.contains(&call.as_str()),
            "no step runs `{call}`: {steps:?}"
        );
    }
}

#[test]
fn the_jenkinsfile_runs_every_stage_of_its_script() {
    let jenkinsfile = std::fs::read_to_string(repository().join("ci/jenkins/Jenkinsfile")).unwrap();
    for stage in ["up", "build", "deploy", "logs", "down"] {
        assert!(
            jenkinsfile.contains(&format!("sh 'ci/jenkins/pipeline.sh {stage}'")),
            "the Jenkinsfile never runs `pipeline.sh {stage}`"
        );
    }
    let output = Command::new("bash")
        .arg(repository().join("ci/jenkins/pipeline.sh"))
        .arg("publish")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
