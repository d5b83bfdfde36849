//! `kpath review` of Kustomize layouts with the pinned real kubectl: a change to a base reviews every root that
//! uses it (one diff per environment); a change to one overlay's patch reviews only that root; findings land on
//! the patch line or the base line, merged across the roots that share them.

#[path = "support/bin.rs"]
mod bin;

use std::collections::BTreeSet;
use std::path::Path;

use bin::{Run, git, kpath, write};
use serde_json::Value;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app.kubernetes.io/name: web}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: web}
  template:
    metadata:
      labels: {app.kubernetes.io/name: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0.0
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {memory: 128Mi}
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
          livenessProbe:
            httpGet: {path: /healthz, port: 8080}
";

/// A repository with one base used by three overlays (dev, staging, prod), each in its own namespace; prod
/// patches the memory.
fn three_overlays(root: &Path) {
    git(root, &["init", "-q"]);
    write(root, "base/deployment.yaml", DEPLOYMENT);
    write(root, "base/kustomization.yaml", "resources:\n  - deployment.yaml\n");
    for env in ["dev", "staging", "prod"] {
        let patch = if env == "prod" { "patches:\n  - path: memory.yaml\n" } else { "" };
        write(
            root,
            &format!("overlays/{env}/kustomization.yaml"),
            &format!("namespace: web-{env}\nresources:\n  - ../../base\n{patch}"),
        );
    }
    write(
        root,
        "overlays/prod/memory.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          resources:\n            requests: {memory: 256Mi}\n            limits: {memory: 256Mi}\n",
    );
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
}

fn review(root: &Path) -> Value {
    json(&kpath(
        &["review", "--repo", ".", "--base", "HEAD~1", "--head", "HEAD", "--format", "json", "--no-cache"],
        root,
    ))
}

fn changed_units(plan: &Value) -> BTreeSet<String> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["kind"] != "unchanged")
        .map(|c| c["environment"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_change_to_a_base_reviews_every_root_that_uses_it() {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    three_overlays(root);
    let text = std::fs::read_to_string(root.join("base/deployment.yaml")).expect("read");
    std::fs::write(root.join("base/deployment.yaml"), text.replace("web:1.0.0", "web:latest")).expect("write");
    git(root, &["commit", "-q", "-am", "latest"]);
    let plan = review(root);
    assert_eq!(
        changed_units(&plan),
        BTreeSet::from(["overlays/dev".to_string(), "overlays/prod".to_string(), "overlays/staging".to_string()]),
        "{plan}"
    );
    // One finding, on the base's line, listing the three environments.
    let latest: Vec<&Value> =
        plan["findings"].as_array().expect("findings").iter().filter(|f| f["rule"] == "image-latest").collect();
    assert_eq!(latest.len(), 1, "{plan}");
    assert_eq!(latest[0]["file"], "base/deployment.yaml");
    assert_eq!(latest[0]["line"], 15);
    assert_eq!(latest[0]["status"], "new");
    let envs: BTreeSet<&str> =
        latest[0]["environments"].as_array().expect("environments").iter().filter_map(Value::as_str).collect();
    assert_eq!(envs, BTreeSet::from(["overlays/dev", "overlays/prod", "overlays/staging"]));
    // The comment is on the changed base line.
    let comments: Vec<(String, u64)> = plan["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| (c["path"].as_str().unwrap_or("").to_string(), c["line"].as_u64().unwrap_or(0)))
        .collect();
    assert!(comments.contains(&("base/deployment.yaml".to_string(), 15)), "{comments:?}");
}

#[test]
fn a_change_to_one_patch_reviews_only_that_root() {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    three_overlays(root);
    let patch = std::fs::read_to_string(root.join("overlays/prod/memory.yaml")).expect("read");
    std::fs::write(
        root.join("overlays/prod/memory.yaml"),
        patch.replace("limits: {memory: 256Mi}", "limits: {memory: 200Mi}"),
    )
    .expect("write");
    git(root, &["commit", "-q", "-am", "less memory"]);
    let plan = review(root);
    assert_eq!(changed_units(&plan), BTreeSet::from(["overlays/prod".to_string()]), "{plan}");
    // The limit below the request is placed on the patch's lines (the request and the limit it sets), and blocks.
    let on_patch: Vec<&Value> = plan["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == "new" && f["file"] == "overlays/prod/memory.yaml")
        .collect();
    assert!(!on_patch.is_empty(), "{plan}");
    assert!(on_patch.iter().all(|f| f["line"] == 11 || f["line"] == 12), "{on_patch:?}");
    assert!(on_patch.iter().any(|f| f["line"] == 12 && f["rule"] == "resources-memory-limit"), "{on_patch:?}");
    assert_eq!(plan["conclusion"], "failure", "{plan}");
}
