//! `kdind up`: the node image (built when missing), the network, volume and container, the
//! wait on the node's own phase lines under one deadline, then the kubeconfig. Whatever this
//! run created is removed again when it fails or is interrupted, unless `--retain`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use serde::Serialize;

use super::node::node_file;
use super::{output, ExitStatus, Interrupted};
use crate::artifacts::digest::hash_bytes;
use crate::cli::{OutputFormat, PrivilegedMode, UpArgs};
use crate::cluster::node::{self, NodeRequest, Security};
use crate::cluster::wait::{Phase, Startup};
use crate::cluster::{contract, kubeconfig, labels, ClusterName, Labels, Role};
use crate::docker::{Engine, StartRefusal};
use crate::progress::{Printer, Spinner};

/// What this run created, for clean-up.
#[derive(Debug, Default)]
struct Created {
    network: Option<String>,
    volume: Option<String>,
    container: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    container: String,
    image: String,
    kubernetes_version: String,
    api_server: String,
    docker_host: String,
    kubeconfig: String,
    context: String,
    security: &'static str,
    seconds: f64,
}

pub async fn run(printer: &Printer, args: UpArgs) -> Result<ExitStatus> {
    // A kubeconfig that cannot take the merge fails the run before anything is made.
    let kubeconfig_path = match &args.kubeconfig {
        Some(path) => path.clone(),
        None => kubeconfig::default_path(|key| std::env::var(key).ok())?,
    };
    kubeconfig::check_file(&kubeconfig_path).with_context(|| {
        format!(
            "fix {} or choose another file with --kubeconfig",
            kubeconfig_path.display()
        )
    })?;
    let engine = Engine::connect().await?;
    let cluster = args.name.name.clone();
    let existing = engine
        .containers_with_label(&Labels::filter(Some(&cluster)))
        .await?;
    if let Some(node) = existing.first() {
        bail!(
            "a cluster named {cluster} already exists (container {}, {}); remove it with `kdind down --name {cluster}` or choose another --name",
            node.name,
            node.state
        );
    }
    let listen = args.listen_address.to_string();
    if !node::is_loopback(&listen) {
        printer.warn(format!(
            "--listen-address {listen} publishes the API server and the inner docker (TLS, client certificates) beyond this machine"
        ));
    }

    let created = Arc::new(Mutex::new(Created::default()));
    let started = Instant::now();
    let work = create_and_wait(
        &engine,
        &args,
        &cluster,
        &kubeconfig_path,
        printer,
        &created,
    );
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        _ = tokio::signal::ctrl_c() => None,
    };
    match outcome {
        Some(Ok((report_base, security))) => {
            let report = Report {
                seconds: started.elapsed().as_secs_f64(),
                security,
                ..report_base
            };
            print_report(&report, args.output)?;
            Ok(ExitStatus::Success)
        }
        Some(Err(error)) => {
            let container = lock(&created).container.clone();
            match (args.retain, container) {
                (true, Some(container)) => printer.warn(format!(
                    "kept the failed node (--retain): inspect it with `docker logs {container}`, `kdind logs --name {cluster}` or `docker exec -it {container} bash`; remove it with `kdind down --name {cluster}`"
                )),
                _ => clean_up(&engine, &created, printer).await,
            }
            Err(error)
        }
        None => {
            clean_up(&engine, &created, printer).await;
            Err(Interrupted("removed what this run had created".to_owned()).into())
        }
    }
}

/// Unique to this run: the process and the time.
fn claim_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

fn lock(created: &Mutex<Created>) -> std::sync::MutexGuard<'_, Created> {
    created.lock().unwrap_or_else(|poison| poison.into_inner())
}

async fn create_and_wait(
    engine: &Engine,
    args: &UpArgs,
    cluster: &ClusterName,
    kubeconfig_path: &std::path::Path,
    printer: &Printer,
    created: &Mutex<Created>,
) -> Result<(Report, &'static str)> {
    // Read once: it describes the image, and its `[minikube] args` go to the node's
    // `minikube start` (with --image too).
    let config = crate::config::Config::load(args.artifacts.config.as_deref())?;
    let minikube_args = config.minikube_args.join(" ");
    let (image, kubernetes_version) = match &args.image {
        Some(reference) => {
            let info = engine.image(reference).await?.with_context(|| {
                format!("the engine has no image {reference}; build one with `kdind build`")
            })?;
            let version = info
                .labels
                .get(labels::KUBERNETES_VERSION)
                .cloned()
                .unwrap_or_default();
            (reference.clone(), version)
        }
        None => super::build::ensure_image(engine, &config, &args.artifacts, printer).await?,
    };

    let (network_id, network_created) = engine
        .ensure_network(node::NETWORK, labels::network())
        .await?;
    if network_created {
        lock(created).network = Some(network_id.clone());
    }
    // The volume first, claimed with a token of this run: a volume of that name that was
    // there before (a user's, a leftover, or a concurrent `up` of the same name) is not
    // this run's, so nothing goes on with it and nothing removes it.
    let volume = node::volume_name(cluster);
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
            "a volume named {volume} already exists, and this cluster's docker data would go              there; kdind leaves it alone ({owner} if you no longer need it), or choose another --name"
        );
    }
    lock(created).volume = Some(volume);

    let listen = args.listen_address.to_string();
    let kubeconfig_label = kubeconfig_path.display().to_string();
    let mut security = match args.privileged_mode {
        PrivilegedMode::Auto | PrivilegedMode::Always => Security::Privileged,
        PrivilegedMode::Caps => Security::Capabilities,
    };
    let mut attempts = 0;
    let (container, api_port, docker_port) = loop {
        attempts += 1;
        let api_port = match args.api_port {
            Some(port) => port,
            None => free_port(&listen)?,
        };
        let docker_port = free_port(&listen)?;
        let request = NodeRequest {
            cluster,
            image: &image,
            kubernetes_version: &kubernetes_version,
            listen_address: &listen,
            api_port,
            docker_port,
            kubeconfig: Some(&kubeconfig_label),
            minikube_args: &minikube_args,
            network_id: &network_id,
        };
        let spec = node::spec(&request, security);
        let id = engine.create_node(&spec).await?;
        lock(created).container = Some(spec.container.clone());
        let Err(error) = engine.start_container(&id).await else {
            break (spec.container, api_port, docker_port);
        };
        let refusal = error.start_refusal();
        let refused_privileged = refusal == Some(StartRefusal::Privileged);
        let port_taken = refusal == Some(StartRefusal::PortTaken);
        let retry = if refused_privileged
            && security == Security::Privileged
            && args.privileged_mode == PrivilegedMode::Auto
        {
            printer.warn(
                "the engine cannot start a privileged container here (\"unable to apply caps\": its own capability set lacks one); retrying with the explicit capability set (all but CAP_SYS_RESOURCE, no seccomp or AppArmor profile, all devices)",
            );
            security = Security::Capabilities;
            true
        } else {
            port_taken && args.api_port.is_none() && attempts < 3
        };
        if !retry {
            return Err(error.into());
        }
        engine.remove_container(&id).await?;
        lock(created).container = None;
    };

    let node_kubeconfig = wait_until_ready(engine, &container, args.wait, printer).await?;

    let server = format!("https://{}", node::host_port(&listen, api_port));
    let context = container.clone();
    let rewritten = kubeconfig::rewrite(&node_kubeconfig, &context, &server)?;
    // kubectl's lock waits with a blocking sleep: off the async runtime's threads.
    let target = kubeconfig_path.to_owned();
    tokio::task::spawn_blocking(move || kubeconfig::merge_into_file(&target, &rewritten))
        .await
        .context("the kubeconfig writer stopped")??;
    let security_name = match security {
        Security::Privileged => "privileged",
        Security::Capabilities => "capabilities",
    };
    Ok((
        Report {
            name: cluster.to_string(),
            container,
            image,
            kubernetes_version,
            api_server: server,
            docker_host: format!("tcp://{}", node::host_port(&listen, docker_port)),
            kubeconfig: kubeconfig_path.display().to_string(),
            context,
            security: security_name,
            seconds: 0.0,
        },
        security_name,
    ))
}

/// A port nothing listens on now, on the address the node will be published on.
fn free_port(address: &str) -> Result<u16> {
    let listener = std::net::TcpListener::bind((address, 0))
        .with_context(|| format!("cannot find a free port on {address}"))?;
    Ok(listener.local_addr()?.port())
}

/// Follow the node's log until it says `ready`, fails, stops, or the deadline passes, and
/// return the kubeconfig it published. The staged kubeconfig is fetched while readiness is
/// decided and used when its sha256 is the one the node published.
async fn wait_until_ready(
    engine: &Engine,
    container: &str,
    deadline: Duration,
    printer: &Printer,
) -> Result<String> {
    let mut startup = Startup::default();
    let mut prefetch = None;
    let spinner = printer
        .animated()
        .then(|| Spinner::new("node: container start"));
    let followed = tokio::time::timeout(deadline, async {
        let mut lines = std::pin::pin!(engine.log_lines(container, true, None));
        while let Some(line) = lines.next().await {
            let line = line?;
            if printer.verbose() > 0 {
                match &spinner {
                    Some(spinner) => spinner.println(&line),
                    None => printer.detail(&line),
                }
            }
            match startup.line(&line) {
                Some(Phase::Stage(stage)) => {
                    let message = format!("node: {stage}");
                    match &spinner {
                        Some(spinner) => spinner.set(&message),
                        None => printer.note(&message),
                    }
                }
                Some(Phase::ShuttingDown) => {
                    let message = format!("node: shutting down during stage {}", startup.stage());
                    match &spinner {
                        Some(spinner) => spinner.set(&message),
                        None => printer.note(&message),
                    }
                }
                Some(Phase::KubeconfigStaged) => {
                    let engine = engine.clone();
                    let container = container.to_owned();
                    prefetch = Some(tokio::spawn(async move {
                        node_file(&engine, &container, contract::STAGED_KUBECONFIG).await
                    }));
                }
                Some(Phase::Ready) => {
                    match &spinner {
                        Some(spinner) => spinner.set("node: ready"),
                        None => printer.note("node: ready"),
                    }
                    return anyhow::Ok(true);
                }
                _ => {}
            }
        }
        anyhow::Ok(false)
    })
    .await;
    if let Some(spinner) = spinner {
        spinner.clear();
    }
    match followed {
        Ok(Ok(true)) => {
            if let (Some(prefetched), Some(published)) = (prefetch, startup.published()) {
                if let Ok(Ok(bytes)) = prefetched.await {
                    if hash_bytes(&bytes) == published {
                        return String::from_utf8(bytes)
                            .context("the node's kubeconfig is not UTF-8");
                    }
                }
            }
            let bytes = node_file(engine, container, contract::KUBECONFIG).await?;
            String::from_utf8(bytes).context("the node's kubeconfig is not UTF-8")
        }
        Ok(Ok(false)) => {
            // The log ended: the node stopped.
            let state = engine.container_state(container).await?;
            let why = match &state {
                Some(state) if state.oom_killed => {
                    format!(
                        "was killed for lack of memory (exit code {})",
                        state.exit_code
                    )
                }
                Some(state) => format!("exited with code {}", state.exit_code),
                None => "was removed".to_owned(),
            };
            let reason = match startup.failure() {
                Some((stage, reason)) if !reason.is_empty() => {
                    format!("the node failed at stage `{stage}`: {reason}")
                }
                _ if startup.shut_down() => format!(
                    "the node was shut down from outside (`docker stop`, `kdind down` or an \
                     engine restart) during stage `{}`",
                    startup.stage()
                ),
                _ => format!("the node stopped during stage `{}`", startup.stage()),
            };
            bail!(
                "{reason}; the container {why}. Its last log lines:\n{}",
                startup.tail()
            )
        }
        Ok(Err(error)) => Err(error),
        Err(_) => bail!(
            "the node was not Ready within {}: it is stuck in stage `{}`. Its last log lines:\n{}",
            humanize(deadline),
            startup.stage(),
            startup.tail()
        ),
    }
}

fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

async fn clean_up(engine: &Engine, created: &Mutex<Created>, printer: &Printer) {
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
        // Left alone when another cluster's node joined it meanwhile.
        if let Err(error) = engine.remove_network(network).await {
            problems.push(error.to_string());
        }
    }
    if problems.is_empty() {
        printer.note("removed what this run had created");
    } else {
        printer.warn(format!(
            "could not remove everything this run created ({}); `kdind down` finds the rest by label",
            problems.join("; ")
        ));
    }
}

fn print_report(report: &Report, format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Json => output(&format!("{}\n", serde_json::to_string_pretty(report)?)),
        OutputFormat::Table => output(&format!(
            "cluster {name} is ready ({seconds:.1} s)\n  context      {context} in {kubeconfig}\n  API server   {api}\n  docker       {docker} (TLS; `eval \"$(kdind env --name {name})\"`)\n  node         {container} ({image}, Kubernetes {version})\n",
            name = report.name,
            seconds = report.seconds,
            context = report.context,
            kubeconfig = report.kubeconfig,
            api = report.api_server,
            docker = report.docker_host,
            container = report.container,
            image = report.image,
            version = report.kubernetes_version,
        )),
    }
}
