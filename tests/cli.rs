//! End-to-end tests of the `kpath` binary: exit codes, the four formats, configuration errors,
//! suppression, and hostile input (each named in the output, the other files still checked).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const CLEAN: &str = include_str!("../fixtures/rules/namespace-default/good/deployment.yaml");
const IN_DEFAULT: &str = include_str!("../fixtures/rules/namespace-default/bad/deployment.yaml");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kpath(args: &[&str], cwd: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kpath")).args(args).current_dir(cwd).output().expect("kpath runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs kpath with the pinned helm that `scripts/test` installs.
fn kpath_with_helm(args: &[&str], cwd: &Path) -> Run {
    let helm = std::env::var_os("KPATH_HELM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/helm-3.17.3/bin/helm"));
    assert!(helm.is_file(), "the pinned helm is missing: run `bash scripts/test`, which installs it");
    let out = Command::new(env!("CARGO_BIN_EXE_kpath"))
        .args(args)
        .current_dir(cwd)
        .env("KPATH_HELM", helm)
        .output()
        .expect("kpath runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("mark repository root");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

fn rules_of(report: &Value) -> Vec<(String, String, bool)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                !f["suppressed"].is_null(),
            )
        })
        .collect()
}

#[test]
fn exit_codes() {
    let clean = repo(&[("app.yaml", CLEAN)]);
    assert_eq!(kpath(&["check", "."], clean.path()).code, 0);
    let bad = repo(&[("app.yaml", IN_DEFAULT)]);
    let run = kpath(&["check", "."], bad.path());
    assert_eq!(run.code, 1, "{}", run.stdout);
    let missing = kpath(&["check", "nope"], bad.path());
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
    let usage = kpath(&["check", "--format", "xml"], bad.path());
    assert_eq!(usage.code, 2);
}

#[test]
fn fail_on_tightens_the_exit_code() {
    let dir = repo(&[(
        "app.yaml",
        &CLEAN.replace("image: registry.example.com/checkout:1.4.2", "image: registry.example.com/checkout"),
    )]);
    let run = kpath(&["check", "--format", "json", "."], dir.path());
    let report = json(&run);
    assert!(rules_of(&report).iter().any(|(r, _, _)| r == "image-latest"), "{}", run.stdout);
    assert_eq!(run.code, 0, "warnings alone do not fail by default");
    assert_eq!(kpath(&["check", "--fail-on", "warning", "."], dir.path()).code, 1);
}

#[test]
fn text_output_is_rustc_style_grouped_by_object() {
    let dir = repo(&[("deploy/app.yaml", IN_DEFAULT)]);
    let run = kpath(&["check", "deploy"], dir.path());
    let expected = "==> Deployment default/checkout\n\nerror[namespace-default]: Deployment `checkout` is in the `default` namespace\n --> deploy/app.yaml:5:3\n  |\n5 |   namespace: default\n  |   ^^^^^^^^^^^^^^^^^^\n  = at: metadata.namespace\n";
    assert!(run.stdout.starts_with(expected), "{}", run.stdout);
    assert!(run.stdout.contains("= help: Set `metadata.namespace`"), "{}", run.stdout);
    assert!(run.stdout.ends_with("kpath: 1 error in 1 file\n"), "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b'), "no colour when not a terminal");
}

#[test]
fn text_output_groups_findings_under_their_object_or_file() {
    let two = format!("{IN_DEFAULT}\n---\n{}", IN_DEFAULT.replace("name: checkout", "name: cart"));
    let dir =
        repo(&[("deploy/app.yaml", two.as_str()), ("deploy/Dockerfile", "FROM python:3.12-slim\nCMD python app.py\n")]);
    let run = kpath(&["check", "deploy"], dir.path());
    let headings: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(
        headings,
        ["==> deploy/Dockerfile", "==> Deployment default/checkout", "==> Deployment default/cart"],
        "{}",
        run.stdout
    );
    // Each group holds its own findings only.
    let cart = run.stdout.split("==> Deployment default/cart").nth(1).unwrap_or("");
    assert!(cart.contains("Deployment `cart` is in the `default` namespace") && !cart.contains("`checkout`"), "{cart}");
    let docker = run.stdout.split("==> Deployment").next().unwrap_or("");
    assert!(docker.contains("[dockerfile-shell-form-cmd]") && !docker.contains("namespace-default"), "{docker}");
}

#[test]
fn json_output_has_the_documented_shape() {
    let dir = repo(&[("app.yaml", IN_DEFAULT)]);
    let report = json(&kpath(&["check", "--format", "json", "."], dir.path()));
    let f = &report["findings"][0];
    for key in ["rule", "severity", "message", "file", "line", "column", "route", "object", "help", "suppressed"] {
        assert!(f.get(key).is_some(), "finding lacks `{key}`: {f}");
    }
    assert_eq!(f["route"], "metadata.namespace");
    assert_eq!(f["object"]["apiVersion"], "apps/v1");
    assert_eq!(f["object"]["kind"], "Deployment");
    assert_eq!(f["object"]["namespace"], "default");
    assert_eq!(f["object"]["name"], "checkout");
    assert_eq!((f["line"].as_u64(), f["column"].as_u64()), (Some(5), Some(3)));
    for key in ["files", "documents", "objects", "errors", "warnings", "notices", "suppressed"] {
        assert!(report["summary"].get(key).is_some(), "summary lacks `{key}`");
    }
}

#[test]
fn sarif_and_github_formats() {
    let dir = repo(&[("app.yaml", IN_DEFAULT)]);
    let sarif = json(&kpath(&["check", "--format", "sarif", "."], dir.path()));
    assert_eq!(sarif["version"], "2.1.0");
    let driver = &sarif["runs"][0]["tool"]["driver"];
    assert_eq!(driver["rules"].as_array().map(Vec::len), Some(kpath::rules::RULES.len()));
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "namespace-default");
    assert_eq!(result["level"], "error");
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 5);
    let rule_index = result["ruleIndex"].as_u64().expect("index") as usize;
    assert_eq!(driver["rules"][rule_index]["id"], "namespace-default");

    let gh = kpath(&["check", "--format", "github", "."], dir.path());
    assert!(
        gh.stdout.starts_with("::error file=app.yaml,line=5,col=3,title=kpath namespace-default::Deployment"),
        "{}",
        gh.stdout
    );
}

#[test]
fn rules_and_explain() {
    let dir = repo(&[]);
    let rules = kpath(&["rules"], dir.path());
    assert_eq!(rules.code, 0);
    assert_eq!(rules.stdout.lines().count(), kpath::rules::RULES.len());
    let explain = kpath(&["explain", "namespace-default"], dir.path());
    assert_eq!(explain.code, 0);
    assert!(explain.stdout.starts_with("## `namespace-default` (error)"), "{}", explain.stdout);
    // The good example changes one line of the bad one: shown as that change.
    assert!(explain.stdout.contains("### Bad → good") && explain.stdout.contains("```diff"), "{}", explain.stdout);
    let unknown = kpath(&["explain", "namespace-defualt"], dir.path());
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("did you mean `namespace-default`?"), "{}", unknown.stderr);
}

#[test]
fn configuration_errors_name_the_line() {
    let dir = repo(&[
        ("app.yaml", CLEAN),
        (".kpath.yml", "kubernetesVersion: \"1.30\"\nrules:\n  namespace-default:\n    severty: warning\n"),
    ]);
    let run = kpath(&["check", "."], dir.path());
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(".kpath.yml:4:5: unknown option `severty` for rule `namespace-default`"),
        "{}",
        run.stderr
    );
}

#[test]
fn configuration_changes_severity_and_ignores_paths() {
    let dir = repo(&[
        ("apps/app.yaml", IN_DEFAULT),
        ("vendor/other.yaml", IN_DEFAULT),
        (".kpath.yml", "rules:\n  namespace-default: warning\nignore:\n  - \"vendor/**\"\n"),
    ]);
    // Run from a subdirectory: the config is found at the repository root and its globs stay relative to it.
    let run = kpath(&["check", "--format", "json", "."], dir.path());
    let report = json(&run);
    assert_eq!(run.code, 0, "downgraded to a warning: {}", run.stdout);
    let found = rules_of(&report);
    assert_eq!(found, vec![("namespace-default".to_string(), "apps/app.yaml".to_string(), false)]);
    assert_eq!(report["findings"][0]["severity"], "warning");
    let from_sub = kpath(&["check", "--format", "json", "."], &dir.path().join("apps"));
    assert_eq!(json(&from_sub)["findings"][0]["severity"], "warning", "config found from a subdirectory");
}

#[test]
fn suppression_by_comment_annotation_and_waiver() {
    let trailing = IN_DEFAULT
        .replace("namespace: default", "namespace: default # kpath:ignore namespace-default legacy app, moving in Q3");
    let above = IN_DEFAULT
        .replace("  namespace: default", "  # kpath:ignore namespace-default shared sandbox\n  namespace: default");
    let annotated = IN_DEFAULT.replace(
        "  namespace: default",
        "  namespace: default\n  annotations:\n    kpath/ignore: \"namespace-default, image-latest\"",
    );
    let waived = IN_DEFAULT.replace("name: checkout\n  namespace", "name: legacy-billing\n  namespace");
    let expired = IN_DEFAULT.replace("name: checkout\n  namespace", "name: old-ledger\n  namespace");
    let dir = repo(&[
        ("a-trailing.yaml", &trailing),
        ("b-above.yaml", &above),
        ("c-annotated.yaml", &annotated),
        ("d-waived.yaml", &waived),
        ("e-expired.yaml", &expired),
        (
            ".kpath.yml",
            "waivers:\n  - rule: namespace-default\n    name: legacy-*\n    reason: billing moves in Q3\n    expires: 2999-01-01\n  - rule: namespace-default\n    name: old-ledger\n    reason: was temporary\n    expires: 2020-01-01\n",
        ),
    ]);
    let run = kpath(&["check", "--format", "json", "."], dir.path());
    let report = json(&run);
    let findings = report["findings"].as_array().expect("findings");
    let by_file =
        |name: &str| findings.iter().find(|f| f["file"] == name).unwrap_or_else(|| panic!("{name}: {}", run.stdout));
    assert_eq!(by_file("a-trailing.yaml")["suppressed"]["kind"], "comment");
    assert_eq!(by_file("a-trailing.yaml")["suppressed"]["reason"], "legacy app, moving in Q3");
    assert_eq!(by_file("b-above.yaml")["suppressed"]["reason"], "shared sandbox");
    assert_eq!(by_file("c-annotated.yaml")["suppressed"]["kind"], "annotation");
    assert_eq!(by_file("d-waived.yaml")["suppressed"]["kind"], "waiver");
    assert_eq!(by_file("d-waived.yaml")["suppressed"]["reason"], "billing moves in Q3");
    let expired = by_file("e-expired.yaml");
    assert!(expired["suppressed"].is_null(), "an expired waiver no longer applies");
    assert!(expired["help"].as_str().unwrap_or("").contains("expired on 2020-01-01"), "{expired}");
    assert_eq!(report["summary"]["suppressed"], 4);
    assert_eq!(run.code, 1, "only the expired waiver's finding counts");
    let text = kpath(&["check", "."], dir.path());
    assert!(text.stdout.contains("(4 suppressed)"), "{}", text.stdout);
    assert!(!text.stdout.contains("a-trailing.yaml"), "suppressed findings are hidden in text by default");
}

#[test]
fn hostile_input_is_reported_and_the_rest_is_still_checked() {
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb, namespace: x}\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let dir = repo(&[
        ("bomb.yaml", &bomb),
        ("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {a: [}\n"),
        ("multi.yaml", &format!("{IN_DEFAULT}---\nkind: [unclosed\n---\n{IN_DEFAULT}")),
        ("deep.yaml", &"[".repeat(50_000)),
        ("Dockerfile", "FROM alpine:3.20 AS base\\\n\nRUN echo \\\n  # comment inside\n  done \\\n"),
        ("z-last.yaml", IN_DEFAULT),
    ]);
    std::fs::write(dir.path().join("latin1.yaml"), b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n")
        .expect("write");
    let big = std::fs::File::create(dir.path().join("huge.yaml")).expect("create");
    big.set_len(100 * 1024 * 1024).expect("sparse 100 MB file");
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).expect("symlink loop");

    let run = kpath(&["check", "--format", "json", "."], dir.path());
    assert_eq!(run.code, 1);
    let report = json(&run);
    let findings = report["findings"].as_array().expect("findings");
    let about = |file: &str| -> Vec<&Value> { findings.iter().filter(|f| f["file"] == file).collect() };
    let message = |file: &str| {
        about(file).iter().map(|f| f["message"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>().join(" | ")
    };
    assert!(message("bomb.yaml").contains("alias bomb"), "{}", message("bomb.yaml"));
    assert_eq!(about("broken.yaml")[0]["line"], 5, "{}", message("broken.yaml"));
    assert!(message("latin1.yaml").contains("not valid UTF-8"));
    assert_eq!(about("latin1.yaml")[0]["line"], 3);
    assert!(message("huge.yaml").contains("100 MiB"), "{}", message("huge.yaml"));
    let deep = message("deep.yaml");
    assert!(deep.contains("nesting deeper") || deep.contains("recursion limit"), "{deep}");
    // The broken middle document does not hide its neighbours.
    let multi: Vec<&str> = about("multi.yaml").iter().map(|f| f["rule"].as_str().unwrap_or("")).collect();
    assert_eq!(multi.iter().filter(|r| **r == "namespace-default").count(), 2, "{multi:?}");
    assert!(multi.contains(&"manifest-invalid"));
    assert!(!about("z-last.yaml").is_empty(), "files after the bad ones are still checked");
    let skipped = report["summary"]["skipped"].as_array().expect("skipped");
    assert!(skipped.iter().any(|s| s["reason"].as_str().unwrap_or("").contains("symlink loop")), "{skipped:?}");
    assert!(run.stderr.is_empty(), "no panic or noise: {}", run.stderr);
}

#[test]
fn charts_are_rendered_and_findings_point_at_the_template() {
    let dir = repo(&[
        ("charts/shop/Chart.yaml", "apiVersion: v2\nname: shop\nversion: 0.1.0\n"),
        ("charts/shop/values.yaml", "image: registry.example.com/shop:1.2.3\n"),
        (
            "charts/shop/templates/deployment.yaml",
            &IN_DEFAULT
                .replace(
                    "name: checkout\n  namespace: default",
                    "name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}",
                )
                .replace("image: registry.example.com/checkout:1.4.2", "image: {{ .Values.image }}"),
        ),
        (".kpath.yml", "namespace: default\n"),
    ]);
    let run = kpath_with_helm(&["check", "--format", "json", "--no-cache", "."], dir.path());
    let report = json(&run);
    // The template is not linted as plain YAML (its `{{ }}` would not parse); the rendered Deployment
    // lands in the release namespace `.kpath.yml` names, `default`, reported on the template line that sets it.
    assert_eq!(
        rules_of(&report),
        vec![("namespace-default".to_string(), "charts/shop/templates/deployment.yaml".to_string(), false)]
    );
    let f = &report["findings"][0];
    assert_eq!(f["line"], 5);
    let kinds: Vec<&str> =
        f["locations"].as_array().expect("locations").iter().filter_map(|l| l["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["template", "rendered"]);
    assert_eq!(f["locations"][1]["file"], "helm://shop/templates/deployment.yaml");
}

#[test]
fn charts_without_helm_are_a_notice_and_the_rest_is_checked() {
    let dir = repo(&[("charts/shop/Chart.yaml", "apiVersion: v2\nname: shop\nversion: 0.1.0\n"), ("app.yaml", CLEAN)]);
    let out = Command::new(env!("CARGO_BIN_EXE_kpath"))
        .args(["check", "."])
        .current_dir(dir.path())
        .env("KPATH_HELM", "")
        .env("PATH", "/nonexistent")
        .output()
        .expect("kpath runs");
    assert_eq!(out.status.code(), Some(0), "a notice does not fail the check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no `helm` binary found") && stderr.contains("install"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("render-skipped") && stdout.contains("charts/shop/Chart.yaml"), "{stdout}");
}

#[test]
fn a_kustomization_namespace_counts_as_set() {
    let no_namespace = CLEAN.replace("  namespace: checkout\n", "");
    let dir = repo(&[
        ("base/deployment.yaml", &no_namespace),
        (
            "base/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: checkout\nresources:\n  - deployment.yaml\n",
        ),
        ("plain/deployment.yaml", &no_namespace),
    ]);
    let report = json(&kpath(&["check", "--format", "json", "."], dir.path()));
    assert_eq!(rules_of(&report), vec![("namespace-missing".to_string(), "plain/deployment.yaml".to_string(), false)]);
}

#[test]
fn a_component_no_root_uses_is_neither_rendered_nor_checked_as_files() {
    // Libraries of Kustomize components (microservices-demo ships a dozen) are meant to be included by someone
    // else's Kustomization: kustomize cannot build one alone, and its patches are not whole objects.
    let dir = repo(&[
        (
            "components/no-probes/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - path: patch.yaml\n",
        ),
        (
            "components/no-probes/patch.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  template:\n    spec:\n      containers:\n        - name: checkout\n          image: registry.example.com/checkout:latest\n",
        ),
    ]);
    let report = json(&kpath(&["check", "--format", "json", "."], dir.path()));
    assert_eq!(rules_of(&report), Vec::<(String, String, bool)>::new());
}

/// Planted credentials of every shape kpath detects. None may appear in any output format.
const PLANTED: &[&str] = &[
    "hunter2-planted-value",
    "AKIAPLANTED000000000",
    "ghp_PlantedTokenValue0123456789abcdefABCD",
    "xoxb-planted-slack-token",
    "sk_live_plantedStripeKey000",
    "postgres://app:PlantedUrlPass@db:5432/app",
    "PlantedUrlPass",
    "MIIEplantedPEMbody",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA",
    "cGxhbnRlZC1zZWNyZXQ=",
    "planted-string-data",
    "planted-configmap-password",
    "planted-dockerfile-token",
];

#[test]
fn secrets_never_appear_in_any_output() {
    let deployment = CLEAN.replace(
        "          resources:",
        "          env:\n            - name: DB_PASSWORD\n              value: hunter2-planted-value\n            - name: AWS_ACCESS_KEY_ID\n              value: AKIAPLANTED000000000\n            - name: GH\n              value: ghp_PlantedTokenValue0123456789abcdefABCD\n            - name: SLACK\n              value: xoxb-planted-slack-token\n            - name: STRIPE\n              value: sk_live_plantedStripeKey000\n            - name: DATABASE_URL\n              value: postgres://app:PlantedUrlPass@db:5432/app\n            - name: SESSION\n              value: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA\n          resources:",
    );
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: checkout\n  namespace: checkout\n  labels: {app: checkout}\ndata:\n  password: cGxhbnRlZC1zZWNyZXQ=\n  broken: planted-string-data\nstringData:\n  key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    MIIEplantedPEMbody\n    -----END RSA PRIVATE KEY-----\n";
    let configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: checkout\n  namespace: checkout\n  labels: {app: checkout}\ndata:\n  DB_PASSWORD: planted-configmap-password\n";
    let dockerfile = "FROM golang:1.22 AS build\nRUN go build -o /app .\nFROM gcr.io/distroless/static\nENV API_TOKEN=planted-dockerfile-token\nCOPY --from=build /app /app\nCMD [\"/app\", \"--token=planted-dockerfile-token\"]\n";
    let dir = repo(&[
        ("deployment.yaml", &deployment),
        ("secret.yaml", secret),
        ("configmap.yaml", configmap),
        ("Dockerfile", dockerfile),
        (".dockerignore", "*\n"),
    ]);
    let mut rules_seen = std::collections::BTreeSet::new();
    for format in ["text", "json", "sarif", "github"] {
        let run = kpath(&["check", "--format", format, "--show-suppressed", "."], dir.path());
        assert_eq!(run.code, 1, "{format}: {}", run.stdout);
        for value in PLANTED {
            assert!(!run.stdout.contains(value), "{format} output leaks `{value}`:\n{}", run.stdout);
            assert!(!run.stderr.contains(value), "{format} stderr leaks `{value}`");
        }
        if format == "json" {
            rules_seen.extend(rules_of(&json(&run)).into_iter().map(|(r, _, _)| r));
        }
    }
    for rule in
        ["secret-in-env", "aws-static-credentials", "secret-committed", "secret-in-configmap", "manifest-invalid"]
    {
        assert!(rules_seen.contains(rule), "the planted input should trigger {rule}: {rules_seen:?}");
    }
}

/// `kpath serve` without its settings stops at once, naming the first missing one on one line.
#[test]
fn serve_names_a_missing_setting_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpath"));
    command.arg("serve").current_dir(dir.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("KPATH_") {
            command.env_remove(name);
        }
    }
    let out = command.output().expect("kpath runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: kpath serve: KPATH_APP_ID (--app-id) is not set"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_kpath"))
        .args(["serve", "--app-id", "12", "--listen", "nowhere"])
        .env_remove("KPATH_PRIVATE_KEY_PATH")
        .env("KPATH_PRIVATE_KEY", "not a key")
        .env("KPATH_WEBHOOK_SECRET", "s3cret-value")
        .current_dir(dir.path())
        .output()
        .expect("kpath runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("KPATH_PRIVATE_KEY is not a PEM-encoded RSA private key"), "{stderr}");
    assert!(!stderr.contains("not a key") && !stderr.contains("s3cret-value"), "{stderr}");
}

/// kpath's own deployment files follow the golden path they enforce.
#[test]
fn the_deploy_directory_passes_kpaths_own_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = kpath(&["check", "--fail-on", "notice", "deploy"], root);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn concise_output_is_one_line_per_finding() {
    let latest = CLEAN.replace("checkout:1.4.2", "checkout:latest");
    let dir = repo(&[("app.yaml", &latest)]);
    let run = kpath(&["check", "--format", "concise", "."], dir.path());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.len() >= 2, "{}", run.stdout);
    let finding = lines.iter().find(|l| l.contains("[image-latest]")).unwrap_or_else(|| panic!("{}", run.stdout));
    let (place, rest) = finding.split_once(": ").expect("path:line:col: rest");
    let parts: Vec<&str> = place.split(':').collect();
    assert_eq!(parts.len(), 3, "{finding}");
    assert_eq!(parts[0], "app.yaml");
    assert!(parts[1].parse::<u32>().is_ok() && parts[2].parse::<u32>().is_ok(), "{finding}");
    assert!(rest.starts_with("warning[image-latest] "), "{finding}");
    assert!(lines.last().is_some_and(|l| l.starts_with("Found ")), "{}", run.stdout);
}

#[test]
fn a_missing_config_file_is_not_found_by_its_flag() {
    let dir = repo(&[("app.yaml", CLEAN)]);
    let run = kpath(&["check", "--config", "nope.yml", "."], dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--config nope.yml: not found"), "{}", run.stderr);
}
