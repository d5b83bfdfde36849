//! End-to-end tests of `kpath review`: on the bundled demo (two directories) and on real git
//! repositories, with the pinned real Helm. Comment anchors are checked against `git diff` itself.

#[path = "support/bin.rs"]
mod bin;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bin::{Run, git, kpath};

use serde_json::Value;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).expect("inside");
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &dest).expect("copy");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Replaces the work tree's content (except .git) with `from`'s and commits it.
fn commit_tree(repo: &Path, from: &Path, message: &str) {
    for entry in std::fs::read_dir(repo).expect("read").flatten() {
        if entry.file_name() != ".git" {
            let p = entry.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).expect("rm");
            } else {
                std::fs::remove_file(&p).expect("rm");
            }
        }
    }
    copy_dir(from, repo);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "--allow-empty", "-m", message]);
}

/// Head-side lines added or changed by the PR, per file, straight from `git diff` (the oracle).
/// The head-side lines of `git diff`'s hunks with `context` unchanged lines around each change (0: the added
/// lines only; 3: every line GitHub shows, and so accepts a review comment on).
fn git_hunk_lines(repo: &Path, base: &str, head: &str, context: u32) -> HashMap<String, BTreeSet<u64>> {
    let unified = format!("--unified={context}");
    let text = git(repo, &["diff", &unified, "--no-color", &format!("{base}...{head}")]);
    let mut out: HashMap<String, BTreeSet<u64>> = HashMap::new();
    let mut file = String::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("+++ b/") {
            file = path.to_string();
        } else if let Some(hunk) = line.strip_prefix("@@ ") {
            let plus = hunk.split_whitespace().find(|p| p.starts_with('+')).unwrap_or("+0");
            let mut parts = plus.trim_start_matches('+').split(',');
            let start: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let count: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1);
            out.entry(file.clone()).or_default().extend(start..start + count);
        }
    }
    out
}

/// (path, line, rule) of every finding commented inline: a comment holds all the findings of its line.
fn comments(plan: &Value) -> Vec<(String, u64, String)> {
    plan["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .flat_map(|c| {
            let path = c["path"].as_str().unwrap_or("").to_string();
            let line = c["line"].as_u64().unwrap_or(0);
            c["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |r| (path.clone(), line, r.as_str().unwrap_or("").to_string()))
        })
        .collect()
}

fn statuses(plan: &Value, status: &str) -> Vec<String> {
    plan["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == status)
        .map(|f| format!("{} {}:{}", f["rule"].as_str().unwrap_or(""), f["file"].as_str().unwrap_or(""), f["line"]))
        .collect()
}

/// A git repository with `main` = demo base, a later unrelated commit on `main`, and branch `pr` = demo head
/// branched from the first commit.
fn demo_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q"]);
    commit_tree(dir.path(), &demo().join("base"), "base");
    git(dir.path(), &["checkout", "-q", "-b", "pr"]);
    commit_tree(dir.path(), &demo().join("head"), "the pull request");
    git(dir.path(), &["checkout", "-q", "main"]);
    // main moves on after the PR branched: this must not show up in the review.
    let later = dir.path().join("apps/later/deployment.yaml");
    std::fs::create_dir_all(later.parent().expect("parent")).expect("mkdir");
    std::fs::write(&later, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: later\n  namespace: default\n")
        .expect("write");
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "later on main"]);
    dir
}

/// `kpath review` of the bundled demo (two directories) in the given format.
fn review_demo(format: &str) -> Run {
    kpath(
        &[
            "review",
            "--base-dir",
            "fixtures/demo/base",
            "--head-dir",
            "fixtures/demo/head",
            "--format",
            format,
            "--no-cache",
        ],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
}

#[test]
fn the_demo_review_from_directories() {
    let run = review_demo("json");
    assert_eq!(run.code, 1, "new errors fail the review: {}\n{}", run.stdout, run.stderr);
    let plan = json(&run);
    assert_eq!(plan["conclusion"], "failure");
    let placed = comments(&plan);
    for expected in [
        ("apps/checkout/deployment.yaml", 9, "hpa-replicas-conflict"),
        ("apps/checkout/deployment.yaml", 27, "secret-in-env"),
        ("charts/storefront/values-prod.yaml", 6, "resources-memory-limit"),
        ("apps/checkout/Dockerfile", 1, "dockerfile-base-not-minimal"),
        // Kustomize: the prod overlay's patch lowers the memory limit; staging's `images:` moves to `latest`.
        ("apps/catalog/overlays/prod/resources.yaml", 15, "resources-memory-limit"),
        ("apps/catalog/overlays/staging/kustomization.yaml", 8, "image-latest"),
        // Flux: the HelmRelease's inline values move the edge storefront to `latest`.
        ("clusters/edge/storefront.yaml", 21, "image-latest"),
    ] {
        assert!(
            placed.iter().any(|(p, l, r)| p == expected.0 && *l == expected.1 && r == expected.2),
            "expected an inline comment {expected:?}; got {placed:?}"
        );
    }
    // The chart's breach comes from deleting the `if` around `replicas:`: no line of it was added, and the
    // values key is untouched, so it goes on the template line the diff's hunk shows (GitHub takes comments
    // on any line of a hunk), not in the summary.
    assert!(
        placed.iter().any(|(p, l, r)| p == "charts/storefront/templates/deployment.yaml"
            && *l == 9
            && r == "hpa-replicas-conflict"),
        "{placed:?}"
    );
    let summary = plan["summary"].as_str().expect("summary");
    // Each unit and environment with its mark: blocking, warnings only, clean.
    for row in [
        "| ❌ | `charts/storefront` | `storefront-prod` | 1 changed | 1 error, 1 warning |",
        "| ⚠️ | `charts/storefront` | `edge/storefront` | 1 changed | 1 warning |",
        "| ⚠️ | `apps/checkout/Dockerfile` | — | — | 5 warnings |",
        "| ✅ | `apps/payments/secret.yaml` | — | 1 changed | none |",
    ] {
        assert!(summary.contains(row), "{row} in\n{summary}");
    }
    assert!(summary.contains("❌ **`charts/storefront`** · environment `storefront-prod`"), "{summary}");
    // What the change costs: the checkout HPA's floor moves from 1 to 2 replicas of 250m / 512Mi pods.
    assert!(
        summary.contains(
            "| `apps/checkout/deployment.yaml` | 250m–2.5 → 500m–2.5 (+250m…+0) | 512Mi–5Gi → 1Gi–5Gi (+512Mi…+0) |"
        ),
        "{summary}"
    );
    assert!(
        statuses(&plan, "fixed").iter().any(|f| f.starts_with("hpa-min-replicas")),
        "{:?}",
        statuses(&plan, "fixed")
    );
    // The chart's environments are the ApplicationSet's Applications and the Flux HelmRelease.
    let storefront: BTreeSet<&str> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["object"]["name"] == "storefront")
        .filter_map(|c| c["environment"].as_str())
        .collect();
    assert_eq!(storefront, BTreeSet::from(["edge/storefront", "storefront-prod", "storefront-staging"]), "{plan:#}");
    // The Kustomize app's diff is per environment (each overlay is one), and the base is never checked alone.
    let catalog: Vec<&str> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["object"]["name"] == "catalog" && c["kind"] != "unchanged")
        .filter_map(|c| c["environment"].as_str())
        .collect();
    assert_eq!(catalog, vec!["apps/catalog/overlays/prod", "apps/catalog/overlays/staging"]);
    assert!(
        !plan["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["file"] == "apps/catalog/base/deployment.yaml" && f["rule"] == "namespace-missing")
    );
    // Unchanged files are not even checked, so their debt is neither new nor existing.
    assert!(
        !plan["findings"].as_array().expect("findings").iter().any(|f| f["file"] == "apps/worker/scaledobject.yaml")
    );
    // The replicas comment carries a mechanical suggestion and the hidden fingerprint marker.
    let replicas = plan["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .find(|c| c["path"] == "apps/checkout/deployment.yaml" && c["line"] == 9)
        .expect("replicas comment");
    let body = replicas["body"].as_str().expect("body");
    assert!(body.contains("```suggestion"), "{body}");
    assert!(body.contains("<!-- kpath:fingerprint="), "{body}");
    assert!(body.contains("/kpath explain hpa-replicas-conflict"), "{body}");
    // The Secret's change is visible, its values are not.
    let secret = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["object"]["kind"] == "Secret")
        .expect("the Secret changed");
    assert_eq!(secret["kind"], "changed");
    let diff = secret["diff"].as_str().expect("diff");
    assert!(diff.contains("[redacted, changed]"), "the changed key is named: {diff}");
    let posted = review_demo("github");
    assert_eq!(posted.code, 1);
    assert!(posted.stdout.starts_with("# Check run `kpath`: failure (4 new errors"), "{}", posted.stdout);
    assert!(posted.stdout.contains("## `apps/checkout/deployment.yaml:9`\n\n**error** `hpa-replicas-conflict`"));
    assert!(posted.stdout.contains("# Summary comment\n\n### ❌ kpath"));
    assert!(!posted.stdout.contains("kpath:fingerprint"), "markers are not shown");
    for output in [&run.stdout, &review_demo("markdown").stdout, &review_demo("text").stdout, &posted.stdout] {
        for value in ["ZGVtby1rZXktdjE=", "ZGVtby1rZXktdjI=", "demo-key-v1", "demo-key-v2", "demo-not-a-real-password"]
        {
            assert!(!output.contains(value), "a secret value leaked: {value}");
        }
    }
}

#[test]
fn a_git_review_uses_the_merge_base_and_comments_only_on_changed_lines() {
    let repo = demo_repo();
    let run = kpath(
        &["review", "--repo", ".", "--base", "main", "--head", "pr", "--format", "json", "--no-cache"],
        repo.path(),
    );
    let plan = json(&run);
    assert_eq!(plan["conclusion"], "failure");
    let added = git_hunk_lines(repo.path(), "main", "pr", 0);
    let shown = git_hunk_lines(repo.path(), "main", "pr", 3);
    let placed = comments(&plan);
    assert!(!placed.is_empty());
    for (path, line, rule) in &placed {
        assert!(
            shown.get(path).is_some_and(|lines| lines.contains(line)),
            "{rule} comment on {path}:{line} is not on a line of the PR's diff ({:?})",
            shown.get(path)
        );
        if added.get(path).is_some_and(|lines| lines.contains(line)) {
            continue;
        }
        // On an unchanged line of a hunk only when none of the finding's places was added.
        for f in plan["findings"].as_array().expect("findings").iter().filter(|f| f["rule"] == rule.as_str()) {
            let places: Vec<(String, u64)> = f["locations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| (l["file"].as_str().unwrap_or("").to_string(), l["line"].as_u64().unwrap_or(0)))
                .collect();
            if places.iter().any(|(p, l)| p == path && l == line) {
                assert!(
                    !places.iter().any(|(p, l)| added.get(p).is_some_and(|lines| lines.contains(l))),
                    "{rule} on the context line {path}:{line}, though one of its places was added: {places:?}"
                );
            }
        }
    }
    // The commit made on main after the PR branched is not part of the PR.
    assert!(!run.stdout.contains("apps/later"), "{}", run.stdout);
    // Directory and git reviews agree on what is new.
    let dirs = json(&review_demo("json"));
    assert_eq!(statuses(&plan, "new"), statuses(&dirs, "new"));
    // The work tree was not touched: still on main, clean.
    assert_eq!(git(repo.path(), &["status", "--porcelain"]), "");
    assert_eq!(git(repo.path(), &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "main");
}

#[test]
fn fingerprints_survive_lines_moving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let breach = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\n  labels: {app: settings}\ndata:\n  a: \"1\"\n";
    let moved = breach.replace("apiVersion: v1\n", "# a comment\n# another\n# and a third\napiVersion: v1\n");
    for (side, text) in [("base", breach.to_string()), ("head", moved)] {
        let p = dir.path().join(side).join("cm.yaml");
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    let plan = json(&kpath(
        &["review", "--base-dir", "base", "--head-dir", "head", "--format", "json", "--no-cache"],
        dir.path(),
    ));
    assert_eq!(statuses(&plan, "new"), Vec::<String>::new());
    assert_eq!(statuses(&plan, "existing"), vec!["namespace-default cm.yaml:8".to_string()]);
    assert_eq!(plan["conclusion"], "success");
}

#[test]
fn only_affected_units_are_rendered() {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    git(root, &["init", "-q"]);
    let chart = |name: &str, template: &str| {
        let dir = root.join("charts").join(name);
        std::fs::create_dir_all(dir.join("templates")).expect("mkdir");
        std::fs::write(dir.join("Chart.yaml"), format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"))
            .expect("write");
        std::fs::write(dir.join("values.yaml"), "tag: \"1.0.0\"\n").expect("write");
        std::fs::write(dir.join("templates/cm.yaml"), template).expect("write");
    };
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\n  labels: {app: {{ .Release.Name }}}\ndata:\n  tag: {{ .Values.tag | quote }}\n";
    chart("touched", good);
    // A chart that does not render at all: untouched by the PR, so it must not be rendered.
    chart("broken", "{{ required \"never set\" .Values.nope }}\n");
    std::fs::write(root.join(".kpath.yml"), "namespace: shop\n").expect("write");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    std::fs::write(root.join("charts/touched/values.yaml"), "tag: \"1.1.0\"\n").expect("write");
    git(root, &["commit", "-q", "-am", "bump"]);
    let run =
        kpath(&["review", "--repo", ".", "--base", "HEAD~1", "--head", "HEAD", "--format", "json", "--no-cache"], root);
    let plan = json(&run);
    assert!(!run.stdout.contains("render-failed"), "the untouched broken chart was rendered: {}", run.stdout);
    let units: BTreeSet<String> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["unit"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(units, BTreeSet::from(["charts/touched".to_string()]));
    let change = &plan["changes"][0];
    assert_eq!(change["kind"], "changed");
    assert!(
        change["diff"].as_str().unwrap_or("").contains("+  tag: 1.1.0")
            || change["diff"].as_str().unwrap_or("").contains("+  tag: \"1.1.0\""),
        "{change}"
    );
    assert_eq!(plan["conclusion"], "success");
}

#[test]
fn nothing_relevant_is_neutral() {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    git(root, &["init", "-q"]);
    std::fs::write(root.join("README.md"), "hello\n").expect("write");
    std::fs::write(
        root.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n",
    )
    .expect("write");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    std::fs::write(root.join("README.md"), "hello again\n").expect("write");
    // `--head` defaults to HEAD.
    git(root, &["commit", "-q", "-am", "docs"]);
    let run = kpath(&["review", "--repo", ".", "--base", "HEAD~1", "--format", "json"], root);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run)["conclusion"], "neutral");
}

/// A change to files kpath does not check (CI workflows are YAML, but not Kubernetes manifests) is
/// `neutral`, as README promises, not `success`.
#[test]
fn workflow_only_change_is_neutral() {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    git(root, &["init", "-q"]);
    let workflow = root.join(".github/workflows/ci.yml");
    std::fs::create_dir_all(workflow.parent().expect("parent")).expect("mkdir");
    std::fs::write(&workflow, "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n").expect("write");
    std::fs::write(
        root.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n",
    )
    .expect("write");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    std::fs::write(&workflow, "name: ci\non: [push, pull_request]\njobs:\n  test:\n    runs-on: ubuntu-latest\n")
        .expect("write");
    git(root, &["commit", "-q", "-am", "ci"]);
    let run = kpath(&["review", "--repo", ".", "--base", "HEAD~1", "--head", "HEAD", "--format", "json"], root);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run)["conclusion"], "neutral", "{}", run.stdout);
}

#[test]
fn bad_revisions_are_a_clear_error() {
    let repo = demo_repo();
    let run = kpath(&["review", "--repo", ".", "--base", "main", "--head", "no-such-branch"], repo.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no-such-branch"), "{}", run.stderr);
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().filter_map(Result::ok) {
        let target = to.join(entry.path().strip_prefix(from).expect("inside"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every suggestion the demo review offers, applied to the head's files: each one's finding is gone, and the
/// files still parse (as YAML, or as a Dockerfile).
#[test]
fn suggestions_applied_make_their_findings_go_away() {
    let plan = json(&review_demo("json"));
    // (path, first line, last line, rule, replacement): a suggestion replaces the lines its comment spans.
    let mut applied: Vec<(String, u64, u64, String, String)> = Vec::new();
    for c in plan["comments"].as_array().expect("comments") {
        let body = c["body"].as_str().unwrap_or("");
        let Some(start) = body.find("```suggestion\n").map(|i| i + "```suggestion\n".len()) else { continue };
        let end = start + body[start..].find("```").expect("a closed suggestion");
        let replacement = body[start..end].trim_end_matches('\n').to_string();
        let path = c["path"].as_str().unwrap_or("").to_string();
        // The suggestion is the fix of the finding whose heading (`**error** `rule`: …`) comes before it.
        let rule = c["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
            .filter_map(|r| body[..start].rfind(&format!("** `{r}`:")).map(|at| (at, r)))
            .max()
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
        let line = c["line"].as_u64().unwrap_or(0);
        applied.push((path, c["start_line"].as_u64().unwrap_or(line), line, rule, replacement));
    }
    let rules: BTreeSet<&str> = applied.iter().map(|(_, _, _, r, _)| r.as_str()).collect();
    // Swapped probe paths are fixed by one suggestion over the lines from one path to the other.
    for expected in [
        "hpa-replicas-conflict",
        "dockerfile-shell-form-cmd",
        "resources-memory-limit",
        "probe-liveness-checks-dependencies",
    ] {
        assert!(rules.contains(expected), "a suggestion for {expected}: {applied:#?}");
    }
    assert!(
        applied.iter().any(|(_, first, last, rule, _)| rule == "probe-liveness-checks-dependencies" && first < last),
        "{applied:#?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/head"), dir.path());
    // Bottom-up per file, so a deleted line does not move the next one.
    let mut ordered = applied.clone();
    ordered.sort_by(|a, b| (&a.0, std::cmp::Reverse(a.1)).cmp(&(&b.0, std::cmp::Reverse(b.1))));
    for (path, first, last, _, replacement) in &ordered {
        let file = dir.path().join(path);
        let text = std::fs::read_to_string(&file).expect("the commented file");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let first = usize::try_from(*first).expect("a line") - 1;
        let last = usize::try_from(*last).expect("a line");
        let new: Vec<String> =
            if replacement.is_empty() { Vec::new() } else { replacement.lines().map(str::to_string).collect() };
        lines.splice(first..last, new);
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    }
    let run = kpath(&["check", ".", "--format", "json", "--no-cache"], dir.path());
    let report = json(&run);
    let findings = report["findings"].as_array().expect("findings");
    for (path, _, _, rule, _) in &applied {
        assert!(
            !findings.iter().any(|f| f["rule"] == rule.as_str() && f["file"] == path.as_str()),
            "{rule} is still found in {path} after its suggestion"
        );
        assert!(
            !findings.iter().any(
                |f| f["file"] == path.as_str() && (f["rule"] == "manifest-invalid" || f["rule"] == "render-failed")
            ),
            "{path} no longer parses after the suggestions"
        );
    }
}
