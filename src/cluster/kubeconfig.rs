//! Kubeconfigs: the node's rewritten for the host or for sibling containers (pure), and
//! merged into or removed from the user's file, keeping everything else in it. The user's
//! file is locked the way kubectl locks it (`<file>.lock`, created exclusively) and written
//! atomically with mode 0600.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_yaml_ng::{Mapping, Value};

use crate::fsutil::write_atomic;

const SECTIONS: [&str; 3] = ["clusters", "contexts", "users"];

/// The node's kubeconfig with one cluster, context and user, all named `name`, whose
/// server is `server`.
pub fn rewrite(node_kubeconfig: &str, name: &str, server: &str) -> Result<String> {
    let mut document: Value = serde_yaml_ng::from_str(node_kubeconfig)
        .context("the node's kubeconfig is not valid YAML")?;
    let root = document
        .as_mapping_mut()
        .context("the node's kubeconfig is not a mapping")?;
    let current = root
        .get("current-context")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let context = pick(root, "contexts", current.as_deref())?;
    let inner = context
        .get("context")
        .and_then(Value::as_mapping)
        .context("the node's context has no `context`")?;
    let cluster_name = inner
        .get("cluster")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let user_name = inner.get("user").and_then(Value::as_str).map(str::to_owned);
    let mut cluster = pick(root, "clusters", cluster_name.as_deref())?;
    let mut user = pick(root, "users", user_name.as_deref())?;
    let mut context = context;

    cluster.insert("name".into(), name.into());
    cluster
        .get_mut("cluster")
        .and_then(Value::as_mapping_mut)
        .context("the node's cluster has no `cluster`")?
        .insert("server".into(), server.into());
    user.insert("name".into(), name.into());
    context.insert("name".into(), name.into());
    let inner = context
        .get_mut("context")
        .and_then(Value::as_mapping_mut)
        .expect("checked above");
    inner.insert("cluster".into(), name.into());
    inner.insert("user".into(), name.into());

    let mut out = Mapping::new();
    out.insert("apiVersion".into(), "v1".into());
    out.insert("kind".into(), "Config".into());
    out.insert(
        "clusters".into(),
        Value::Sequence(vec![Value::Mapping(cluster)]),
    );
    out.insert(
        "contexts".into(),
        Value::Sequence(vec![Value::Mapping(context)]),
    );
    out.insert("current-context".into(), name.into());
    out.insert("preferences".into(), Value::Mapping(Mapping::new()));
    out.insert("users".into(), Value::Sequence(vec![Value::Mapping(user)]));
    Ok(serde_yaml_ng::to_string(&Value::Mapping(out))?)
}

/// The entry of `section` named `wanted`, or its only entry when no name is given.
fn pick(root: &Mapping, section: &str, wanted: Option<&str>) -> Result<Mapping> {
    let entries = root
        .get(section)
        .and_then(Value::as_sequence)
        .with_context(|| format!("the node's kubeconfig has no {section}"))?;
    let found = match wanted {
        Some(wanted) => entries
            .iter()
            .find(|entry| entry.get("name").and_then(Value::as_str) == Some(wanted)),
        None if entries.len() == 1 => entries.first(),
        None => None,
    };
    found
        .and_then(Value::as_mapping)
        .cloned()
        .with_context(|| format!("the node's kubeconfig has no usable entry in {section}"))
}

/// `existing` (a user's kubeconfig, possibly empty) with `ours` merged in: entries of the
/// same name are replaced, everything else is kept, and current-context becomes ours.
pub fn merge(existing: &str, ours: &str) -> Result<String> {
    let ours: Value = serde_yaml_ng::from_str(ours)?;
    let name = ours
        .get("current-context")
        .and_then(Value::as_str)
        .context("kdind's kubeconfig names no context")?
        .to_owned();
    let mut document = parse_user_file(existing)?;
    let root = document
        .as_mapping_mut()
        .expect("parse_user_file gives a mapping");
    for section in SECTIONS {
        let entries = section_mut(root, section)?;
        entries.retain(|entry| entry.get("name").and_then(Value::as_str) != Some(&name));
        if let Some(new) = ours.get(section).and_then(Value::as_sequence) {
            entries.extend(new.iter().cloned());
        }
    }
    root.insert("current-context".into(), name.into());
    Ok(serde_yaml_ng::to_string(&document)?)
}

/// `existing` without the entries named `name`; None when there were none. A
/// current-context that pointed at them is cleared.
pub fn remove(existing: &str, name: &str) -> Result<Option<String>> {
    let mut document = parse_user_file(existing)?;
    let root = document
        .as_mapping_mut()
        .expect("parse_user_file gives a mapping");
    let mut removed = false;
    for section in SECTIONS {
        let entries = section_mut(root, section)?;
        let before = entries.len();
        entries.retain(|entry| entry.get("name").and_then(Value::as_str) != Some(name));
        removed |= entries.len() != before;
    }
    if root.get("current-context").and_then(Value::as_str) == Some(name) {
        root.insert("current-context".into(), "".into());
        removed = true;
    }
    if !removed {
        return Ok(None);
    }
    Ok(Some(serde_yaml_ng::to_string(&document)?))
}

fn parse_user_file(text: &str) -> Result<Value> {
    let mut document: Value = if text.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        serde_yaml_ng::from_str(text).context("the kubeconfig is not valid YAML")?
    };
    let root = match &mut document {
        Value::Mapping(root) => root,
        Value::Null => {
            document = Value::Mapping(Mapping::new());
            document.as_mapping_mut().expect("just made")
        }
        _ => bail!("the kubeconfig is not a YAML mapping"),
    };
    if !root.contains_key("apiVersion") {
        root.insert("apiVersion".into(), "v1".into());
    }
    if !root.contains_key("kind") {
        root.insert("kind".into(), "Config".into());
    }
    Ok(document)
}

fn section_mut<'a>(root: &'a mut Mapping, section: &str) -> Result<&'a mut Vec<Value>> {
    let entry = root
        .entry(section.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if entry.is_null() {
        *entry = Value::Sequence(Vec::new());
    }
    entry
        .as_sequence_mut()
        .with_context(|| format!("`{section}` in the kubeconfig is not a list"))
}

/// The kubeconfig kubectl would use: the first path of $KUBECONFIG, else ~/.kube/config.
pub fn default_path(env: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(list) = env("KUBECONFIG").filter(|value| !value.is_empty()) {
        if let Some(first) = std::env::split_paths(&list).find(|path| !path.as_os_str().is_empty())
        {
            return Ok(first);
        }
    }
    let home = env("HOME")
        .filter(|home| !home.is_empty())
        .context("cannot find your kubeconfig: set KUBECONFIG or HOME")?;
    Ok(Path::new(&home).join(".kube").join("config"))
}

/// kubectl's lock: `<file>.lock`, created exclusively and removed when done.
struct KubectlLock {
    path: PathBuf,
}

impl KubectlLock {
    fn acquire(file: &Path) -> Result<Self> {
        let mut path = file.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Self { path }),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Instant::now() > deadline {
                        bail!(
                            "{} is locked by {} for more than 10 s; remove the lock file if no kubectl or kdind is running",
                            file.display(),
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
    }
}

impl Drop for KubectlLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The file `path` names through any chain of symbolic links: kubeconfigs are often links
/// into a dotfiles repository, and kubectl writes through them, so kdind writes (and locks)
/// the target and leaves the links as they are.
fn through_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)
                    .with_context(|| format!("cannot read the link {}", current.display()))?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    bail!(
        "{} is a chain of more than 40 symbolic links",
        path.display()
    )
}

/// Check that the file at `path` (through symbolic links), if there is one, can take a merge:
/// `up` asks this before it creates anything.
pub fn check_file(path: &Path) -> Result<()> {
    const PROBE: &str = "apiVersion: v1\nkind: Config\ncurrent-context: kdind-probe\n\
        clusters:\n- name: kdind-probe\n  cluster: {server: 'https://127.0.0.1:1'}\n\
        contexts:\n- name: kdind-probe\n  context: {cluster: kdind-probe, user: kdind-probe}\n\
        users:\n- name: kdind-probe\n  user: {}\n";
    let path = &through_links(path)?;
    let existing = read_if_present(path)?;
    merge(&existing, PROBE)
        .map(drop)
        .with_context(|| format!("cannot merge into {}", path.display()))
}

/// Merge `ours` into the file at `path` (created when missing), through symbolic links.
pub fn merge_into_file(path: &Path, ours: &str) -> Result<()> {
    let path = &through_links(path)?;
    let _lock = KubectlLock::acquire(path)?;
    let existing = read_if_present(path)?;
    let merged =
        merge(&existing, ours).with_context(|| format!("cannot merge into {}", path.display()))?;
    write_atomic(path, merged.as_bytes(), 0o600)
}

/// Remove the entries named `name` from the file at `path` (through symbolic links);
/// whether there were any.
pub fn remove_from_file(path: &Path, name: &str) -> Result<bool> {
    let path = &through_links(path)?;
    if !path.exists() {
        return Ok(false);
    }
    let _lock = KubectlLock::acquire(path)?;
    let existing = read_if_present(path)?;
    match remove(&existing, name).with_context(|| format!("cannot edit {}", path.display()))? {
        Some(text) => {
            write_atomic(path, text.as_bytes(), 0o600)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

fn read_if_present(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    extensions:
    - extension:
        provider: minikube.sigs.k8s.io
      name: cluster_info
    server: https://172.18.0.2:8443
  name: minikube
contexts:
- context:
    cluster: minikube
    namespace: default
    user: minikube
  name: minikube
current-context: minikube
kind: Config
preferences: {}
users:
- name: minikube
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";

    const USERS_FILE: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: 'https://prod:6443'}
- name: kdind-dev
  cluster: {server: 'https://stale:1'}
contexts:
- name: prod
  context: {cluster: prod, user: prod}
- name: staging
  context: {cluster: prod, user: prod, namespace: staging}
- name: kdind-dev
  context: {cluster: kdind-dev, user: kdind-dev}
current-context: prod
users:
- name: prod
  user: {token: secret}
- name: kdind-dev
  user: {token: stale}
preferences: {colors: true}
";

    fn value(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn names(document: &Value, section: &str) -> Vec<String> {
        document[section]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|entry| entry["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn rewrite_renames_everything_and_points_at_the_server() {
        let out = value(&rewrite(NODE, "kdind-dev", "https://127.0.0.1:41234").unwrap());
        assert_eq!(out["current-context"], "kdind-dev");
        assert_eq!(names(&out, "clusters"), ["kdind-dev"]);
        assert_eq!(names(&out, "contexts"), ["kdind-dev"]);
        assert_eq!(names(&out, "users"), ["kdind-dev"]);
        let cluster = &out["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "https://127.0.0.1:41234");
        assert_eq!(cluster["certificate-authority-data"], "Q0E=");
        let context = &out["contexts"][0]["context"];
        assert_eq!(context["cluster"], "kdind-dev");
        assert_eq!(context["user"], "kdind-dev");
        assert_eq!(context["namespace"], "default");
        assert_eq!(out["users"][0]["user"]["client-key-data"], "S0VZ");
    }

    #[test]
    fn merge_replaces_our_entries_and_keeps_everything_else() {
        let ours = rewrite(NODE, "kdind-dev", "https://127.0.0.1:41234").unwrap();
        let merged = value(&merge(USERS_FILE, &ours).unwrap());
        assert_eq!(names(&merged, "clusters"), ["prod", "kdind-dev"]);
        assert_eq!(names(&merged, "contexts"), ["prod", "staging", "kdind-dev"]);
        assert_eq!(names(&merged, "users"), ["prod", "kdind-dev"]);
        assert_eq!(merged["current-context"], "kdind-dev");
        assert_eq!(
            merged["clusters"][1]["cluster"]["server"],
            "https://127.0.0.1:41234"
        );
        assert_eq!(merged["users"][0]["user"]["token"], "secret");
        assert_eq!(merged["preferences"]["colors"], true);
        assert_eq!(merged["contexts"][1]["context"]["namespace"], "staging");
    }

    #[test]
    fn merge_into_nothing_makes_a_complete_file() {
        let ours = rewrite(NODE, "kdind-a", "https://127.0.0.1:1").unwrap();
        let merged = value(&merge("", &ours).unwrap());
        assert_eq!(merged["apiVersion"], "v1");
        assert_eq!(merged["kind"], "Config");
        assert_eq!(names(&merged, "contexts"), ["kdind-a"]);
    }

    #[test]
    fn remove_takes_only_ours_and_clears_the_current_context() {
        let ours = rewrite(NODE, "kdind-dev", "https://127.0.0.1:1").unwrap();
        let merged = merge(USERS_FILE, &ours).unwrap();
        let removed = value(&remove(&merged, "kdind-dev").unwrap().unwrap());
        assert_eq!(names(&removed, "clusters"), ["prod"]);
        assert_eq!(names(&removed, "contexts"), ["prod", "staging"]);
        assert_eq!(names(&removed, "users"), ["prod"]);
        assert_eq!(removed["current-context"], "");
        assert_eq!(remove(USERS_FILE, "kdind-other").unwrap(), None);
    }

    #[test]
    fn the_default_path_is_the_first_of_kubeconfig_else_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            default_path(env(&[("KUBECONFIG", "/a/one:/b/two"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/a/one")
        );
        assert_eq!(
            default_path(env(&[("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.kube/config")
        );
    }

    #[test]
    fn the_user_file_is_merged_on_disk_with_mode_0600_and_no_lock_left() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, USERS_FILE).unwrap();
        let ours = rewrite(NODE, "kdind-x", "https://127.0.0.1:2").unwrap();
        merge_into_file(&path, &ours).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join("config.lock").exists());
        assert!(remove_from_file(&path, "kdind-x").unwrap());
        assert!(!remove_from_file(&path, "kdind-x").unwrap());
        let left = value(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(names(&left, "contexts"), ["prod", "staging", "kdind-dev"]);
    }

    #[test]
    fn a_file_that_cannot_take_a_merge_is_found_before_anything_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        check_file(&path).unwrap();
        std::fs::write(&path, USERS_FILE).unwrap();
        check_file(&path).unwrap();
        std::fs::write(&path, "clusters: [unclosed\n").unwrap();
        let error = format!("{:#}", check_file(&path).unwrap_err());
        assert!(error.contains("not valid YAML"), "{error}");
        std::fs::write(&path, "- a list\n").unwrap();
        assert!(check_file(&path).is_err());
    }

    #[test]
    fn a_symlinked_kubeconfig_is_written_through_and_stays_a_link() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let dotfiles = dir.path().join("dotfiles");
        std::fs::create_dir(&dotfiles).unwrap();
        let target = dotfiles.join("kubeconfig");
        std::fs::write(&target, USERS_FILE).unwrap();
        // A direct link, and a chain of two (one relative) ending at the same file.
        let direct = dir.path().join("config");
        symlink(&target, &direct).unwrap();
        let middle = dir.path().join("middle");
        symlink("dotfiles/kubeconfig", &middle).unwrap();
        let chain = dir.path().join("chain");
        symlink(&middle, &chain).unwrap();

        for (link, name) in [(&direct, "kdind-x"), (&chain, "kdind-y")] {
            let ours = rewrite(NODE, name, "https://127.0.0.1:2").unwrap();
            merge_into_file(link, &ours).unwrap();
            assert!(std::fs::symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_symlink());
            let merged = value(&std::fs::read_to_string(&target).unwrap());
            assert!(names(&merged, "contexts").contains(&name.to_owned()));
            let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            assert!(!dotfiles.join("kubeconfig.lock").exists());
        }
        assert!(remove_from_file(&chain, "kdind-x").unwrap());
        assert!(remove_from_file(&direct, "kdind-y").unwrap());
        assert!(std::fs::symlink_metadata(&direct)
            .unwrap()
            .file_type()
            .is_symlink());
        let left = value(&std::fs::read_to_string(&target).unwrap());
        assert_eq!(names(&left, "contexts"), ["prod", "staging", "kdind-dev"]);
        let stray: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(stray.len(), 4, "no file beside the links: {stray:?}");
    }
}
