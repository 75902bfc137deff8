//! `kdind list` against a real engine: it finds kdind's containers by label and nothing else.

use crate::support::{engine_objects_lock, kdind, run, text, unique, Docker};

#[test]
fn engine_list_shows_labelled_nodes_and_no_unrelated_containers() {
    let Some(docker) =
        Docker::require("engine_list_shows_labelled_nodes_and_no_unrelated_containers")
    else {
        return;
    };
    let _lock = engine_objects_lock();
    let unrelated = docker.create_container(&unique("unrelated"), &[("some.other.tool", "x")]);
    let cluster = unique("listed");
    let node = docker.create_container(
        &format!("kdind-{cluster}"),
        &[
            ("dev.kdind.cluster", &cluster),
            ("dev.kdind.role", "node"),
            ("dev.kdind.kubernetes-version", "v1.35.1"),
        ],
    );

    let (output, description) = run(kdind().args(["list", "-o", "json"]));
    assert!(output.status.success(), "{description}");
    let rows: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("list -o json prints JSON");
    let rows = rows.as_array().expect("a JSON array");
    let ours: Vec<_> = rows
        .iter()
        .filter(|row| row["name"] == cluster.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{description}");
    assert_eq!(ours[0]["container"], node.name.as_str());
    assert_eq!(ours[0]["state"], "created");
    assert_eq!(ours[0]["kubernetes_version"], "v1.35.1");
    assert!(
        rows.iter()
            .all(|row| row["container"] != unrelated.name.as_str()),
        "an unrelated container was listed: {description}"
    );

    let (output, description) = run(kdind().arg("list"));
    assert!(output.status.success(), "{description}");
    let table = text(&output.stdout);
    assert!(table.starts_with("NAME"), "{description}");
    assert!(
        table.lines().any(|line| line.starts_with(&cluster)),
        "{description}"
    );
    assert!(!table.contains(&unrelated.name), "{description}");
}
