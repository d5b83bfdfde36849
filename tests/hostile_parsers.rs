//! Hostile input to the parsers, end to end through the `kpath` binary: very long Dockerfile stage chains,
//! hundreds of thousands of objects in one file, a values file Helm refuses, every shape of broken
//! Dockerfile, and keys repeated in one mapping. Each is a finding naming its file and line, and the other
//! files of the run are still checked. The inputs are generated here, never committed; speed is measured
//! by `scripts/bench`, not asserted.

#[path = "support/bin.rs"]
mod bin;

use std::fmt::Write as _;

use bin::{Run, kpath, repo};

use serde_json::Value;

/// A manifest with one ordinary finding (a Deployment in `default`), to show the rest of a run goes on.
const IN_DEFAULT: &str = include_str!("../fixtures/rules/namespace-default/bad/deployment.yaml");

/// The findings of a `--format json` run as (rule, file, line, message), after checking that kpath ended
/// with findings (exit 1) and did not panic.
fn findings(run: &Run) -> Vec<(String, String, u64, String)> {
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stderr));
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The findings of `rule` in `file`, as (line, message).
fn of(all: &[(String, String, u64, String)], rule: &str, file: &str) -> Vec<(u64, String)> {
    all.iter().filter(|f| f.0 == rule && f.1 == file).map(|f| (f.2, f.3.clone())).collect()
}

#[test]
fn a_forty_thousand_stage_dockerfile_is_judged_on_its_first_stage() {
    // 40k stages, each built on the one before: the shipped image is the first stage's golang image.
    let mut chain = String::from("FROM golang:1.22 AS s0\nRUN go build -o /app .\n");
    for i in 1..40_000 {
        let _ = writeln!(chain, "FROM s{} AS s{i}", i - 1);
    }
    chain.push_str("CMD [\"/app\"]\n");
    let dir = repo(&[("chain/Dockerfile", &chain), ("chain/.dockerignore", "*\n"), ("k8s/deploy.yaml", IN_DEFAULT)]);
    let all = findings(&kpath(&["check", "--format", "json", "."], dir.path()));
    let base = of(&all, "dockerfile-base-not-minimal", "chain/Dockerfile");
    assert_eq!(base.len(), 1, "{base:?}");
    assert_eq!(base[0].0, 1);
    assert!(base[0].1.contains("the final stage builds on this stage"), "{}", base[0].1);
    assert!(of(&all, "manifest-invalid", "chain/Dockerfile").is_empty(), "{all:?}");
    assert_eq!(of(&all, "namespace-default", "k8s/deploy.yaml").len(), 1, "the rest of the run goes on");
}

#[test]
fn every_broken_dockerfile_shape_is_a_finding_on_its_line() {
    let cases: &[(&str, &str, u64, &str)] = &[
        ("heredoc", "FROM alpine\nRUN <<EOF\napk add curl\n", 2, "is never closed"),
        ("json", "FROM alpine\nCMD [\"unterminated\n", 2, "JSON array that is never closed"),
        ("from", "FROM\n", 1, "`FROM` names no image"),
        ("as", "FROM alpine AS\n", 1, "`FROM` takes an image"),
        ("stage-twice", "FROM alpine AS a\nFROM alpine AS a\n", 2, "used twice (first on line 1)"),
        ("before-from", "RUN make\nFROM alpine\n", 1, "before any `FROM`"),
        ("no-from", "ARG V=1\n", 1, "no `FROM`"),
        ("empty", "# just a comment\n", 1, "no instructions"),
        ("copy", "FROM alpine\nCOPY app\n", 2, "a source and a destination"),
        ("shell", "FROM alpine\nSHELL /bin/bash -c\n", 2, "JSON array"),
        ("onbuild", "FROM alpine\nONBUILD ONBUILD RUN x\n", 2, "not allowed as an `ONBUILD` trigger"),
        ("unknown", "FROM alpine\nRUNN make\n", 2, "`RUNN` is not a Dockerfile instruction"),
        ("escape", "# escape=x\nFROM alpine\n", 1, "invalid escape character"),
    ];
    let mut files: Vec<(String, &str)> =
        cases.iter().map(|(name, text, _, _)| (format!("{name}/Dockerfile"), *text)).collect();
    files.push(("k8s/deploy.yaml".into(), IN_DEFAULT));
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let dir = repo(&files);
    let all = findings(&kpath(&["check", "--format", "json", "."], dir.path()));
    for (name, _, line, needle) in cases {
        let found = of(&all, "manifest-invalid", &format!("{name}/Dockerfile"));
        assert!(
            found.iter().any(|(l, m)| l == line && m.contains(needle)),
            "{name}: wanted line {line} with {needle:?}, got {found:?}"
        );
    }
    assert_eq!(of(&all, "namespace-default", "k8s/deploy.yaml").len(), 1, "the rest of the run goes on");
}

#[test]
fn two_hundred_thousand_objects_in_one_file_are_all_checked() {
    // 15.2 MB: 200k small ConfigMaps (six lines each); one repeats `namespace`, hiding `default` behind
    // `s`; one does not parse.
    let mut text = String::with_capacity(16 << 20);
    let (mut repeat_line, mut broken_line) = (0, 0);
    for i in 0..200_000u64 {
        let first = i * 6 + 1;
        match i {
            123_456 => {
                repeat_line = first + 4;
                text.push_str(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c123456,\n  namespace: s,\n  namespace: default}\n---\n",
                );
            }
            150_000 => {
                broken_line = first;
                text.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n  namespace: s\n---\n");
            }
            _ => {
                let _ =
                    write!(text, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i:06}\n  namespace: s\n---\n");
            }
        }
    }
    let dir = repo(&[("many/objects.yaml", &text), ("k8s/deploy.yaml", IN_DEFAULT)]);
    let all = findings(&kpath(&["check", "--format", "json", "."], dir.path()));
    let invalid = of(&all, "manifest-invalid", "many/objects.yaml");
    assert_eq!(invalid.len(), 2, "{invalid:?}");
    assert_eq!(invalid[0].0, repeat_line);
    let named = format!("key `namespace` appears again in `metadata` (first on line {})", repeat_line - 1);
    assert!(invalid[0].1.contains(&named), "{}", invalid[0].1);
    assert!((broken_line..broken_line + 6).contains(&invalid[1].0), "{invalid:?}");
    assert!(invalid[1].1.starts_with("YAML syntax error"), "{}", invalid[1].1);
    // The last value is the one kubectl applies, and the rules judge it.
    assert_eq!(
        of(&all, "namespace-default", "many/objects.yaml"),
        vec![(repeat_line, "ConfigMap `c123456` is in the `default` namespace".to_string())]
    );
    assert_eq!(of(&all, "namespace-default", "k8s/deploy.yaml").len(), 1, "the rest of the run goes on");
}

#[test]
fn repeated_keys_in_manifests_are_reported_on_the_repeat() {
    let pod = "\
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: team
  namespace: default
spec:
  containers:
    - name: app
      image: registry.example.com/app:latest
      image: registry.example.com/app:1.0
      env: [{name: A, value: x, value: y}]
  volumes:
    - name: data
      emptyDir: {}
      hostPath: {path: /var/run}
      hostPath: {path: /srv}
";
    let json = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"},
 "data": {"a": "1", "a": "2"}}"#;
    let dir = repo(&[("k8s/pod.yaml", pod), ("k8s/cm.json", json)]);
    let all = findings(&kpath(&["check", "--format", "json", "."], dir.path()));
    let invalid = of(&all, "manifest-invalid", "k8s/pod.yaml");
    let summary: Vec<(u64, &str)> = invalid
        .iter()
        .filter(|(_, m)| m.starts_with("key `"))
        .map(|(line, m)| (*line, m.split(':').next().unwrap_or("")))
        .collect();
    assert_eq!(
        summary,
        vec![
            (6, "key `namespace` appears again in `metadata` (first on line 5)"),
            (11, "key `image` appears again in `spec.containers[0]` (first on line 10)"),
            (12, "key `value` appears again in `spec.containers[0].env[0]` (first on line 12)"),
            (17, "key `hostPath` appears again in `spec.volumes[0]` (first on line 16)"),
        ]
    );
    // Rules see the last value: `default` and the `/srv` hostPath are judged, `:latest` is not.
    assert_eq!(of(&all, "namespace-default", "k8s/pod.yaml").len(), 1);
    assert!(of(&all, "volume-hostpath", "k8s/pod.yaml").iter().any(|(_, m)| m.contains("/srv")), "{all:?}");
    assert!(of(&all, "image-latest", "k8s/pod.yaml").is_empty());
    let json_invalid = of(&all, "manifest-invalid", "k8s/cm.json");
    assert_eq!(json_invalid.len(), 1, "{json_invalid:?}");
    assert_eq!(json_invalid[0].0, 2);
    assert!(json_invalid[0].1.contains("key `a` appears again in `data` (first on line 2)"), "{}", json_invalid[0].1);
}

#[test]
fn a_values_file_helm_refuses_is_named() {
    // Helm refuses chart files over 5 MiB; this values file is 16 MB.
    let mut values = String::from("replicas: 1\n");
    let mut i = 0;
    while values.len() < 16_000_000 {
        let _ = writeln!(values, "key{i:08}: value-{i:08}");
        i += 1;
    }
    let dir = repo(&[
        ("chart/Chart.yaml", "apiVersion: v2\nname: big\nversion: 0.1.0\n"),
        (
            "chart/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: shop\ndata:\n  r: {{ .Values.replicas | quote }}\n",
        ),
        ("chart/values.yaml", &values),
        ("k8s/deploy.yaml", IN_DEFAULT),
    ]);
    let all = findings(&kpath(&["check", "--format", "json", "."], dir.path()));
    let failed: Vec<_> = all.iter().filter(|f| f.0 == "render-failed").collect();
    assert_eq!(failed.len(), 1, "{all:?}");
    assert_eq!((failed[0].1.as_str(), failed[0].2), ("chart/values.yaml", 1));
    assert!(failed[0].3.contains("`values.yaml` is 15 MiB; Helm refuses any chart file over 5 MiB"), "{}", failed[0].3);
    assert_eq!(of(&all, "namespace-default", "k8s/deploy.yaml").len(), 1, "the rest of the run goes on");
}

#[test]
fn findings_from_a_large_values_file_are_placed_on_its_lines() {
    // 4 MB of values (under Helm's 5 MiB limit) and 300 rendered objects whose namespace comes from it:
    // every finding is placed on the values line that sets it (the file is parsed once, not per finding).
    let mut values = String::from("namespace: default\n");
    let mut i = 0;
    while values.len() < 4_000_000 {
        let _ = writeln!(values, "key{i:08}: value-{i:08}");
        i += 1;
    }
    let template = "\
{{- range $i := until 300 }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{{ $i }}
  namespace: {{ $.Values.namespace }}
data:
  k: v
{{- end }}
";
    let dir = repo(&[
        ("chart/Chart.yaml", "apiVersion: v2\nname: big\nversion: 0.1.0\n"),
        ("chart/templates/cm.yaml", template),
        ("chart/values.yaml", &values),
    ]);
    let all = findings(&kpath(&["check", "--format", "json", "."], dir.path()));
    let placed = of(&all, "namespace-default", "chart/values.yaml");
    assert_eq!(placed.len(), 300, "{:?}", all.iter().take(3).collect::<Vec<_>>());
    assert!(placed.iter().all(|(line, _)| *line == 1), "{placed:?}");
}

#[test]
fn one_object_with_many_containers_gives_a_bounded_number_of_findings() {
    let mut deployment = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: wide\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n",
    );
    for i in 0..5_000 {
        let _ = write!(deployment, "        - name: c{i}\n          image: app:latest\n");
    }
    let dir = repo(&[("wide.yaml", &deployment), ("other.yaml", IN_DEFAULT)]);
    let run = kpath(&["check", "--format", "json", "."], dir.path());
    let all = findings(&run);
    let latest = of(&all, "image-latest", "wide.yaml");
    assert_eq!(latest.len(), 1_001, "1,000 findings and one that says the rest were left out");
    assert!(latest.iter().any(|(_, m)| m.contains("the rest are not listed")), "{:?}", latest.last());
    assert!(!of(&all, "namespace-default", "other.yaml").is_empty(), "the rest of the run goes on");
}

/// A file far over the size limit (sparse, so the test writes nothing) is named in every format without
/// being read: kpath runs with 1.5 GiB of address space and the file is 4 GiB.
#[test]
fn a_huge_file_is_named_in_every_format_without_being_read() {
    let dir = repo(&[
        ("charts/big/Chart.yaml", "apiVersion: v2\nname: big\nversion: 0.1.0\n"),
        ("charts/big/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: a}\n"),
        ("other.yaml", IN_DEFAULT),
    ]);
    for file in ["charts/big/files.bin", "huge.yaml"] {
        let f = std::fs::File::create(dir.path().join(file)).expect("create");
        f.set_len(4 << 30).expect("sparse file");
    }
    let helm = bin::pinned_helm();
    for format in ["text", "json", "sarif", "github"] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -v 1572864 && exec "$0" check --no-cache --format "$1" ."#)
            .arg(env!("CARGO_BIN_EXE_kpath"))
            .arg(format)
            .current_dir(dir.path())
            .env("KPATH_HELM", &helm)
            .output()
            .expect("kpath runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {stdout}\n{stderr}");
        for name in ["files.bin", "huge.yaml", "other.yaml"] {
            assert!(stdout.contains(name), "{format}: {name} not named:\n{stdout}");
        }
    }
}
