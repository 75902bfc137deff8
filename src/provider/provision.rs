//! Creating a node: the shared network, the node's volume claimed for this run, then the
//! container, created and started with the privileged-then-capabilities fallback and retried
//! when a chosen port was taken or the network vanished meanwhile. Everything this run made
//! is recorded as it is made, so that `clean_up` removes exactly that and nothing else.

use std::sync::{Mutex, MutexGuard};

use anyhow::{bail, Result};

use super::NodeEngine;
use crate::cluster::labels::{self, Role};
use crate::cluster::spec::{self, NodeRequest, NodeSettings, Security};
use crate::cluster::ClusterName;
use crate::docker::StartRefusal;

/// How the node gets its privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegedMode {
    /// Privileged, falling back to the capability set when the engine refuses.
    Auto,
    /// Privileged only.
    Always,
    /// The explicit capability set only.
    Caps,
}

/// What the caller decided before anything is created.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub node: NodeSettings<'a>,
    /// A fixed host port for the API server; None chooses a free one (and retries when it
    /// is taken before the node starts).
    pub api_port: Option<u16>,
    pub privileged_mode: PrivilegedMode,
}

/// The node this run created and started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub container: String,
    pub api_port: u16,
    pub docker_port: u16,
    pub security: Security,
}

/// What a run created, for its clean-up. Shared with the caller, so that a run interrupted
/// half way still knows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Created {
    pub network: Option<String>,
    pub volume: Option<String>,
    pub container: Option<String>,
}

/// Attempts at creating and starting the container, whatever the reasons to retry.
const ATTEMPTS: u32 = 4;

fn lock(created: &Mutex<Created>) -> MutexGuard<'_, Created> {
    created.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Unique to this run: the process and the time.
fn claim_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// Create and start the node of `plan`. `free_port` names a port nothing listens on at an
/// address; `warn` is told about the capability fallback.
pub async fn provision<E: NodeEngine>(
    engine: &E,
    plan: &Plan<'_>,
    free_port: &dyn Fn(&str) -> Result<u16>,
    warn: &dyn Fn(&str),
    created: &Mutex<Created>,
) -> Result<Provisioned> {
    let mut network_id = join_network(engine, created).await?;
    claim_volume(engine, plan.node.cluster, created).await?;

    let mut security = match plan.privileged_mode {
        PrivilegedMode::Auto | PrivilegedMode::Always => Security::Privileged,
        PrivilegedMode::Caps => Security::Capabilities,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let api_port = match plan.api_port {
            Some(port) => port,
            None => free_port(plan.node.listen_address)?,
        };
        let docker_port = free_port(plan.node.listen_address)?;
        let request = NodeRequest {
            node: &plan.node,
            api_port,
            docker_port,
            network_id: &network_id,
        };
        let container = spec::spec(&request, security);
        let started = match engine.create_container(&container).await {
            Ok(id) => {
                lock(created).container = Some(container.name.clone());
                engine.start_container(&id).await
            }
            Err(error) => Err(error),
        };
        let error = match started {
            Ok(()) => {
                return Ok(Provisioned {
                    container: container.name,
                    api_port,
                    docker_port,
                    security,
                })
            }
            Err(error) => error,
        };
        let retry = match error.start_refusal() {
            Some(StartRefusal::Privileged)
                if security == Security::Privileged
                    && plan.privileged_mode == PrivilegedMode::Auto =>
            {
                warn("the engine cannot start a privileged container here (\"unable to apply caps\": its own capability set lacks one); retrying with the explicit capability set (all but CAP_SYS_RESOURCE, no seccomp or AppArmor profile, all devices)");
                security = Security::Capabilities;
                true
            }
            // Only the chosen ports may move; a port the user fixed is theirs to change.
            Some(StartRefusal::PortTaken) => {
                let taken = error.taken_port();
                plan.api_port.is_none()
                    && !plan
                        .node
                        .ports
                        .iter()
                        .any(|mapping| Some(mapping.host_port) == taken)
            }
            // Another run that had created the network failed and removed it while this
            // node was created but not yet started (the engine counts only running members).
            Some(StartRefusal::NetworkGone) => {
                network_id = join_network(engine, created).await?;
                true
            }
            _ => false,
        };
        if !retry || attempt >= ATTEMPTS {
            return Err(error.into());
        }
        let previous = lock(created).container.clone();
        if let Some(previous) = previous {
            engine.remove_container(&previous).await?;
            lock(created).container = None;
        }
    }
}

/// The shared network's ID, recorded as this run's when this run created it.
async fn join_network<E: NodeEngine>(engine: &E, created: &Mutex<Created>) -> Result<String> {
    let (id, made) = engine
        .ensure_network(spec::NETWORK, labels::network())
        .await?;
    if made {
        lock(created).network = Some(id.clone());
    }
    Ok(id)
}

/// Create the node's volume with a token of this run. A volume of that name that was there
/// before (a user's, a leftover, or a concurrent `up` of the same name) comes back without
/// the token: it is not this run's, so nothing goes on with it and nothing removes it.
async fn claim_volume<E: NodeEngine>(
    engine: &E,
    cluster: &ClusterName,
    created: &Mutex<Created>,
) -> Result<()> {
    let volume = spec::volume_name(cluster);
    let claim = claim_token();
    let mut volume_labels = labels::common(cluster, Role::DockerData);
    volume_labels.insert(labels::CLAIM.to_owned(), claim.clone());
    let answered = engine.create_volume(&volume, volume_labels).await?;
    if answered.get(labels::CLAIM) != Some(&claim) {
        let owner = match answered.get(labels::CLUSTER) {
            Some(owner) => format!(
                "it belongs to kdind cluster {owner}: `kdind down --name {owner}` removes it"
            ),
            None => format!("it is not kdind's: `docker volume rm {volume}` removes it"),
        };
        bail!(
            "a volume named {volume} already exists, and this cluster's docker data would go \
             there; kdind leaves it alone ({owner} if you no longer need it), or choose another \
             --name"
        );
    }
    lock(created).volume = Some(volume);
    Ok(())
}

/// Remove what a run created (container, volume, then the network, which the engine keeps
/// while another node uses it); what could not be removed, in words.
pub async fn clean_up<E: NodeEngine>(engine: &E, created: &Mutex<Created>) -> Vec<String> {
    let created = std::mem::take(&mut *lock(created));
    let mut problems = Vec::new();
    if let Some(container) = &created.container {
        if let Err(error) = engine.remove_container(container).await {
            problems.push(error.to_string());
        }
    }
    if let Some(volume) = &created.volume {
        if let Err(error) = engine.remove_volume(volume).await {
            problems.push(error.to_string());
        }
    }
    if let Some(network) = &created.network {
        if let Err(error) = engine.remove_network(network).await {
            problems.push(error.to_string());
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use super::*;
    use crate::docker::{ContainerSpec, EngineError};

    /// An engine that records every call and answers starts from a script.
    #[derive(Default)]
    struct FakeEngine {
        calls: Mutex<Vec<String>>,
        /// What each start answers, in order; a start past the end succeeds.
        starts: Mutex<VecDeque<Start>>,
        /// Labels of a volume that exists before the run.
        existing_volume: Option<HashMap<String, String>>,
        /// Whether the network exists before the run.
        network_exists: bool,
        networks_made: Mutex<u32>,
        /// The engine's words in a refusal (empty: the refusal's name).
        refusal_message: Mutex<String>,
        specs: Mutex<Vec<ContainerSpec>>,
    }

    /// A scripted answer to a start.
    #[derive(Debug, Clone, Copy)]
    enum Start {
        Refused(StartRefusal),
        Fails,
    }

    impl FakeEngine {
        fn with_starts(starts: &[Start]) -> Self {
            Self {
                starts: Mutex::new(starts.iter().copied().collect()),
                ..Self::default()
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn specs(&self) -> Vec<ContainerSpec> {
            self.specs.lock().unwrap().clone()
        }

        fn call(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    fn refused(refusal: StartRefusal) -> EngineError {
        EngineError::Refused {
            endpoint: "unix:///fake.sock".to_owned(),
            action: "start container".to_owned(),
            refusal,
            message: format!("{refusal:?}"),
        }
    }

    impl NodeEngine for FakeEngine {
        async fn ensure_network(
            &self,
            name: &str,
            _labels: HashMap<String, String>,
        ) -> Result<(String, bool), EngineError> {
            self.call(format!("ensure network {name}"));
            if self.network_exists {
                return Ok(("net-0".to_owned(), false));
            }
            let mut made = self.networks_made.lock().unwrap();
            *made += 1;
            Ok((format!("net-{made}"), true))
        }

        async fn create_volume(
            &self,
            name: &str,
            labels: HashMap<String, String>,
        ) -> Result<HashMap<String, String>, EngineError> {
            self.call(format!("create volume {name}"));
            Ok(self.existing_volume.clone().unwrap_or(labels))
        }

        async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
            self.call(format!("create container {}", spec.name));
            self.specs.lock().unwrap().push(spec.clone());
            Ok(format!("id-{}", self.specs.lock().unwrap().len()))
        }

        async fn start_container(&self, id: &str) -> Result<(), EngineError> {
            self.call(format!("start {id}"));
            match self.starts.lock().unwrap().pop_front() {
                Some(Start::Refused(refusal)) => {
                    let mut error = refused(refusal);
                    let words = self.refusal_message.lock().unwrap().clone();
                    if let EngineError::Refused { message, .. } = &mut error {
                        if !words.is_empty() {
                            *message = words;
                        }
                    }
                    Err(error)
                }
                Some(Start::Fails) => Err(EngineError::UnsupportedHost("broken".to_owned())),
                None => Ok(()),
            }
        }

        async fn remove_container(&self, id: &str) -> Result<bool, EngineError> {
            self.call(format!("remove container {id}"));
            Ok(true)
        }

        async fn remove_volume(&self, name: &str) -> Result<bool, EngineError> {
            self.call(format!("remove volume {name}"));
            Ok(true)
        }

        async fn remove_network(&self, id: &str) -> Result<bool, EngineError> {
            self.call(format!("remove network {id}"));
            Ok(true)
        }
    }

    fn plan(cluster: &ClusterName, mode: PrivilegedMode, api_port: Option<u16>) -> Plan<'_> {
        Plan {
            node: NodeSettings {
                cluster,
                image: "kdind/node:test",
                kubernetes_version: "v1.35.1",
                listen_address: "127.0.0.1",
                server_host: "127.0.0.1",
                kubeconfig: None,
                minikube_args: "",
                ports: &[],
                proxy: &[],
                wait: std::time::Duration::from_secs(300),
            },
            api_port,
            privileged_mode: mode,
        }
    }

    /// Ports 40001, 40002, ... in order.
    fn ports() -> impl Fn(&str) -> Result<u16> {
        let next = Mutex::new(40000);
        move |_| {
            let mut next = next.lock().unwrap();
            *next += 1;
            Ok(*next)
        }
    }

    async fn run(
        engine: &FakeEngine,
        plan: &Plan<'_>,
    ) -> (Result<Provisioned>, Created, Vec<String>) {
        let created = Mutex::new(Created::default());
        let warnings = Mutex::new(Vec::new());
        let outcome = provision(
            engine,
            plan,
            &ports(),
            &|text| warnings.lock().unwrap().push(text.to_owned()),
            &created,
        )
        .await;
        let created = created.into_inner().unwrap();
        (outcome, created, warnings.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_refused_privileged_start_falls_back_to_capabilities_and_says_so() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let engine = FakeEngine::with_starts(&[Start::Refused(StartRefusal::Privileged)]);
        let (outcome, created, warnings) =
            run(&engine, &plan(&cluster, PrivilegedMode::Auto, None)).await;
        let node = outcome.unwrap();
        assert_eq!(node.security, Security::Capabilities);
        let specs = engine.specs();
        assert_eq!(specs.len(), 2);
        assert!(specs[0].privileges.privileged);
        assert!(!specs[1].privileges.privileged);
        assert_eq!(specs[1].privileges.cap_drop, ["SYS_RESOURCE"]);
        assert!(
            engine
                .calls()
                .contains(&"remove container kdind-dev".to_owned()),
            "the refused container is removed before the next: {:?}",
            engine.calls()
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("capability set"), "{warnings:?}");
        assert_eq!(created.container.as_deref(), Some("kdind-dev"));
    }

    #[tokio::test]
    async fn privileged_only_does_not_fall_back_and_leaves_the_container_for_clean_up() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let engine = FakeEngine::with_starts(&[Start::Refused(StartRefusal::Privileged)]);
        let (outcome, created, warnings) =
            run(&engine, &plan(&cluster, PrivilegedMode::Always, None)).await;
        let error = outcome.unwrap_err();
        assert_eq!(
            error
                .downcast_ref::<EngineError>()
                .and_then(EngineError::start_refusal),
            Some(StartRefusal::Privileged)
        );
        assert_eq!(engine.specs().len(), 1);
        assert!(warnings.is_empty());
        assert_eq!(
            created,
            Created {
                network: Some("net-1".to_owned()),
                volume: Some("kdind-dev-docker".to_owned()),
                container: Some("kdind-dev".to_owned()),
            }
        );
    }

    #[tokio::test]
    async fn a_taken_chosen_port_is_retried_on_new_ports_a_few_times() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let engine = FakeEngine::with_starts(&[Start::Refused(StartRefusal::PortTaken)]);
        let (outcome, _, _) = run(&engine, &plan(&cluster, PrivilegedMode::Auto, None)).await;
        let node = outcome.unwrap();
        assert_eq!((node.api_port, node.docker_port), (40003, 40004));
        let published: Vec<Vec<u16>> = engine
            .specs()
            .iter()
            .map(|spec| spec.ports.iter().map(|port| port.host_port).collect())
            .collect();
        assert_eq!(published, [vec![40001, 40002], vec![40003, 40004]]);

        let always_taken = FakeEngine::with_starts(&[Start::Refused(StartRefusal::PortTaken); 10]);
        let (outcome, created, _) =
            run(&always_taken, &plan(&cluster, PrivilegedMode::Auto, None)).await;
        assert!(outcome.is_err());
        assert_eq!(always_taken.specs().len(), ATTEMPTS as usize);
        assert_eq!(created.container.as_deref(), Some("kdind-dev"));
    }

    #[tokio::test]
    async fn a_taken_port_the_user_fixed_is_not_retried() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let engine = FakeEngine::with_starts(&[Start::Refused(StartRefusal::PortTaken)]);
        let (outcome, _, _) = run(&engine, &plan(&cluster, PrivilegedMode::Auto, Some(6443))).await;
        assert!(outcome.is_err());
        assert_eq!(engine.specs().len(), 1);
        assert_eq!(engine.specs()[0].ports[0].host_port, 6443);
    }

    #[tokio::test]
    async fn a_taken_port_of_the_users_own_is_not_retried() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let engine = FakeEngine::with_starts(&[Start::Refused(StartRefusal::PortTaken)]);
        *engine.refusal_message.lock().unwrap() =
            "Bind for 127.0.0.1:8080 failed: port is already allocated".to_owned();
        let ports = ["8080:30080".parse().unwrap()];
        let mut plan = plan(&cluster, PrivilegedMode::Auto, None);
        plan.node.ports = &ports;
        let (outcome, _, _) = run(&engine, &plan).await;
        assert!(outcome.unwrap_err().to_string().contains("127.0.0.1:8080"));
        assert_eq!(engine.specs().len(), 1);
    }

    #[tokio::test]
    async fn a_network_removed_under_a_created_node_is_made_again_and_joined() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let engine = FakeEngine::with_starts(&[Start::Refused(StartRefusal::NetworkGone)]);
        let (outcome, created, _) = run(&engine, &plan(&cluster, PrivilegedMode::Auto, None)).await;
        outcome.unwrap();
        let networks: Vec<String> = engine
            .specs()
            .iter()
            .map(|spec| spec.network.clone())
            .collect();
        assert_eq!(networks, ["net-1", "net-2"]);
        assert_eq!(created.network.as_deref(), Some("net-2"));
    }

    #[tokio::test]
    async fn other_start_failures_are_not_retried() {
        let cluster: ClusterName = "dev".parse().unwrap();
        let engine = FakeEngine::with_starts(&[Start::Fails]);
        let (outcome, created, _) = run(&engine, &plan(&cluster, PrivilegedMode::Auto, None)).await;
        assert!(outcome.is_err());
        assert_eq!(engine.specs().len(), 1);
        assert_eq!(created.container.as_deref(), Some("kdind-dev"));
    }

    #[tokio::test]
    async fn a_volume_that_was_there_before_is_refused_and_never_removed() {
        let cluster: ClusterName = "x".parse().unwrap();
        let engine = FakeEngine {
            existing_volume: Some(HashMap::new()),
            network_exists: true,
            ..FakeEngine::default()
        };
        let (outcome, created, _) = run(&engine, &plan(&cluster, PrivilegedMode::Auto, None)).await;
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.contains("docker volume rm kdind-x-docker"),
            "{message}"
        );
        assert_eq!(created, Created::default());
        assert!(engine.specs().is_empty(), "no container is made");

        let created = Mutex::new(created);
        assert!(clean_up(&engine, &created).await.is_empty());
        assert!(
            !engine.calls().iter().any(|call| call.starts_with("remove")),
            "{:?}",
            engine.calls()
        );
    }

    #[tokio::test]
    async fn another_clusters_volume_names_its_owner() {
        let cluster: ClusterName = "x".parse().unwrap();
        let engine = FakeEngine {
            existing_volume: Some(HashMap::from([(
                labels::CLUSTER.to_owned(),
                "x".to_owned(),
            )])),
            ..FakeEngine::default()
        };
        let (outcome, created, _) = run(&engine, &plan(&cluster, PrivilegedMode::Auto, None)).await;
        let message = outcome.unwrap_err().to_string();
        assert!(message.contains("kdind down --name x"), "{message}");
        // The network this run made is still its own to remove.
        assert_eq!(created.network.as_deref(), Some("net-1"));
        assert_eq!(created.volume, None);
    }

    #[tokio::test]
    async fn clean_up_removes_what_the_run_made_and_nothing_else() {
        let engine = FakeEngine::default();
        let created = Mutex::new(Created {
            network: None,
            volume: Some("kdind-dev-docker".to_owned()),
            container: Some("kdind-dev".to_owned()),
        });
        assert!(clean_up(&engine, &created).await.is_empty());
        assert_eq!(
            engine.calls(),
            [
                "remove container kdind-dev",
                "remove volume kdind-dev-docker"
            ]
        );
        assert_eq!(*created.lock().unwrap(), Created::default());

        let engine = FakeEngine::default();
        let created = Mutex::new(Created {
            network: Some("net-1".to_owned()),
            volume: None,
            container: None,
        });
        clean_up(&engine, &created).await;
        assert_eq!(engine.calls(), ["remove network net-1"]);
    }
}
