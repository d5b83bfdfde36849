//! End-to-end tests of Helm chart rendering: the `kpath` binary renders the charts of `fixtures/charts/`
//! with the pinned `helm`, traces each finding back to values and templates, merges environments, and
//! turns every way a render can fail (required value, syntax error, missing dependency, timeout, output
//! cap, symlink out of the chart, no helm at all) into a finding or a usage error.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CLEAN: &str = include_str!("../fixtures/rules/namespace-default/good/deployment.yaml");
const IN_DEFAULT: &str = include_str!("../fixtures/rules/namespace-default/bad/deployment.yaml");

/// The helm the tests render with: `KPATH_HELM` if set, else the project-local pinned install.
fn helm() -> PathBuf {
    let path = match std::env::var_os("KPATH_HELM") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/helm-3.17.3/bin/helm"),
    };
    if !path.is_file() {
        panic!(
            "the pinned helm is missing: run `bash scripts/test`, which installs it (looked for {})",
            path.display()
        );
    }
    path
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `kpath` with `KPATH_HELM` set to the pinned helm.
fn kpath(args: &[&str], cwd: &Path) -> Run {
    kpath_env(args, cwd, &[("KPATH_HELM", Some(helm().into_os_string()))])
}

/// An environment variable to set, or with `None` to remove.
type EnvChange<'a> = (&'a str, Option<OsString>);

/// Runs `kpath` with the given environment changes.
fn kpath_env(args: &[&str], cwd: &Path, env: &[EnvChange<'_>]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpath"));
    command.args(args).current_dir(cwd);
    for (key, value) in env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let out = command.output().expect("kpath runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Creates a repository (`.git` marks its root) at `root` holding `fixtures/charts/<name>` as
/// `charts/<name>` for each chart, and the given extra files.
fn fill_repo(root: &Path, charts: &[&str], files: &[(&str, &str)]) {
    std::fs::create_dir_all(root.join(".git")).expect("mark repository root");
    for chart in charts {
        copy_dir(&fixtures().join(chart), &root.join("charts").join(chart));
    }
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

fn repo(charts: &[&str], files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fill_repo(dir.path(), charts, files);
    dir
}

/// Line `n` (1-based) of `fixtures/charts/<file>`, after checking that it reads `text` (trimmed), so
/// that an edit to a fixture fails here with a clear message instead of as a confusing line mismatch.
fn line(file: &str, n: u64, text: &str) -> u64 {
    let source = std::fs::read_to_string(fixtures().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let actual = source.lines().nth(n as usize - 1).unwrap_or_else(|| panic!("{file} has no line {n}"));
    assert_eq!(actual.trim(), text.trim(), "fixtures/charts/{file}:{n} changed; update the test");
    n
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\nstdout: {}\nstderr: {}", run.stdout, run.stderr))
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings")
}

/// Every finding as (rule, file, line), sorted.
fn triples(report: &Value) -> Vec<(String, String, u64)> {
    let mut all: Vec<_> =
        findings(report).iter().map(|f| (s(&f["rule"]), s(&f["file"]), f["line"].as_u64().unwrap_or(0))).collect();
    all.sort();
    all
}

fn expected(items: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    let mut all: Vec<_> = items.iter().map(|(r, f, l)| (r.to_string(), f.to_string(), *l)).collect();
    all.sort();
    all
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The only finding of `rule`.
fn one<'a>(report: &'a Value, rule: &str) -> &'a Value {
    let matching: Vec<&Value> = findings(report).iter().filter(|f| f["rule"] == rule).collect();
    assert_eq!(matching.len(), 1, "expected one `{rule}` finding: {report:#}");
    matching[0]
}

fn kinds(finding: &Value) -> Vec<String> {
    finding["locations"].as_array().map(|l| l.iter().map(|x| s(&x["kind"])).collect()).unwrap_or_default()
}

/// The (file, line) of the first location of `kind`.
fn located(finding: &Value, kind: &str) -> (String, u64) {
    let locations = finding["locations"].as_array().expect("locations");
    let l = locations.iter().find(|l| l["kind"] == kind).unwrap_or_else(|| panic!("no `{kind}` location: {finding:#}"));
    (s(&l["file"]), l["line"].as_u64().unwrap_or(0))
}

fn environments(finding: &Value) -> Vec<String> {
    finding["environments"].as_array().expect("environments").iter().map(s).collect()
}

/// What the contract says of every finding: `locations` is non-empty, ordered values → template →
/// rendered, its first entry is the finding's own position, and `environments` is a list of names.
fn assert_shape(report: &Value) {
    for f in findings(report) {
        let locations = f["locations"].as_array().unwrap_or_else(|| panic!("finding lacks `locations`: {f:#}"));
        assert!(!locations.is_empty(), "empty `locations`: {f:#}");
        let rank = |kind: &str| match kind {
            "values" => 0,
            "template" => 1,
            "rendered" => 2,
            "manifest" => 3,
            other => panic!("unknown location kind `{other}`: {f:#}"),
        };
        let ranks: Vec<i32> = locations.iter().map(|l| rank(l["kind"].as_str().unwrap_or(""))).collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "locations out of order: {f:#}");
        for l in locations {
            assert!(l["file"].is_string() && l["line"].as_u64() >= Some(1) && l["column"].as_u64() >= Some(1), "{f:#}");
        }
        let first = &locations[0];
        assert_eq!(
            (&first["file"], &first["line"], &first["column"]),
            (&f["file"], &f["line"], &f["column"]),
            "the first location is the finding's own: {f:#}"
        );
        let envs = f["environments"].as_array().unwrap_or_else(|| panic!("finding lacks `environments`: {f:#}"));
        assert!(envs.iter().all(Value::is_string), "{f:#}");
    }
}

/// Runs `kpath check --format json .` in `dir` and checks the shape of every finding.
fn check(dir: &Path) -> (Run, Value) {
    let run = kpath(&["check", "--format", "json", "."], dir);
    let report = json(&run);
    assert_shape(&report);
    (run, report)
}

/// Processes still running `helm template <release>`: a render kpath gave up on must be killed, not
/// left spinning (helm ignores SIGTERM while a template runs). Any found are killed before failing.
fn assert_no_render_left(release: &str) {
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == "template") && args.iter().any(|a| a == release) {
            left.push((pid, args.join(" ")));
        }
    }
    for (pid, _) in &left {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(left.is_empty(), "kpath left helm running: {left:?}");
}

#[test]
fn findings_trace_back_through_helpers_to_values_and_templates() {
    let dir = repo(&["helpers"], &[(".kpath.yml", "namespace: shop\n")]);
    let replica_count = line("helpers/values.yaml", 1, "replicaCount: 2");
    let memory_limit = line("helpers/values.yaml", 12, "memory: 512Mi");
    let replicas = line("helpers/templates/deployment.yaml", 9, "replicas: {{ .Values.replicaCount }}");
    // The template line is the deepest route key the template writes (`resources:`); the `toYaml`
    // action below it fills the rest, which the values location then follows to `limits.memory`.
    let to_yaml = line("helpers/templates/deployment.yaml", 21, "resources:");

    let (run, report) = check(dir.path());
    assert_eq!(
        triples(&report),
        expected(&[
            ("hpa-replicas-conflict", "charts/helpers/values.yaml", replica_count),
            ("resources-memory-limit", "charts/helpers/values.yaml", memory_limit),
        ]),
        "{report:#}"
    );
    assert_eq!(run.code, 1, "hpa-replicas-conflict is an error");

    let conflict = one(&report, "hpa-replicas-conflict");
    assert_eq!(kinds(conflict), ["values", "template", "rendered"], "{conflict:#}");
    assert_eq!(located(conflict, "template"), ("charts/helpers/templates/deployment.yaml".into(), replicas));
    assert_eq!(located(conflict, "rendered").0, "helm://helpers/templates/deployment.yaml");
    assert_eq!(conflict["object"]["kind"], "Deployment");
    assert_eq!(conflict["object"]["name"], "helpers");
    assert_eq!(conflict["object"]["namespace"], "shop");

    let memory = one(&report, "resources-memory-limit");
    assert_eq!(kinds(memory), ["values", "template", "rendered"], "{memory:#}");
    assert_eq!(located(memory, "template"), ("charts/helpers/templates/deployment.yaml".into(), to_yaml));
    assert_eq!(located(memory, "rendered").0, "helm://helpers/templates/deployment.yaml");
    assert!(findings(&report).iter().all(|f| environments(f).is_empty()), "no environments configured");
}

#[test]
fn a_subchart_value_overridden_by_the_parent_is_located_in_the_parent_values() {
    let dir = repo(&["with-subchart"], &[(".kpath.yml", "namespace: shop\n")]);
    let tag = line("with-subchart/values.yaml", 7, "tag: latest");
    let image = line(
        "with-subchart/charts/backend/templates/deployment.yaml",
        22,
        r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}""#,
    );

    let (run, report) = check(dir.path());
    // The vendored subchart is rendered through its parent only, never as a chart of its own.
    assert_eq!(triples(&report), expected(&[("image-latest", "charts/with-subchart/values.yaml", tag)]), "{report:#}");
    assert_eq!(run.code, 0, "image-latest is a warning");
    let finding = one(&report, "image-latest");
    assert_eq!(kinds(finding)[0], "values", "{finding:#}");
    assert_eq!(
        located(finding, "template"),
        ("charts/with-subchart/charts/backend/templates/deployment.yaml".into(), image)
    );
    assert_eq!(located(finding, "rendered").0, "helm://with-subchart/charts/backend/templates/deployment.yaml");
    assert_eq!(finding["object"]["name"], "with-subchart-backend");
}

#[test]
fn environments_report_a_shared_breach_once_and_a_prod_only_breach_for_prod() {
    let config = "namespace: shop\nhelm:\n  releases:\n    - chart: charts/environments\n      namespace: shop\n      environments:\n        prod: {values: [values-prod.yaml]}\n        staging: {values: [values-staging.yaml]}\n";
    let dir = repo(&["environments"], &[(".kpath.yml", config)]);
    let memory_limit = line("environments/values.yaml", 12, "memory: 256Mi");
    let prod_tag = line("environments/values-prod.yaml", 4, "tag: latest");
    let image = line(
        "environments/templates/deployment.yaml",
        23,
        r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}""#,
    );

    let (_, report) = check(dir.path());
    assert_eq!(
        triples(&report),
        expected(&[
            ("image-latest", "charts/environments/values-prod.yaml", prod_tag),
            ("resources-memory-limit", "charts/environments/values.yaml", memory_limit),
        ]),
        "{report:#}"
    );
    let shared = one(&report, "resources-memory-limit");
    assert_eq!(environments(shared), ["prod", "staging"], "{shared:#}");
    assert_eq!(kinds(shared)[0], "values");
    assert!(located(shared, "rendered").0.starts_with("helm://environments/"), "{shared:#}");

    let prod_only = one(&report, "image-latest");
    assert_eq!(environments(prod_only), ["prod"], "{prod_only:#}");
    assert_eq!(kinds(prod_only)[0], "values");
    assert_eq!(located(prod_only, "template"), ("charts/environments/templates/deployment.yaml".into(), image));
    assert_eq!(located(prod_only, "rendered").0, "helm://environments/prod/templates/deployment.yaml");
}

#[test]
fn configured_releases_pass_name_namespace_values_and_set_to_helm() {
    // The chart's own values leave `database.host` empty, so without `set`/`values` it fails to render.
    let config = "namespace: shop\nhelm:\n  releases:\n    - chart: charts/required-missing\n      name: db-set\n      namespace: shop-a\n      set: {database.host: db.internal}\n    - chart: charts/required-missing\n      name: db-values\n      namespace: shop-b\n      values: [values-db.yaml]\n";
    let values_db = "database:\n  host: db.internal\nimage:\n  tag: latest\n";
    let dir =
        repo(&["required-missing"], &[(".kpath.yml", config), ("charts/required-missing/values-db.yaml", values_db)]);

    let (_, report) = check(dir.path());
    // Configured releases replace the default one-render-per-chart, which would fail on `required`.
    assert_eq!(
        triples(&report),
        expected(&[("image-latest", "charts/required-missing/values-db.yaml", 4)]),
        "{report:#}"
    );
    let finding = one(&report, "image-latest");
    assert_eq!(finding["object"]["name"], "db-values");
    assert_eq!(finding["object"]["namespace"], "shop-b");
    assert_eq!(located(finding, "rendered").0, "helm://db-values/templates/deployment.yaml");
    assert!(environments(finding).is_empty());
}

#[test]
fn without_a_namespace_objects_that_take_the_release_namespace_are_not_in_default_nor_missing_one() {
    // Nothing says where the chart is installed: `{{ .Release.Namespace }}` is decided by `helm install -n`.
    let dir = repo(&["clean"], &[]);
    line("clean/templates/service.yaml", 5, "namespace: {{ .Release.Namespace }}");
    let (run, report) = check(dir.path());
    assert_eq!(triples(&report), expected(&[]), "{report:#}");
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_chart_that_hard_codes_the_default_namespace_is_still_reported() {
    let dir = repo(&["hard-coded-default"], &[]);
    let pinned = line("hard-coded-default/templates/configmaps.yaml", 13, "namespace: default");
    let (run, report) = check(dir.path());
    assert_eq!(
        triples(&report),
        expected(&[("namespace-default", "charts/hard-coded-default/templates/configmaps.yaml", pinned)]),
        "only the object that names `default` itself: {report:#}"
    );
    let finding = one(&report, "namespace-default");
    assert_eq!(finding["object"]["name"], "hard-coded-default-pinned");
    assert_eq!(run.code, 1);
}

#[test]
fn a_clean_chart_has_no_findings() {
    let dir = repo(&["clean"], &[(".kpath.yml", "namespace: clean\n")]);
    let (run, report) = check(dir.path());
    assert_eq!(triples(&report), expected(&[]), "{report:#}");
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_missing_required_value_fails_the_render_at_its_template_line_and_the_rest_is_checked() {
    let dir =
        repo(&["required-missing", "helpers"], &[(".kpath.yml", "namespace: shop\n"), ("apps/app.yaml", IN_DEFAULT)]);
    let required = line(
        "required-missing/templates/deployment.yaml",
        25,
        r#"value: {{ required "database.host is required" .Values.database.host | quote }}"#,
    );

    let (run, report) = check(dir.path());
    assert_eq!(
        triples(&report),
        expected(&[
            ("render-failed", "charts/required-missing/templates/deployment.yaml", required),
            ("hpa-replicas-conflict", "charts/helpers/values.yaml", 1),
            ("resources-memory-limit", "charts/helpers/values.yaml", 12),
            ("namespace-default", "apps/app.yaml", 5),
        ]),
        "{report:#}"
    );
    assert_eq!(run.code, 1);
    let failed = one(&report, "render-failed");
    assert_eq!(failed["severity"], "error");
    assert!(s(&failed["message"]).contains("database.host is required"), "{failed:#}");
    let plain = one(&report, "namespace-default");
    assert_eq!(kinds(plain), ["manifest"], "a plain file is its own only location: {plain:#}");
    assert!(environments(plain).is_empty());
}

#[test]
fn a_template_syntax_error_fails_the_render_at_its_line() {
    let dir = repo(&["syntax-error"], &[(".kpath.yml", "namespace: shop\n")]);
    // Helm reports `configmap.yaml:9: unclosed action started at configmap.yaml:8`: line 9 is the end
    // of the file, line 8 is where the action the author must close begins.
    let unclosed = line("syntax-error/templates/configmap.yaml", 8, "greeting: {{ .Values.greeting");

    let (run, report) = check(dir.path());
    assert_eq!(
        triples(&report),
        expected(&[("render-failed", "charts/syntax-error/templates/configmap.yaml", unclosed)]),
        "{report:#}"
    );
    assert_eq!(run.code, 1);
    assert!(s(&one(&report, "render-failed")["message"]).contains("unclosed action"), "{report:#}");
}

/// The finding of a chart that failed as a whole: on its `Chart.yaml` (any line), the only finding.
fn chart_failure(report: &Value, chart: &str) -> String {
    let all = triples(report);
    assert_eq!(all.len(), 1, "{report:#}");
    assert_eq!(
        (all[0].0.as_str(), all[0].1.as_str()),
        ("render-failed", format!("charts/{chart}/Chart.yaml").as_str())
    );
    s(&findings(report)[0]["message"])
}

#[test]
fn a_dependency_that_is_not_vendored_fails_on_chart_yaml() {
    let dir = repo(&["missing-dependency"], &[(".kpath.yml", "namespace: shop\n")]);
    let (run, report) = check(dir.path());
    let message = chart_failure(&report, "missing-dependency");
    assert!(message.contains("redis"), "{message}");
    assert_eq!(run.code, 1);
}

#[test]
fn an_endless_template_times_out_and_is_killed() {
    let config = "namespace: shop\nhelm:\n  timeout: 2s\n";
    let dir = repo(&["endless-range"], &[(".kpath.yml", config)]);
    let run = kpath(&["check", "--format", "json", "."], dir.path());
    assert_no_render_left("endless-range");
    let report = json(&run);
    assert_shape(&report);
    let message = chart_failure(&report, "endless-range");
    assert!(message.contains("timed out after 2s"), "{message}");
    assert_eq!(run.code, 1);
}

#[test]
fn output_over_the_cap_fails_the_render() {
    let config = "namespace: shop\nhelm:\n  maxOutput: 1Mi\n";
    let dir = repo(&["huge-output"], &[(".kpath.yml", config)]);
    let run = kpath(&["check", "--format", "json", "."], dir.path());
    assert_no_render_left("huge-output");
    let report = json(&run);
    assert_shape(&report);
    let message = chart_failure(&report, "huge-output");
    assert!(message.contains("more than 1 MiB"), "{message}");
    assert_eq!(run.code, 1);
}

#[test]
fn a_symlink_out_of_the_chart_is_not_followed() {
    // <tmp>/repo is the repository; <tmp>/outside holds a manifest the link points to, outside the
    // repository too, so that nothing but following the link could bring it into the report.
    let top = tempfile::tempdir().expect("tempdir");
    let root = top.path().join("repo");
    fill_repo(&root, &["symlink-escape"], &[(".kpath.yml", "namespace: shop\n")]);
    let outside = top.path().join("outside/outside.yaml");
    std::fs::create_dir_all(outside.parent().expect("parent")).expect("mkdir");
    std::fs::write(&outside, IN_DEFAULT.replace("name: checkout\n  namespace", "name: leaked\n  namespace"))
        .expect("write");
    let link = root.join("charts/symlink-escape/templates/outside.yaml");
    std::os::unix::fs::symlink("../../../../outside/outside.yaml", &link).expect("symlink");
    assert!(link.is_file(), "the link resolves");
    let image = line(
        "symlink-escape/templates/deployment.yaml",
        22,
        "image: registry.example.com/escape:latest # deliberate: proves the chart's own templates still render",
    );

    let (run, report) = check(&root);
    let rules: BTreeSet<String> = findings(&report).iter().map(|f| s(&f["rule"])).collect();
    assert_eq!(rules, BTreeSet::from(["image-latest".to_string(), "render-failed".to_string()]), "{report:#}");
    assert_eq!(findings(&report).len(), 2, "{report:#}");
    assert!(!run.stdout.contains("leaked"), "the linked manifest was read: {report:#}");

    let failed = one(&report, "render-failed");
    let named = format!("{} {}", s(&failed["file"]), s(&failed["message"]));
    assert!(named.contains("templates/outside.yaml"), "names the link: {failed:#}");

    let latest = one(&report, "image-latest");
    assert_eq!(
        (s(&latest["file"]), latest["line"].as_u64()),
        ("charts/symlink-escape/templates/deployment.yaml".to_string(), Some(image))
    );
    assert_eq!(kinds(latest), ["template", "rendered"], "{latest:#}");
}

#[test]
fn without_helm_each_chart_is_a_notice_and_the_rest_is_checked() {
    let empty_path = tempfile::tempdir().expect("tempdir");
    let no_helm_on_path = Some(empty_path.path().as_os_str().to_os_string());
    let dir = repo(&["clean"], &[(".kpath.yml", "namespace: clean\n")]);
    for kpath_helm in [Some(OsString::from("/nonexistent")), None] {
        let run = kpath_env(
            &["check", "--format", "json", "."],
            dir.path(),
            &[("KPATH_HELM", kpath_helm.clone()), ("PATH", no_helm_on_path.clone())],
        );
        assert_eq!(run.code, 0, "KPATH_HELM={kpath_helm:?}: {}\n{}", run.stdout, run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        let skipped: Vec<&serde_json::Value> =
            report["findings"].as_array().expect("findings").iter().filter(|f| f["rule"] == "render-skipped").collect();
        assert_eq!(skipped.len(), 1, "{}", run.stdout);
        assert!(skipped[0]["message"].as_str().unwrap_or("").contains("install"), "{}", run.stdout);
        let stderr = run.stderr.to_lowercase();
        assert!(
            stderr.contains("helm") && stderr.contains("install"),
            "KPATH_HELM={kpath_helm:?}: no install hint: {}",
            run.stderr
        );
    }
    // Without charts, helm is not needed.
    let plain = repo(&[], &[("app.yaml", CLEAN)]);
    let run = kpath_env(&["check", "."], plain.path(), &[("KPATH_HELM", None), ("PATH", no_helm_on_path)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn helm_is_found_by_flag_environment_or_path() {
    let dir = repo(&["helpers"], &[(".kpath.yml", "namespace: shop\n")]);
    let (_, reference) = check(dir.path());
    assert!(!findings(&reference).is_empty());
    let pinned = helm();
    let bin = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&pinned, bin.path().join("helm")).expect("symlink helm");
    let empty = tempfile::tempdir().expect("tempdir");
    let path_of = |dir: &Path| Some(dir.as_os_str().to_os_string());
    let helm_flag = pinned.to_str().expect("UTF-8 path");
    let cases: [(&str, Vec<&str>, Vec<EnvChange<'_>>); 3] = [
        (
            "--helm wins over KPATH_HELM",
            vec!["check", "--helm", helm_flag, "--format", "json", "."],
            vec![("KPATH_HELM", Some("/nonexistent".into())), ("PATH", path_of(empty.path()))],
        ),
        (
            "KPATH_HELM",
            vec!["check", "--format", "json", "."],
            vec![("KPATH_HELM", Some(pinned.clone().into_os_string())), ("PATH", path_of(empty.path()))],
        ),
        ("PATH", vec!["check", "--format", "json", "."], vec![("KPATH_HELM", None), ("PATH", path_of(bin.path()))]),
    ];
    for (name, args, env) in cases {
        let run = kpath_env(&args, dir.path(), &env);
        let report = json(&run);
        assert_eq!(findings(&report), findings(&reference), "{name}: {}", run.stderr);
    }
}

#[test]
fn renders_are_cached() {
    let dir = repo(&["helpers"], &[(".kpath.yml", "namespace: shop\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_str().expect("UTF-8 path");
    let args = ["check", "--cache-dir", cache_dir, "--format", "json", "."];
    let first = kpath(&args, dir.path());
    let first_report = json(&first);
    assert_shape(&first_report);
    assert!(!findings(&first_report).is_empty(), "{first_report:#}");
    assert!(
        std::fs::read_dir(cache.path()).expect("cache dir").next().is_some(),
        "the first run fills the cache dir: {}",
        first.stderr
    );
    let second = kpath(&args, dir.path());
    let second_report = json(&second);
    assert_eq!(findings(&second_report), findings(&first_report));
    assert_eq!(second.code, first.code);
}

/// Writes an executable `helm` at `dir/helm` that logs its arguments to `log` and runs the pinned helm:
/// it shows which helm processes a run started.
fn logging_helm(dir: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("helm");
    let text = format!("#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), helm().display());
    std::fs::write(&script, text).expect("write the logging helm");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

fn helm_calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn a_warm_cached_check_starts_no_helm_and_failed_renders_are_cached_too() {
    let dir = repo(&["helpers", "required-missing"], &[(".kpath.yml", "namespace: shop\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let bin = tempfile::tempdir().expect("tempdir");
    let log = bin.path().join("calls.log");
    let helm = logging_helm(bin.path(), &log);
    let cache_dir = cache.path().to_str().expect("UTF-8 path");
    let args = ["check", "--cache-dir", cache_dir, "--format", "json", "."];
    let env = [("KPATH_HELM", Some(helm.into_os_string()))];

    let first = kpath_env(&args, dir.path(), &env);
    let first_report = json(&first);
    assert!(findings(&first_report).iter().any(|f| f["rule"] == "render-failed"), "{first_report:#}");
    let mut calls = helm_calls(&log);
    calls.sort();
    assert_eq!(calls, ["template", "template", "version"], "one version check, one render per chart");

    std::fs::remove_file(&log).expect("clear the log");
    let second = kpath_env(&args, dir.path(), &env);
    assert_eq!(findings(&json(&second)), findings(&first_report), "{}", second.stderr);
    assert_eq!(second.code, first.code);
    assert!(helm_calls(&log).is_empty(), "a warm check ran helm: {:?}", helm_calls(&log));
}

#[test]
fn a_file_dependency_in_the_repository_is_rendered() {
    let dir = repo(&["file-dependency", "common-lib"], &[(".kpath.yml", "namespace: shop\n")]);
    let (_, report) = check(dir.path());
    assert!(
        !findings(&report).iter().any(|f| f["rule"] == "render-failed"),
        "the dependency is copied in, not missing: {report:#}"
    );
    // The dependency's template was rendered as part of the parent chart.
    let rendered: BTreeSet<String> = findings(&report)
        .iter()
        .filter(|f| f["rule"] == "namespace-default")
        .map(|f| located(f, "rendered").0)
        .collect();
    assert!(
        rendered.contains("helm://file-dependency/charts/common-lib/templates/configmap.yaml"),
        "{rendered:?}\n{report:#}"
    );
}

#[test]
fn a_file_dependency_outside_the_repository_fails_on_its_repository_line() {
    let top = tempfile::tempdir().expect("tempdir");
    let root = top.path().join("repo");
    fill_repo(&root, &["file-dependency"], &[(".kpath.yml", "namespace: shop\n")]);
    copy_dir(&fixtures().join("common-lib"), &top.path().join("common-lib"));
    let chart_yaml = root.join("charts/file-dependency/Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).expect("read Chart.yaml");
    std::fs::write(&chart_yaml, text.replace("file://../common-lib", "file://../../../common-lib")).expect("write");
    let repository = line("file-dependency/Chart.yaml", 9, "repository: file://../common-lib");

    let (run, report) = check(&root);
    assert_eq!(
        triples(&report),
        expected(&[("render-failed", "charts/file-dependency/Chart.yaml", repository)]),
        "{report:#}"
    );
    let message = s(&one(&report, "render-failed")["message"]);
    assert!(message.contains("common-lib") && message.contains("outside the repository"), "{message}");
    assert_eq!(run.code, 1);
}

#[test]
fn generated_secrets_are_not_committed_but_values_written_in_the_chart_are() {
    let dir = repo(&["generated-secrets"], &[(".kpath.yml", "namespace: shop\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_str().expect("UTF-8 path");
    let args = ["check", "--cache-dir", cache_dir, "--format", "json", "."];
    let first = kpath(&args, dir.path());
    let report = json(&first);
    assert_shape(&report);
    // `-password` (randAlphaNum in a helper, genPrivateKey) and `-ca` (genCA) are generated; `-trust`
    // holds only a CA certificate; `-literal` is written in values.yaml.
    let committed = one(&report, "secret-committed");
    assert_eq!(committed["object"]["name"], "generated-secrets-literal", "{report:#}");
    assert!(s(&committed["message"]).contains("`api-token`"), "{committed:#}");
    assert!(!first.stdout.contains("s3cr3t-committed-token"), "the committed value is redacted");
    // Cached, the result is the same.
    let second = kpath(&args, dir.path());
    assert_eq!(findings(&json(&second)), findings(&report));
}
