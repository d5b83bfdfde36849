//! One process reviews push after push of a pull request, as `kpath serve` does, reusing what earlier reviews
//! read from git (trees, texts, each side's layout and context index). Each review must be the review a fresh
//! `kpath review` process gives for the same commits: a push that declares a new environment in a file the
//! earlier pushes only changed, adds or removes a file, or moves an object between namespaces, is discovered
//! and judged anew.

#[path = "support/bin.rs"]
mod bin;

use std::path::Path;

use bin::{git, kpath, write};
use kpath::review::run::{self, Options, Source};

const ORIGIN: &str = "https://github.com/acme/deploy";

fn deployment(name: &str, namespace: &str, memory: &str) -> String {
    [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        &format!("  name: {name}"),
        &format!("  namespace: {namespace}"),
        "spec:",
        "  selector:",
        &format!("    matchLabels: {{app: {name}}}"),
        "  template:",
        "    metadata:",
        &format!("      labels: {{app: {name}}}"),
        "    spec:",
        "      containers:",
        &format!("        - name: {name}"),
        &format!("          image: ghcr.io/octo/{name}:1.4.2"),
        "          readinessProbe:",
        "            httpGet: {path: /ready, port: 8080}",
        "          livenessProbe:",
        "            httpGet: {path: /live, port: 8080}",
        "          resources:",
        &format!("            requests: {{cpu: 100m, memory: {memory}}}"),
        &format!("            limits: {{memory: {memory}}}"),
        "",
    ]
    .join("\n")
}

/// An autoscaler `name` in `namespace` scaling the Deployment `target` (of its own namespace).
fn hpa(name: &str, namespace: &str, target: &str) -> String {
    [
        "apiVersion: autoscaling/v2",
        "kind: HorizontalPodAutoscaler",
        "metadata:",
        &format!("  name: {name}"),
        &format!("  namespace: {namespace}"),
        "spec:",
        "  scaleTargetRef:",
        "    apiVersion: apps/v1",
        "    kind: Deployment",
        &format!("    name: {target}"),
        "  minReplicas: 2",
        "  maxReplicas: 6",
        "  metrics:",
        "    - type: Resource",
        "      resource:",
        "        name: cpu",
        "        target: {type: Utilization, averageUtilization: 70}",
        "",
    ]
    .join("\n")
}

/// An Argo CD Application deploying the `config` directory of this repository.
const APPLICATION: &str = "---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: config\n\
spec:\n  source:\n    repoURL: https://github.com/acme/deploy\n    path: config\n  destination:\n    namespace: config\n";

const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: config\ndata:\n  LOG_LEVEL: info\n";

/// A file's new text (`None`: deleted).
type Edit<'a> = (&'a str, Option<String>);

/// Commits `files` on the current branch (a `None` text deletes the file); the new commit's id.
fn push(dir: &Path, files: &[(&str, Option<&str>)], message: &str) -> String {
    for (name, text) in files {
        match text {
            Some(text) => write(dir, name, text),
            None => std::fs::remove_file(dir.join(name)).expect("remove"),
        }
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// The review of `head` against `main` from this process, as JSON (`kpath review --format json` prints it so).
fn in_process(dir: &Path, head: &str) -> serde_json::Value {
    let options = Options {
        helm: Some(bin::pinned_helm()),
        kubectl: Some(bin::pinned_kubectl()),
        no_cache: true,
        repositories: kpath::gitops::repo::normalise(ORIGIN).into_iter().collect(),
        ..Options::default()
    };
    let source = Source::Git { repo: dir.to_path_buf(), base: "main".into(), head: head.into() };
    let plan = run::review(&source, &options).expect("the review runs");
    let text = serde_json::to_string_pretty(&plan).expect("JSON");
    serde_json::from_str(&plan.redact(&text)).expect("JSON")
}

/// The review of `head` against `main` from a fresh `kpath` process.
fn fresh(dir: &Path, head: &str) -> serde_json::Value {
    let run =
        kpath(&["review", "--repo", ".", "--base", "main", "--head", head, "--format", "json", "--no-cache"], dir);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

fn environments(plan: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["environment"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn rules(plan: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> =
        bin::counted(plan).iter().filter_map(|f| f["rule"].as_str().map(str::to_string)).collect();
    out.sort();
    out
}

#[test]
fn each_push_reviewed_in_one_process_is_the_review_a_fresh_process_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    git(root, &["remote", "add", "origin", ORIGIN]);
    let mut base: Vec<(String, String)> = vec![
        ("config/cm.yaml".into(), CONFIG_MAP.into()),
        ("apps/web/deployment.yaml".into(), deployment("web", "shop", "128Mi")),
    ];
    for i in 0..40 {
        let name = format!("app{i:02}");
        base.push((format!("apps/{name}/deployment.yaml"), deployment(&name, &name, "128Mi")));
        base.push((format!("apps/{name}/hpa.yaml"), hpa(&name, &name, &name)));
    }
    for (name, text) in &base {
        write(root, name, text);
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    git(root, &["checkout", "-q", "-b", "pr"]);

    let web = "apps/web/deployment.yaml";
    let with_app = deployment("web", "shop", "256Mi") + APPLICATION;
    let pushes: Vec<(&str, Vec<Edit>)> = vec![
        ("more memory", vec![(web, Some(deployment("web", "shop", "256Mi")))]),
        ("still more memory", vec![(web, Some(deployment("web", "shop", "512Mi")))]),
        // The file the earlier pushes changed now declares an environment.
        ("deploy config with Argo CD", vec![(web, Some(with_app.clone()))]),
        ("config: debug logs", vec![("config/cm.yaml", Some(CONFIG_MAP.replace("info", "debug")))]),
        // An autoscaler beside an untouched Deployment of another app, in that app's namespace.
        ("scale web", vec![("apps/web/hpa.yaml", Some(hpa("web", "app07", "web")))]),
        // The Deployment moves into that namespace (and no longer declares the Application): the autoscaler
        // has its target.
        ("web joins app07", vec![(web, Some(deployment("web", "app07", "256Mi")))]),
        ("drop the autoscaler", vec![("apps/web/hpa.yaml", None), (web, Some(deployment("web", "shop", "256Mi")))]),
    ];
    let mut heads = Vec::new();
    for (message, files) in &pushes {
        let files: Vec<(&str, Option<&str>)> = files.iter().map(|(n, t)| (*n, t.as_deref())).collect();
        heads.push((message.to_string(), push(root, &files, message)));
    }
    // Reviewed in order, then the first ones again (their sides are kept by tree).
    let order: Vec<&(String, String)> = heads.iter().chain(heads.iter().take(3)).collect();
    let mut seen = Vec::new();
    for (message, head) in order {
        let ours = in_process(root, head);
        assert_eq!(ours, fresh(root, head), "push `{message}`: this process's review differs from a fresh one");
        seen.push((message.as_str(), environments(&ours), rules(&ours)));
    }
    let env = |m: &str| seen.iter().find(|(message, _, _)| *message == m).map(|(_, e, _)| e.clone()).expect("push");
    assert!(env("more memory").is_empty(), "{seen:#?}");
    assert_eq!(env("deploy config with Argo CD"), ["config"], "{seen:#?}");
    assert_eq!(env("config: debug logs"), ["config"], "{seen:#?}");
    assert!(env("web joins app07").is_empty(), "{seen:#?}");
    assert!(env("drop the autoscaler").is_empty(), "{seen:#?}");
    let rules_of =
        |m: &str| seen.iter().find(|(message, _, _)| *message == m).map(|(_, _, r)| r.clone()).expect("push");
    // The autoscaler in app07 targets a `web` Deployment that app07 does not have until web moves there.
    assert!(rules_of("scale web").iter().any(|r| r == "hpa-target-missing"), "{seen:#?}");
    assert!(!rules_of("web joins app07").iter().any(|r| r == "hpa-target-missing"), "{seen:#?}");
}

#[test]
fn after_a_reviewed_push_is_merged_the_next_pull_request_sees_the_merged_files_as_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    git(root, &["remote", "add", "origin", ORIGIN]);
    write(root, "apps/web/deployment.yaml", &deployment("web", "shop", "128Mi"));
    write(root, "apps/web/hpa.yaml", &hpa("web", "shop", "web"));
    for i in 0..20 {
        let name = format!("app{i:02}");
        write(root, &format!("apps/{name}/deployment.yaml"), &deployment(&name, &name, "128Mi"));
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    git(root, &["checkout", "-q", "-b", "move"]);
    let blue = deployment("web", "blue", "128Mi");
    let moved = push(root, &[("apps/web/deployment.yaml", Some(&blue))], "web to blue");
    // Reviewed (this process keeps what it read of that head), then merged.
    assert_eq!(in_process(root, &moved), fresh(root, &moved));
    git(root, &["checkout", "-q", "main"]);
    git(root, &["merge", "-q", "--ff-only", "move"]);
    // The next pull request moves the autoscaler to `blue` too, and adds one with a typo in its target: web's
    // Deployment is in `blue` only since the merge, in a file this pull request leaves alone.
    git(root, &["checkout", "-q", "-b", "scale"]);
    let scalers = hpa("web", "blue", "web") + "---\n" + &hpa("web-typo", "blue", "wbe");
    let head = push(root, &[("apps/web/hpa.yaml", Some(&scalers))], "scale web in blue");
    let ours = in_process(root, &head);
    assert_eq!(ours, fresh(root, &head), "this process's review differs from a fresh one");
    let missing: Vec<&str> = bin::counted(&ours)
        .iter()
        .filter(|f| f["rule"] == "hpa-target-missing" && f["status"] == "new")
        .filter_map(|f| f["message"].as_str())
        .collect();
    assert_eq!(missing.len(), 1, "{ours:#}");
    assert!(missing[0].contains("wbe"), "{ours:#}");
}
