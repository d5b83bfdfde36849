//! `kpath review` judges relations between the objects a change touches and the unchanged ones beside them
//! as `kpath check` of the same tree does: an autoscaler added beside an unchanged Deployment has its target,
//! a Deployment's unchanged `replicas:` conflicts with a new autoscaler, and a `kpath:ignore` on an unchanged
//! line still holds. Real git repositories written by each test; both git and directory sources.

#[path = "support/bin.rs"]
mod bin;

use std::path::Path;

use bin::{Run, git, kpath, write};
use serde_json::Value;

fn deployment(replicas: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\n  namespace: shop\n  labels:\n    \
         app: checkout\nspec:\n{replicas}  selector:\n    matchLabels:\n      app: checkout\n  template:\n    \
         metadata:\n      labels:\n        app: checkout\n    spec:\n      containers:\n        - name: checkout\n    \
         \x20     image: ghcr.io/octo/checkout:1.4.2\n          readinessProbe:\n            httpGet: {{path: /ready, \
         port: 8080}}\n          livenessProbe:\n            httpGet: {{path: /live, port: 8080}}\n          \
         resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n            limits: {{memory: \
         128Mi}}\n{extra}"
    )
}

const HPA: &str = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: checkout\n  \
namespace: shop\n  labels:\n    app: checkout\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: \
Deployment\n    name: checkout\n  minReplicas: 2\n  maxReplicas: 10\n  metrics:\n    - type: Resource\n      \
resource:\n        name: cpu\n        target:\n          type: Utilization\n          averageUtilization: 70\n";

/// A repository whose `main` holds `base` and whose `pr` branch adds or replaces `change`.
fn repository(base: &[(&str, &str)], change: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q"]);
    for (name, text) in base {
        write(dir.path(), name, text);
    }
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "--allow-empty", "-m", "base"]);
    git(dir.path(), &["checkout", "-q", "-b", "pr"]);
    for (name, text) in change {
        write(dir.path(), name, text);
    }
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "the change"]);
    dir
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

fn review(dir: &Path) -> Value {
    json(&kpath(&["review", "--repo", ".", "--base", "main", "--head", "pr", "--format", "json", "--no-cache"], dir))
}

/// The same review from two directories (`--base-dir`/`--head-dir`).
fn review_dirs(base: &[(&str, &str)], change: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in base {
        write(&dir.path().join("base"), name, text);
        write(&dir.path().join("head"), name, text);
    }
    for (name, text) in change {
        write(&dir.path().join("head"), name, text);
    }
    let run =
        kpath(&["review", "--base-dir", "base", "--head-dir", "head", "--format", "json", "--no-cache"], dir.path());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

fn check(dir: &Path) -> Value {
    json(&kpath(&["check", ".", "--format", "json", "--no-cache"], dir))
}

/// (rule, file, line, status) of the plan's findings that count.
fn findings(plan: &Value) -> Vec<(String, String, u64, String)> {
    bin::counted(plan)
        .into_iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn rules_of(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["rule"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn an_autoscaler_added_beside_an_unchanged_deployment_has_its_target() {
    let deployment = deployment("", "");
    let base = [("apps/checkout/deployment.yaml", deployment.as_str())];
    let change = [("apps/checkout/hpa.yaml", HPA)];
    let dir = repository(&base, &change);
    assert!(!rules_of(&check(dir.path())).contains(&"hpa-target-missing".to_string()));
    for plan in [review(dir.path()), review_dirs(&base, &change)] {
        let found = findings(&plan);
        assert!(!found.iter().any(|(rule, ..)| rule == "hpa-target-missing"), "{found:?}");
        assert_eq!(plan["conclusion"], "success", "{found:?}");
    }
}

#[test]
fn a_new_autoscaler_conflicts_with_the_unchanged_replicas_beside_it() {
    let deployment = deployment("  replicas: 3\n", "");
    let base = [("apps/checkout/deployment.yaml", deployment.as_str())];
    let change = [("apps/checkout/hpa.yaml", HPA)];
    let dir = repository(&base, &change);
    for plan in [review(dir.path()), review_dirs(&base, &change)] {
        let found = findings(&plan);
        let conflict: Vec<_> = found.iter().filter(|(rule, ..)| rule == "hpa-replicas-conflict").collect();
        // New, on the unchanged Deployment's `replicas:` line: not on the diff, so in the summary.
        assert_eq!(
            conflict,
            [&("hpa-replicas-conflict".to_string(), "apps/checkout/deployment.yaml".to_string(), 9, "new".to_string())],
            "{found:?}"
        );
        assert_eq!(plan["conclusion"], "failure");
        // The message names where the other object is, as the repository has it.
        let message = plan["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["rule"] == "hpa-replicas-conflict")
            .and_then(|f| f["message"].as_str())
            .unwrap_or("");
        assert!(message.contains("HorizontalPodAutoscaler `checkout` (`apps/checkout/hpa.yaml:2`)"), "{message}");
        let summary = plan["summary"].as_str().unwrap_or("");
        let off = summary.split("#### New findings not on a changed line").nth(1).unwrap_or("");
        assert!(off.contains("`hpa-replicas-conflict` at `apps/checkout/deployment.yaml:9`"), "{summary}");
        assert!(plan["comments"].as_array().is_some_and(|c| c.is_empty()), "{:#}", plan["comments"]);
    }
}

#[test]
fn a_suppression_on_an_unchanged_line_still_holds() {
    let deployment =
        deployment("  replicas: 3 # kpath:ignore hpa-replicas-conflict the first apply needs a count\n", "");
    let base = [("apps/checkout/deployment.yaml", deployment.as_str())];
    let change = [("apps/checkout/hpa.yaml", HPA)];
    let dir = repository(&base, &change);
    let plan = review(dir.path());
    assert!(!findings(&plan).iter().any(|(rule, ..)| rule == "hpa-replicas-conflict"), "{:?}", findings(&plan));
    // Found (the unchanged Deployment was seen), and suppressed by the comment on its line.
    let suppressed = plan["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == "hpa-replicas-conflict")
        .map(|f| f["suppressed"].clone());
    assert!(suppressed.is_some_and(|s| s["kind"].is_string()), "{:#}", plan["findings"]);
    assert_eq!(plan["conclusion"], "success");
}

#[test]
fn an_ignore_annotation_on_an_unchanged_object_still_holds() {
    let deployment = deployment("  replicas: 3\n", "").replacen(
        "  labels:\n",
        "  annotations:\n    kpath/ignore: hpa-replicas-conflict\n  labels:\n",
        1,
    );
    let base = [("apps/checkout/deployment.yaml", deployment.as_str())];
    let change = [("apps/checkout/hpa.yaml", HPA)];
    let dir = repository(&base, &change);
    for plan in [review(dir.path()), review_dirs(&base, &change)] {
        // Found (the unchanged Deployment was seen), and suppressed by its annotation.
        let conflict = plan["findings"].as_array().into_iter().flatten().find(|f| f["rule"] == "hpa-replicas-conflict");
        assert_eq!(
            conflict.map(|f| f["suppressed"]["kind"].clone()),
            Some("annotation".into()),
            "{:#}",
            plan["findings"]
        );
        assert_eq!(plan["conclusion"], "success", "{:?}", findings(&plan));
    }
}

#[test]
fn relations_among_unchanged_objects_are_existing_and_unrelated_files_bring_nothing() {
    let deployment = deployment("  replicas: 3\n", "");
    let base = [
        ("apps/checkout/deployment.yaml", deployment.as_str()),
        ("apps/checkout/hpa.yaml", HPA),
        // Broken and unrelated: context files are not checked, so it brings no finding.
        ("apps/broken/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: [\n"),
    ];
    // The change only touches the autoscaler's ceiling: the conflict was there before.
    let change = [("apps/checkout/hpa.yaml", HPA.replace("maxReplicas: 10", "maxReplicas: 12"))];
    let change: Vec<(&str, &str)> = change.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let dir = repository(&base, &change);
    let plan = review(dir.path());
    let found = findings(&plan);
    assert!(
        found.iter().any(|(rule, _, _, status)| rule == "hpa-replicas-conflict" && status == "existing"),
        "{found:?}"
    );
    assert!(!found.iter().any(|(_, file, ..)| file.starts_with("apps/broken")), "{found:?}");
    assert_eq!(plan["conclusion"], "success", "{found:?}");
}

#[test]
fn a_new_app_in_a_namespace_an_unchanged_app_uses_is_told_so() {
    let checkout = deployment("", "");
    let cart = checkout.replace("checkout", "cart");
    let base = [("apps/checkout/deployment.yaml", checkout.as_str())];
    let change = [("teams/cart/deployment.yaml", cart.as_str())];
    let dir = repository(&base, &change);
    let check_rules = rules_of(&check(dir.path()));
    let plan = review(dir.path());
    let found = findings(&plan);
    let shared: Vec<_> = found.iter().filter(|(rule, ..)| rule == "namespace-shared").collect();
    assert_eq!(
        shared.len(),
        check_rules.iter().filter(|r| *r == "namespace-shared").count(),
        "review and check agree: {found:?}"
    );
    assert!(
        shared.iter().any(|(_, file, _, status)| file == "teams/cart/deployment.yaml" && status == "new"),
        "{found:?}"
    );
}

/// Without namespaces, objects relate when they are applied together, which is all a directory says: an
/// autoscaler pairs with the Deployment beside it, never with a same-named one of another app elsewhere.
#[test]
fn without_namespaces_an_autoscaler_pairs_with_the_deployment_beside_it_only() {
    let here = deployment("  replicas: 3\n", "").replace("  namespace: shop\n", "");
    let elsewhere = here.clone();
    let hpa = HPA.replace("  namespace: shop\n", "");
    let base =
        [("apps/checkout/deployment.yaml", here.as_str()), ("examples/checkout/deployment.yaml", elsewhere.as_str())];
    let change = [("apps/checkout/hpa.yaml", hpa.as_str())];
    let dir = repository(&base, &change);
    let plan = review(dir.path());
    let found = findings(&plan);
    let conflicts: Vec<&str> =
        found.iter().filter(|(rule, ..)| rule == "hpa-replicas-conflict").map(|(_, file, ..)| file.as_str()).collect();
    assert_eq!(conflicts, ["apps/checkout/deployment.yaml"], "{found:?}");
    let checked = check(dir.path());
    let in_check: Vec<&str> = checked["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "hpa-replicas-conflict")
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert_eq!(in_check.len(), 1, "{in_check:?}");
    assert!(in_check[0].ends_with("apps/checkout/deployment.yaml"), "{in_check:?}");
    // An autoscaler whose target lives in another directory is not reported missing: it may be applied there.
    let lone = [("autoscalers/checkout.yaml", hpa.as_str())];
    let dir = repository(&[("apps/checkout/deployment.yaml", here.as_str())], &lone);
    assert!(!findings(&review(dir.path())).iter().any(|(rule, ..)| rule == "hpa-target-missing"));
}
