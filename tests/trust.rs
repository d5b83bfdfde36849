//! A repository is hostile: its `.kpath.yml` and charts cannot make kpath run a program, and a pull
//! request cannot weaken the gate that judges it. End to end through the binary with the pinned Helm.

#[path = "support/bin.rs"]
mod bin;

use std::path::PathBuf;

use bin::{git, kpath, kpath_with, write};

const CHART: &str = "apiVersion: v2\nname: shop\nversion: 0.1.0\n";
const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\n  labels: {app: shop}\ndata:\n  tag: {{ .Values.tag | default \"1\" | quote }}\n";

/// A repository with a chart and a post-renderer script that would leave a canary file if Helm ever ran it.
fn chart_repo() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = bin::repo(&[]);
    let root = dir.path();
    write(root, "charts/shop/Chart.yaml", CHART);
    write(root, "charts/shop/values.yaml", "tag: \"1\"\n");
    write(root, "charts/shop/values-prod.yaml", "tag: \"2\"\n");
    write(root, "charts/shop/templates/cm.yaml", TEMPLATE);
    let canary = root.join("CANARY");
    let script = root.join("evil.sh");
    write(root, "evil.sh", &format!("#!/bin/sh\ntouch '{}'\ncat\n", canary.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    (dir, canary, script)
}

#[test]
fn no_configuration_value_reaches_helm_as_an_option() {
    let (dir, canary, script) = chart_repo();
    let root = dir.path();
    let evil = format!("--post-renderer={}", script.display());
    // Each position of `.kpath.yml` that ends up on Helm's command line, and the line it is on.
    let positions: Vec<(String, u32)> = vec![
        (format!("helm:\n  releases:\n    - chart: charts/shop\n      name: \"{evil}\"\n"), 4),
        (format!("helm:\n  releases:\n    - chart: charts/shop\n      namespace: \"{evil}\"\n"), 4),
        (format!("helm:\n  releases:\n    - chart: \"{evil}\"\n"), 3),
        (format!("helm:\n  releases:\n    - chart: charts/shop\n      values: [\"{evil}\"]\n"), 4),
        (format!("helm:\n  releases:\n    - chart: charts/shop\n      set: {{\"{evil}\": 1}}\n"), 4),
        (format!("helm:\n  releases:\n    - chart: charts/shop\n      kubernetesVersion: \"1.30 {evil}\"\n"), 4),
        (
            format!(
                "helm:\n  releases:\n    - chart: charts/shop\n      environments:\n        prod:\n          namespace: \"{evil}\"\n"
            ),
            6,
        ),
        (
            format!(
                "helm:\n  releases:\n    - chart: charts/shop\n      environments:\n        prod:\n          values: [\"{evil}\"]\n"
            ),
            6,
        ),
        (format!("namespace: \"{evil}\"\n"), 1),
        (format!("kubernetesVersion: \"{evil}\"\n"), 1),
        ("helm:\n  releases:\n    - chart: charts/shop\n      values: [\"values.yaml,/etc/passwd\"]\n".to_string(), 4),
        ("helm:\n  releases:\n    - chart: ../../../etc\n".to_string(), 3),
    ];
    for (config, line) in positions {
        write(root, ".kpath.yml", &config);
        let run = kpath(&["check", "--no-cache", "."], root);
        assert_eq!(run.code, 2, "accepted:\n{config}\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
        assert!(run.stderr.contains(&format!(".kpath.yml:{line}:")), "no line {line} for:\n{config}\n{}", run.stderr);
        assert!(!canary.exists(), "helm ran the post-renderer for:\n{config}");
    }
    // A `--set` value is only ever a value: the render goes on, the text lands in the ConfigMap.
    write(
        root,
        ".kpath.yml",
        &format!("helm:\n  releases:\n    - chart: charts/shop\n      set: {{tag: \"{evil},x=y\"}}\n"),
    );
    let run = kpath(&["check", "--no-cache", "--format", "json", "."], root);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert!(!canary.exists(), "helm ran the post-renderer through a --set value");
}

/// A chart's `name` is written freely; Helm accepts `--output-dir` as a chart name, and as a release name
/// in front of the chart it would be read as a flag. It becomes the release `output-dir`, and the chart renders.
#[test]
fn a_chart_name_is_never_an_option() {
    let (dir, canary, _) = chart_repo();
    let root = dir.path();
    write(root, "charts/shop/Chart.yaml", "apiVersion: v2\nname: \"--output-dir\"\nversion: 0.1.0\n");
    // Released into `default`, the rendered ConfigMap is reported by its name, which shows the chart rendered.
    write(root, ".kpath.yml", "namespace: default\n");
    let run = kpath(&["check", "--no-cache", "--format", "json", "."], root);
    assert_eq!(run.code, 1, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ConfigMap `output-dir` is in the `default` namespace"), "{}", run.stdout);
    assert!(!canary.exists());
}

#[test]
fn absurd_bounds_are_a_configuration_error_with_its_line() {
    let (dir, _, _) = chart_repo();
    let root = dir.path();
    for (config, line) in [
        ("helm:\n  timeout: 99999999999999999999h\n", 2),
        ("helm:\n  maxOutput: 99999999999999999999999Ei\n", 2),
        ("rules: {}\nhelm:\n  concurrency: 18446744073709551617\n", 3),
    ] {
        write(root, ".kpath.yml", config);
        let run = kpath(&["check", "--no-cache", "."], root);
        assert_eq!(run.code, 2, "{config}: {}", run.stderr);
        assert!(run.stderr.contains(&format!(".kpath.yml:{line}:")), "{config}: {}", run.stderr);
    }
    // Within bounds, but above the operator's ceiling: clamped, and said.
    write(root, ".kpath.yml", "helm:\n  timeout: 20h\n");
    let run = kpath_with(&["check", "--no-cache", "."], root, &[("KPATH_MAX_RENDER_TIMEOUT", "30s")]);
    let stderr = run.stderr;
    assert!(stderr.contains(".kpath.yml:2: helm.timeout 72000s is above the ceiling"), "{stderr}");
    assert!(stderr.contains("30s is used"), "{stderr}");
}

const CLEAN: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n  labels: {app: settings}\ndata:\n  a: \"1\"\n";

/// A repository whose pull request adds an error and, in the same change, a `.kpath.yml` that turns the
/// rule off: returns the repository.
fn weakening_pull_request() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    write(root, "apps/cm.yaml", CLEAN);
    write(root, ".kpath.yml", "rules:\n  image-latest: warning\n");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    write(root, "apps/cm.yaml", &CLEAN.replace("namespace: shop", "namespace: default"));
    write(
        root,
        ".kpath.yml",
        "rules:\n  image-latest: warning\n  namespace-default: off\nwaivers:\n  - rule: \"*\"\n    reason: trust me\n",
    );
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "head"]);
    dir
}

#[test]
fn the_base_configuration_judges_a_pull_request() {
    let repo = weakening_pull_request();
    let root = repo.path();
    let run = kpath(&["review", "--repo", ".", "--base", "HEAD~1", "--head", "HEAD", "--no-cache"], root);
    assert_eq!(run.code, 1, "the PR switched off the rule that judges it:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("namespace-default"), "{}", run.stdout);
    assert!(run.stdout.contains("#### Configuration"), "{}", run.stdout);
    assert!(run.stdout.contains("takes effect once merged"), "{}", run.stdout);
    assert!(run.stdout.contains("weakens the gate: it turns off `namespace-default`"), "{}", run.stdout);
    assert!(run.stdout.contains("adds a waiver of `*` for everything: `trust me`"), "{}", run.stdout);

    // Locally, the head's configuration can be tried on purpose.
    let run = kpath(
        &["review", "--repo", ".", "--base", "HEAD~1", "--head", "HEAD", "--no-cache", "--config-from", "head"],
        root,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("--config-from head"), "{}", run.stdout);
}

#[test]
fn an_invalid_head_configuration_is_reported_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    write(root, "apps/cm.yaml", CLEAN);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    write(root, ".kpath.yml", "rulez: {}\n");
    write(root, "apps/cm.yaml", &CLEAN.replace("a: \"1\"", "a: \"2\""));
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "head"]);
    let run = kpath(&["review", "--repo", ".", "--base", "HEAD~1", "--head", "HEAD", "--no-cache"], root);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("is invalid and kpath would stop on it"), "{}", run.stdout);
    assert!(run.stdout.contains(".kpath.yml:1:1"), "{}", run.stdout);
    assert!(!run.stdout.contains("/tmp"), "a temporary path leaked: {}", run.stdout);
}

/// A link out of the repository is named and not followed: a pull request cannot make `kpath check` in CI read
/// and quote a file of the runner's.
#[test]
fn links_out_of_the_repository_are_not_followed() {
    let outside = tempfile::tempdir().expect("tempdir");
    let canary = "kpath-link-canary-7f3a";
    let leaked = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {canary}\n  namespace: default\ndata:\n  a: {canary}\n"
    );
    write(outside.path(), "runner/config.yaml", &leaked);
    write(outside.path(), "file.yaml", &leaked);
    let dir = bin::repo(&[("apps/cm.yaml", CLEAN)]);
    let root = dir.path();
    std::os::unix::fs::symlink(outside.path().join("file.yaml"), root.join("apps/leak.yaml")).expect("link");
    std::os::unix::fs::symlink(outside.path().join("runner"), root.join("apps/runner")).expect("link");
    std::os::unix::fs::symlink(root.join("apps/cm.yaml"), root.join("apps/inside.yaml")).expect("link");
    for format in ["text", "json", "sarif", "github"] {
        let run = kpath(&["check", "--no-cache", "--format", format, "."], root);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains(canary), "{format}: a file outside the repository was read:\n{all}");
        if format == "text" {
            assert!(all.contains("apps/leak.yaml") && all.contains("out of the checked directory"), "{all}");
            assert!(all.contains("apps/runner"), "{all}");
        }
    }
}
