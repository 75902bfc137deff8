//! `kdind up`: the node image (built when missing), then the node (created, started and
//! followed to Ready by the provider), then the kubeconfig. Whatever this run created is
//! removed again when it fails or is interrupted, unless `--retain`.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{output, ExitStatus, Interrupted};
use crate::cluster::labels::{self, Labels};
use crate::cluster::spec::{NodeSettings, PortMapping};
use crate::cluster::{kubeconfig, spec, ClusterName};
use crate::config::Config;
use crate::docker::Engine;
use crate::doctor::{self, Finding, Severity};
use crate::image::ensure::ensure_image;
use crate::progress::Printer;
use crate::provider::{self, host, Created, Plan};
use crate::settings::{OutputFormat, UpSettings};

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

pub async fn run(printer: &Printer, settings: UpSettings) -> Result<ExitStatus> {
    // A kubeconfig that cannot take the merge fails the run before anything is made.
    let kubeconfig_path = match &settings.kubeconfig {
        Some(path) => path.clone(),
        None => kubeconfig::default_path(crate::environment::var)?,
    };
    kubeconfig::check_file(&kubeconfig_path).with_context(|| {
        format!(
            "fix {} or choose another file with --kubeconfig",
            kubeconfig_path.display()
        )
    })?;
    let engine = Engine::connect().await?;
    let cluster = &settings.cluster;
    let existing = engine
        .containers_with_label(&Labels::filter(Some(cluster)))
        .await?;
    if let Some(node) = existing.first() {
        bail!(
            "a cluster named {cluster} already exists (container {}, {}); remove it with `kdind down --name {cluster}` or choose another --name",
            node.name,
            node.state
        );
    }
    let (listen, server_host) = addresses(&engine, &settings);
    match (engine.remote_host(), settings.listen_address) {
        (Some(remote), None) => printer.warn(format!(
            "the engine is on {remote}, not this machine: the API server and the inner docker are published on all of its addresses, so they are reachable beyond it (both require client certificates; --listen-address narrows it)"
        )),
        _ if !spec::is_loopback(&listen) => printer.warn(format!(
            "--listen-address {listen} publishes the API server and the inner docker (TLS, client certificates) beyond this machine"
        )),
        _ => {}
    }

    let created = Mutex::new(Created::default());
    let started = Instant::now();
    let published = Published {
        listen,
        server_host,
    };
    let work = create_and_wait(
        &engine,
        &settings,
        &published,
        &kubeconfig_path,
        printer,
        &created,
    );
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        _ = tokio::signal::ctrl_c() => None,
    };
    match outcome {
        Some(Ok(report)) => {
            let report = Report {
                seconds: started.elapsed().as_secs_f64(),
                ..report
            };
            print_report(&report, settings.output)?;
            Ok(ExitStatus::Success)
        }
        Some(Err(error)) => {
            let container = created
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .container
                .clone();
            match (settings.retain, container) {
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

/// Where the node's ports are published, and the name clients reach them by.
struct Published {
    listen: String,
    server_host: String,
}

async fn create_and_wait(
    engine: &Engine,
    settings: &UpSettings,
    published: &Published,
    kubeconfig_path: &std::path::Path,
    printer: &Printer,
    created: &Mutex<Created>,
) -> Result<Report> {
    let cluster: &ClusterName = &settings.cluster;
    // Read once: it describes the image, and its `[minikube] args` go to the node's
    // `minikube start`.
    let config = Config::load(
        settings.source.config.as_deref(),
        settings.source.kubernetes_version.as_deref(),
    )?;
    let minikube_args = config.minikube_start_args().join(" ");
    let wait = settings.wait.unwrap_or(config.cluster.wait);
    let ports = if settings.ports.is_empty() {
        &config.cluster.ports
    } else {
        &settings.ports
    };
    warn_beyond_loopback(ports, printer);
    let (image, kubernetes_version) = match &settings.image {
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
        None => (
            ensure_image(engine, &config, &settings.source, printer).await?,
            config.kubernetes_version.clone(),
        ),
    };

    // The doctor's blocking findings about the host stop the run before anything is made.
    let data_root = engine.info().await?.data_root;
    let findings = doctor::host_findings(
        &host::probe_host(engine, &image, &data_root).await,
        &data_root,
    );
    for found in &findings {
        if found.severity == Severity::Warning && printer.verbose() > 0 {
            printer.warn(format!("{}: {}", found.check, found.summary));
        }
    }
    let blocking: Vec<Finding> = findings
        .into_iter()
        .filter(|found| found.severity == Severity::Blocking)
        .collect();
    if !blocking.is_empty() {
        bail!(
            "the engine's host cannot take this cluster (`kdind doctor` checks everything):\n{}",
            super::doctor::render(&blocking).trim_end()
        );
    }

    let proxy = spec::proxy_environment(crate::environment::var);
    if !proxy.is_empty() {
        printer.note(format!(
            "the node's docker and minikube use the proxy settings of this environment ({}); NO_PROXY gains the cluster's own addresses",
            proxy
                .iter()
                .filter_map(|line| line.split_once('=').map(|(key, _)| key))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let Published {
        listen,
        server_host,
    } = published;
    let kubeconfig_label = kubeconfig_path.display().to_string();
    let plan = Plan {
        node: NodeSettings {
            cluster,
            image: &image,
            kubernetes_version: &kubernetes_version,
            listen_address: listen,
            server_host,
            kubeconfig: Some(&kubeconfig_label),
            minikube_args: &minikube_args,
            ports,
            proxy: &proxy,
            wait,
        },
        api_port: settings.api_port,
        privileged_mode: settings.privileged_mode,
    };
    let warn = |text: &str| printer.warn(text);
    let choose_port = |address: &str| match engine.remote_host() {
        // Nothing here can tell which ports are free on the engine's host: a random one,
        // and another when the engine says it is taken.
        Some(_) => Ok(random_port()),
        None => free_port(address),
    };
    let node = provider::provision(engine, &plan, &choose_port, &warn, created).await?;

    let node_kubeconfig =
        provider::wait_until_ready(engine, &node.container, wait, printer, 0).await?;
    let server = format!("https://{}", spec::host_port(server_host, node.api_port));
    let context = node.container.clone();
    // Both at once: the kubeconfig is what the caller waits for.
    let (restart_policy, merged) = tokio::join!(
        engine.set_restart_policy(&node.container, spec::READY_RESTART_POLICY),
        super::merge_kubeconfig(
            kubeconfig_path.to_owned(),
            &node_kubeconfig,
            &context,
            &server,
        )
    );
    restart_policy?;
    merged?;
    Ok(Report {
        name: cluster.to_string(),
        container: node.container,
        image,
        kubernetes_version,
        api_server: server,
        docker_host: format!("tcp://{}", spec::host_port(server_host, node.docker_port)),
        kubeconfig: kubeconfig_path.display().to_string(),
        context,
        security: node.security.as_str(),
        seconds: 0.0,
    })
}

fn warn_beyond_loopback(ports: &[PortMapping], printer: &Printer) {
    for mapping in ports
        .iter()
        .filter(|mapping| !mapping.address.is_loopback())
    {
        printer.warn(format!(
            "port {mapping} publishes node port {} beyond this machine, with no authentication of kdind's",
            mapping.node_port
        ));
    }
}

/// Where the node's ports are published, and the name or address clients reach them by:
/// a remote engine publishes on all of its host's addresses and is reached by its host
/// name; a local one on 127.0.0.1.
fn addresses(engine: &Engine, settings: &UpSettings) -> (String, String) {
    let remote = engine.remote_host();
    let listen = settings.listen_address.unwrap_or_else(|| match remote {
        Some(_) => std::net::IpAddr::from([0, 0, 0, 0]),
        None => std::net::IpAddr::from([127, 0, 0, 1]),
    });
    let server_host = match (&settings.server_host, remote) {
        (Some(host), _) => host.clone(),
        (None, Some(remote)) => remote.to_owned(),
        (None, None) if listen.is_unspecified() => "127.0.0.1".to_owned(),
        (None, None) => listen.to_string(),
    };
    (listen.to_string(), server_host)
}

/// A port in 40000-59999, different on each call.
fn random_port() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    let mixed = nanos.wrapping_mul(2_654_435_761) ^ std::process::id();
    40_000 + (mixed % 20_000) as u16
}

/// A port nothing listens on now, on the address the node will be published on.
fn free_port(address: &str) -> Result<u16> {
    let listener = std::net::TcpListener::bind((address, 0))
        .with_context(|| format!("cannot find a free port on {address}"))?;
    Ok(listener.local_addr()?.port())
}

async fn clean_up(engine: &Engine, created: &Mutex<Created>, printer: &Printer) {
    let problems = provider::clean_up(engine, created).await;
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
