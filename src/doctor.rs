//! The doctor's judgement, pure: facts about the engine and its host in, findings out, each
//! with the exact fix. `kdind doctor` shows them all; `kdind up` checks the host with the
//! node image it is about to start and stops on the blocking ones before creating anything.

use serde::Serialize;

use crate::docker::EngineInfo;

/// Free space where the engine keeps its data below which `up` stops: the node's docker
/// volume takes about a gigabyte at the first start (the preloaded images, unpacked).
pub const BLOCKING_FREE_BYTES: u64 = 2 << 30;
/// Below this, a warning: images built into the cluster and a few restarts fill it.
pub const LOW_FREE_BYTES: u64 = 10 << 30;
/// What a node and the tools around it need: kubelet, kube-proxy and every container
/// watching files (the values kind recommends, since a host's defaults run out).
pub const INOTIFY_WATCHES: u64 = 524_288;
pub const INOTIFY_INSTANCES: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warning,
    /// `up` would fail or do harm.
    Blocking,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Blocking => "blocking",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub summary: String,
    /// The exact thing to do, when something is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn finding(
    check: &'static str,
    severity: Severity,
    summary: String,
    fix: Option<String>,
) -> Finding {
    Finding {
        check,
        severity,
        summary,
        fix,
    }
}

/// What a throwaway container on the engine's host reads: inotify limits and the free space
/// where the engine keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostProbe {
    pub inotify_watches: u64,
    pub inotify_instances: u64,
    pub free_bytes: u64,
}

/// Where the probe mounts the engine's data directory.
pub const PROBE_DATA: &str = "/kdind-engine-data";

/// The probe's command: the two limits, then `df -Pk` of the engine's data directory.
pub fn probe_script() -> String {
    format!(
        "cat /proc/sys/fs/inotify/max_user_watches /proc/sys/fs/inotify/max_user_instances && df -Pk {PROBE_DATA} | tail -n 1"
    )
}

/// The probe's output: two numbers, then a `df -P` line (available KiB in its 4th column).
pub fn parse_probe(output: &str) -> Option<HostProbe> {
    let mut lines = output
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty());
    let inotify_watches = lines.next()?.parse().ok()?;
    let inotify_instances = lines.next()?.parse().ok()?;
    let available_kib: u64 = lines.next()?.split_whitespace().nth(3)?.parse().ok()?;
    Some(HostProbe {
        inotify_watches,
        inotify_instances,
        free_bytes: available_kib.saturating_mul(1024),
    })
}

/// The networks named `kdind` on the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFact {
    Missing,
    Ours,
    /// One network of that name that kdind did not create.
    Foreign,
    Several(usize),
}

/// Everything the doctor found out; `Err` holds why a fact could not be found.
#[derive(Debug, Clone)]
pub struct Facts {
    pub engine: String,
    pub server_version: String,
    pub api_version: String,
    pub info: EngineInfo,
    /// Whether the engine grants privileged containers.
    pub privileged: Result<bool, String>,
    pub host: Result<HostProbe, String>,
    pub network: Result<NetworkFact, String>,
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// The finding about an engine that does not answer.
pub fn unreachable(error: &str) -> Finding {
    finding(
        "engine",
        Severity::Blocking,
        format!("not reachable: {error}"),
        Some("start dockerd, or point DOCKER_HOST at a running engine".to_owned()),
    )
}

/// The findings about the host alone (what `up` checks before it starts anything).
pub fn host_findings(host: &Result<HostProbe, String>, data_root: &str) -> Vec<Finding> {
    let probe = match host {
        Ok(probe) => probe,
        Err(why) => {
            return vec![finding(
                "host",
                Severity::Warning,
                format!("inotify limits and free disk not checked: {why}"),
                None,
            )]
        }
    };
    let mut findings = Vec::new();
    let free = probe.free_bytes;
    let (severity, fix) = if free < BLOCKING_FREE_BYTES {
        (
            Severity::Blocking,
            Some(format!(
                "free at least {} there: `docker system prune` removes stopped containers, unused networks and dangling images; `docker image prune -a` every unused image",
                gib(BLOCKING_FREE_BYTES)
            )),
        )
    } else if free < LOW_FREE_BYTES {
        (
            Severity::Warning,
            Some("`docker system prune` frees space the engine no longer needs".to_owned()),
        )
    } else {
        (Severity::Ok, None)
    };
    findings.push(finding(
        "disk",
        severity,
        format!(
            "{} free where the engine keeps its data ({data_root})",
            gib(free)
        ),
        fix,
    ));
    let low =
        probe.inotify_watches < INOTIFY_WATCHES || probe.inotify_instances < INOTIFY_INSTANCES;
    findings.push(finding(
        "inotify",
        if low { Severity::Warning } else { Severity::Ok },
        format!(
            "fs.inotify.max_user_watches {} (a cluster wants {INOTIFY_WATCHES}), max_user_instances {} (wants {INOTIFY_INSTANCES}){}",
            probe.inotify_watches,
            probe.inotify_instances,
            if low { ": pods fail with \"too many open files\" when they run out" } else { "" }
        ),
        low.then(|| format!(
            "on the engine's host: `sudo sysctl -w fs.inotify.max_user_watches={INOTIFY_WATCHES} fs.inotify.max_user_instances={INOTIFY_INSTANCES}`, and the same two lines in /etc/sysctl.d/99-kdind.conf to keep them"
        )),
    ));
    findings
}

/// Every finding, in a fixed order.
pub fn findings(facts: &Facts) -> Vec<Finding> {
    let info = &facts.info;
    let mut findings = vec![finding(
        "engine",
        Severity::Ok,
        format!(
            "dockerd {} (API {}) at {}{}",
            facts.server_version,
            facts.api_version,
            facts.engine,
            if info.operating_system.is_empty() {
                String::new()
            } else {
                format!(", {} (kernel {})", info.operating_system, info.kernel)
            }
        ),
        None,
    )];
    findings.push(match &facts.privileged {
        Ok(true) => finding("privileged", Severity::Ok, "privileged containers are granted".to_owned(), None),
        Ok(false) => finding(
            "privileged",
            Severity::Warning,
            "the engine refuses privileged containers (\"unable to apply caps\": its own capability set lacks one); kdind up falls back to the explicit capability set (all but CAP_SYS_RESOURCE) and the node clamps OOM scores".to_owned(),
            Some("nothing to do for kdind; to run privileged, run the engine with its full capability set (not inside a container or VM that drops CAP_SYS_RESOURCE)".to_owned()),
        ),
        Err(why) => finding("privileged", Severity::Warning, format!("not checked: {why}"), None),
    });
    findings.push(match info.cgroup_version.as_str() {
        "2" => finding("cgroup", Severity::Ok, "cgroup v2".to_owned(), None),
        "1" => finding(
            "cgroup",
            Severity::Warning,
            "cgroup v1: this Kubernetes still runs on it, newer releases drop it".to_owned(),
            Some("boot the engine's host with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line)".to_owned()),
        ),
        other => finding("cgroup", Severity::Warning, format!("the engine did not say which cgroup version its host runs ({other:?})"), None),
    });
    findings.extend(host_findings(&facts.host, &info.data_root));
    findings.push(match &facts.network {
        Ok(NetworkFact::Missing) => finding("network", Severity::Ok, "no network kdind yet: the first kdind up creates it".to_owned(), None),
        Ok(NetworkFact::Ours) => finding("network", Severity::Ok, "network kdind (kdind's)".to_owned(), None),
        Ok(NetworkFact::Foreign) => finding(
            "network",
            Severity::Warning,
            "a network named kdind exists that kdind did not create: nodes will join it".to_owned(),
            Some("if it is not meant for kdind's nodes, remove it: `docker network rm kdind`".to_owned()),
        ),
        Ok(NetworkFact::Several(count)) => finding(
            "network",
            Severity::Warning,
            format!("{count} networks are named kdind: the engine refuses to start a container on an ambiguous name"),
            Some("remove the extra ones: `docker network ls --filter name=^kdind$` lists them, `docker network rm ID` removes one".to_owned()),
        ),
        Err(why) => finding("network", Severity::Warning, format!("not checked: {why}"), None),
    });
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            engine: "unix:///var/run/docker.sock".to_owned(),
            server_version: "27.5.1".to_owned(),
            api_version: "1.47".to_owned(),
            info: EngineInfo {
                cgroup_version: "2".to_owned(),
                data_root: "/var/lib/docker".to_owned(),
                operating_system: "Debian GNU/Linux 13 (trixie)".to_owned(),
                kernel: "6.12.0".to_owned(),
            },
            privileged: Ok(true),
            host: Ok(HostProbe {
                inotify_watches: 1_048_576,
                inotify_instances: 8192,
                free_bytes: 100 << 30,
            }),
            network: Ok(NetworkFact::Ours),
        }
    }

    fn worst(findings: &[Finding]) -> Severity {
        findings.iter().map(|found| found.severity).max().unwrap()
    }

    #[test]
    fn a_good_host_is_all_ok() {
        let found = findings(&facts());
        assert_eq!(worst(&found), Severity::Ok, "{found:?}");
        let checks: Vec<&str> = found.iter().map(|found| found.check).collect();
        assert_eq!(
            checks,
            [
                "engine",
                "privileged",
                "cgroup",
                "disk",
                "inotify",
                "network"
            ]
        );
        assert!(found[0].summary.contains("dockerd 27.5.1 (API 1.47)"));
    }

    #[test]
    fn too_little_disk_blocks_and_says_how_to_free_it() {
        let mut facts = facts();
        facts.host = Ok(HostProbe {
            free_bytes: 1 << 30,
            ..facts.host.unwrap()
        });
        let found = findings(&facts);
        let disk = found.iter().find(|found| found.check == "disk").unwrap();
        assert_eq!(disk.severity, Severity::Blocking);
        assert!(disk.summary.starts_with("1.0 GiB free"), "{}", disk.summary);
        assert!(disk.fix.as_deref().unwrap().contains("docker system prune"));

        facts.host = Ok(HostProbe {
            free_bytes: 5 << 30,
            ..facts.host.unwrap()
        });
        assert_eq!(worst(&findings(&facts)), Severity::Warning);
    }

    #[test]
    fn low_inotify_limits_warn_with_the_sysctl_to_run() {
        let mut facts = facts();
        facts.host = Ok(HostProbe {
            inotify_watches: 8192,
            inotify_instances: 128,
            free_bytes: 100 << 30,
        });
        let found = findings(&facts);
        let inotify = found.iter().find(|found| found.check == "inotify").unwrap();
        assert_eq!(inotify.severity, Severity::Warning);
        assert!(inotify.fix.as_deref().unwrap().contains(
            "sysctl -w fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512"
        ));
    }

    #[test]
    fn refused_privileges_cgroup_v1_and_foreign_networks_warn() {
        let mut facts = facts();
        facts.privileged = Ok(false);
        facts.info.cgroup_version = "1".to_owned();
        facts.network = Ok(NetworkFact::Several(2));
        let found = findings(&facts);
        let warned: Vec<&str> = found
            .iter()
            .filter(|found| found.severity == Severity::Warning)
            .map(|found| found.check)
            .collect();
        assert_eq!(warned, ["privileged", "cgroup", "network"]);
        assert!(found
            .iter()
            .all(|found| found.severity != Severity::Warning || found.fix.is_some()));
    }

    #[test]
    fn the_probe_output_parses() {
        let probe =
            parse_probe("524288\n512\n/dev/sda1 1000000 400000 600000 40% /kdind-engine-data\n")
                .unwrap();
        assert_eq!(
            probe,
            HostProbe {
                inotify_watches: 524_288,
                inotify_instances: 512,
                free_bytes: 600_000 * 1024
            }
        );
        assert!(parse_probe("524288\n").is_none());
        assert!(parse_probe("x\n1\n/ 1 2 3 4 /").is_none());
    }

    #[test]
    fn an_unchecked_host_is_a_warning_not_a_block() {
        let found = host_findings(&Err("no node image yet".to_owned()), "/var/lib/docker");
        assert_eq!(worst(&found), Severity::Warning);
    }
}
