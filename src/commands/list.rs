//! `kdind list`: the clusters on this engine, found by label.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

use super::ExitStatus;
use crate::cluster::labels::{self, Labels, Role};
use crate::docker::{ContainerInfo, Engine};
use crate::progress::Printer;
use crate::settings::OutputFormat;

/// One row of `kdind list`, and one object of its JSON output.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ClusterRow {
    pub name: String,
    pub state: String,
    pub kubernetes_version: String,
    pub api_endpoint: String,
    /// The user's published ports (`up --port`), canonical.
    pub ports: Vec<String>,
    pub container: String,
    pub created_unix: i64,
}

pub async fn run(printer: &Printer, output: OutputFormat) -> Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let containers = engine.containers_with_label(&Labels::filter(None)).await?;
    let rows = rows(containers);
    match output {
        OutputFormat::Json => {
            super::output(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?
        }
        OutputFormat::Table if rows.is_empty() => printer.note("No kdind clusters on this engine."),
        OutputFormat::Table => super::output(&table(&rows, unix_now()))?,
    }
    Ok(ExitStatus::Success)
}

fn rows(containers: Vec<ContainerInfo>) -> Vec<ClusterRow> {
    let mut rows: Vec<ClusterRow> = containers
        .into_iter()
        .filter(|container| {
            container.labels.get(labels::ROLE).map(String::as_str) == Some(Role::Node.as_str())
        })
        .map(|container| {
            let label = |key: &str| container.labels.get(key).cloned().unwrap_or_default();
            ClusterRow {
                name: label(labels::CLUSTER),
                kubernetes_version: label(labels::KUBERNETES_VERSION),
                api_endpoint: label(labels::API_ENDPOINT),
                ports: label(labels::PORTS)
                    .split(',')
                    .filter(|port| !port.is_empty())
                    .map(str::to_owned)
                    .collect(),
                state: container.state.clone(),
                container: container.name.clone(),
                created_unix: container.created_unix,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

fn table(rows: &[ClusterRow], now_unix: i64) -> String {
    let header = [
        "NAME",
        "STATE",
        "KUBERNETES",
        "API ENDPOINT",
        "PORTS",
        "AGE",
    ]
    .map(String::from);
    let mut lines = vec![header.to_vec()];
    for row in rows {
        let dash = |value: &str| {
            if value.is_empty() {
                "-".to_owned()
            } else {
                value.to_owned()
            }
        };
        lines.push(
            [
                row.name.clone(),
                dash(&row.state),
                dash(&row.kubernetes_version),
                dash(&row.api_endpoint),
                dash(&row.ports.join(",")),
                age(now_unix - row.created_unix),
            ]
            .to_vec(),
        );
    }
    super::columns(&lines)
}

/// An age the way kubectl prints it: the largest unit only.
fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn container(name: &str, labels: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            id: format!("id-{name}"),
            name: name.to_owned(),
            state: "running".to_owned(),
            created_unix: 1_000,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        }
    }

    #[test]
    fn only_node_containers_become_rows_sorted_by_name() {
        let rows = rows(vec![
            container("kdind-b", &[(labels::CLUSTER, "b"), (labels::ROLE, "node")]),
            container(
                "helper",
                &[(labels::CLUSTER, "b"), (labels::ROLE, "volume")],
            ),
            container(
                "kdind-a",
                &[
                    (labels::CLUSTER, "a"),
                    (labels::ROLE, "node"),
                    (labels::KUBERNETES_VERSION, "v1.35.1"),
                ],
            ),
        ]);
        let names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(rows[0].kubernetes_version, "v1.35.1");
        assert_eq!(rows[0].container, "kdind-a");
    }

    #[test]
    fn table_aligns_columns_and_dashes_unknowns() {
        let rows = rows(vec![container(
            "kdind-dev",
            &[(labels::CLUSTER, "dev"), (labels::ROLE, "node")],
        )]);
        let text = table(&rows, 1_000 + 7_200);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME   STATE     KUBERNETES   API ENDPOINT   PORTS   AGE"
        );
        assert_eq!(
            lines[1],
            "dev    running   -            -              -       2h"
        );
    }

    #[test]
    fn published_ports_come_from_their_label() {
        let rows = rows(vec![container(
            "kdind-dev",
            &[
                (labels::CLUSTER, "dev"),
                (labels::ROLE, "node"),
                (
                    labels::PORTS,
                    "127.0.0.1:8080:30080/tcp,0.0.0.0:53:30053/udp",
                ),
            ],
        )]);
        assert_eq!(
            rows[0].ports,
            ["127.0.0.1:8080:30080/tcp", "0.0.0.0:53:30053/udp"]
        );
        assert!(table(&rows, 1_000).contains("127.0.0.1:8080:30080/tcp,0.0.0.0:53:30053/udp"));
    }

    #[test]
    fn ages_use_the_largest_unit() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(61), "1m");
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(2 * 86400 + 5), "2d");
        assert_eq!(age(-4), "0s");
    }
}
