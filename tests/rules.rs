//! Every rule's documented examples are executed: the bad example must produce exactly that rule, the
//! good example nothing at all, and the examples shown by `kpath explain` are the fixture files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kpath::config::Config;
use kpath::engine;
use kpath::rules::{Example, RULES};

fn fixture_dir(example: &Example) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules").join(example.dir)
}

/// The pinned helm that `scripts/test` installs (`$KPATH_HELM`), for the chart fixtures.
fn pinned_helm() -> PathBuf {
    let path = std::env::var_os("KPATH_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/helm-3.17.3/bin/helm"));
    assert!(path.is_file(), "the pinned helm is missing: run `bash scripts/test`, which installs it");
    path
}

fn config_for(dir: &Path) -> Config {
    let path = dir.join(".kpath.yml");
    let mut config =
        if path.exists() { Config::load(&path).expect("fixture config is valid") } else { Config::default() };
    config.base_dir = Some(dir.to_path_buf());
    config.helm.binary = Some(pinned_helm());
    config.helm.cache_dir = None;
    config
}

fn run(example: &Example) -> Vec<kpath::finding::Finding> {
    let dir = fixture_dir(example);
    let report = {
        let config = config_for(&dir);
        engine::check_paths(std::slice::from_ref(&dir), &config, &kpath::renderers::builtin(&config))
    };
    report.findings.into_iter().filter(|f| f.counts()).collect()
}

#[test]
fn every_rule_is_documented() {
    for rule in RULES {
        assert!(!rule.summary.is_empty() && rule.summary != "TODO", "{}: summary", rule.id);
        assert!(rule.why.len() > 80, "{}: `why` should explain the harm in a few sentences", rule.id);
        assert!(!rule.fix.is_empty() && rule.fix != "TODO", "{}: fix", rule.id);
        assert!(!rule.section.is_empty() && rule.section != "TODO", "{}: section", rule.id);
        assert!(!rule.bad.files.is_empty() && !rule.good.files.is_empty(), "{}: examples", rule.id);
        assert!(rule.id.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit()), "{}", rule.id);
    }
    let ids: BTreeSet<_> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), RULES.len(), "rule ids are unique");
}

/// An explanation shows what differs between the bad and the good example, not two whole manifests that differ
/// in one line; and a file the examples share is printed once.
#[test]
fn explanations_show_what_differs() {
    let rule = RULES.iter().find(|r| r.id == "hpa-replicas-conflict").expect("the rule");
    let md = rule.explanation_markdown();
    assert!(md.contains("### Bad → good\n\n`deployment.yaml`\n\n```diff\n"), "{md}");
    assert!(md.contains("\n-  replicas: 3"), "{md}");
    assert!(!md.contains("apiVersion: apps/v1\nkind: Deployment"), "the deployment is not printed whole: {md}");
    assert_eq!(md.matches("kind: HorizontalPodAutoscaler").count(), 1, "{md}");
    assert!(md.contains("`hpa.yaml`: as in the bad example."), "{md}");
    for rule in RULES {
        let md = rule.explanation_markdown();
        // Every example file appears: whole, as a diff, or named as unchanged.
        for (name, _) in rule.bad.files.iter().chain(rule.good.files).filter(|(n, _)| !n.starts_with(".kpath")) {
            assert!(md.contains(&format!("`{name}`")), "{}: {name} missing from\n{md}", rule.id);
        }
        assert_eq!(md.matches("```").count() % 2, 0, "{}: balanced fences", rule.id);
    }
}

#[test]
fn examples_are_the_fixture_files() {
    for rule in RULES {
        for example in [&rule.bad, &rule.good] {
            let dir = fixture_dir(example);
            let mut on_disk = BTreeSet::new();
            for entry in walk(&dir) {
                let rel = entry.strip_prefix(&dir).expect("inside").to_string_lossy().replace('\\', "/");
                on_disk.insert(rel);
            }
            let embedded: BTreeSet<String> = example.files.iter().map(|(n, _)| n.to_string()).collect();
            assert_eq!(embedded, on_disk, "{}: embedded example files differ from {}", rule.id, dir.display());
            for (name, text) in example.files {
                let disk = std::fs::read_to_string(dir.join(name)).expect("readable");
                assert_eq!(&disk, text, "{}: {name} differs from its fixture", rule.id);
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

#[test]
fn bad_examples_produce_exactly_their_rule() {
    let mut failures = Vec::new();
    for rule in RULES {
        let findings = run(&rule.bad);
        let ids: BTreeSet<&str> = findings.iter().map(|f| f.rule).collect();
        if ids != BTreeSet::from([rule.id]) {
            let detail: Vec<String> =
                findings.iter().map(|f| format!("  {}:{} {} {}", f.file, f.line, f.rule, f.message)).collect();
            failures.push(format!("{}: bad example produced {:?}\n{}", rule.id, ids, detail.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn good_examples_produce_nothing() {
    let mut failures = Vec::new();
    for rule in RULES {
        let findings = run(&rule.good);
        if !findings.is_empty() {
            let detail: Vec<String> =
                findings.iter().map(|f| format!("  {}:{} {} {}", f.file, f.line, f.rule, f.message)).collect();
            failures.push(format!("{}: good example produced findings\n{}", rule.id, detail.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
