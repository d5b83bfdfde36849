//! Discovery over in-memory trees: roots, what each reads, and the problems that stop a root before
//! kubectl runs (no tool needed here; rendering is tested with the real kubectl in `tests/kustomize.rs`).

use std::collections::BTreeMap;

use super::*;

/// A tree held in memory.
struct Memory(Vec<String>, BTreeMap<String, String>);

impl Memory {
    fn new(files: &[(&str, &str)]) -> Memory {
        let map: BTreeMap<String, String> = files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
        Memory(map.keys().cloned().collect(), map)
    }
}

impl Tree for Memory {
    fn files(&self) -> &[String] {
        &self.0
    }

    fn read(&self, path: &str, cap: u64) -> Option<String> {
        self.1.get(path).filter(|t| t.len() as u64 <= cap).cloned()
    }
}

fn detail(unit: &Unit) -> &RootDetail {
    unit.detail.downcast_ref::<RootDetail>().expect("a Kustomize unit")
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

#[test]
fn a_base_shared_by_three_roots_is_rendered_in_each_and_is_no_root() {
    let overlay = "resources:\n- ../../base\npatches:\n- path: patch.yaml\n";
    let tree = Memory::new(&[
        ("deploy/base/kustomization.yaml", "resources:\n- deployment.yaml\n"),
        ("deploy/base/deployment.yaml", DEPLOYMENT),
        ("deploy/overlays/dev/kustomization.yaml", overlay),
        ("deploy/overlays/dev/patch.yaml", DEPLOYMENT),
        ("deploy/overlays/prod/kustomization.yml", overlay),
        ("deploy/overlays/prod/patch.yaml", DEPLOYMENT),
        ("deploy/overlays/stage/Kustomization", overlay),
        ("deploy/overlays/stage/patch.yaml", DEPLOYMENT),
        ("README.md", "# not read\n"),
    ]);
    let found = discover(&tree);
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let roots: Vec<(&str, Option<&str>)> =
        found.units.iter().map(|u| (u.root.as_str(), u.environment.as_deref())).collect();
    assert_eq!(
        roots,
        vec![
            ("deploy/overlays/dev", Some("deploy/overlays/dev")),
            ("deploy/overlays/prod", Some("deploy/overlays/prod")),
            ("deploy/overlays/stage", Some("deploy/overlays/stage")),
        ]
    );
    let prod = &found.units[1];
    assert_eq!(prod.renderer, "kustomize");
    let inputs: Vec<&str> = prod.inputs.iter().map(String::as_str).collect();
    assert_eq!(
        inputs,
        vec![
            "deploy/base/deployment.yaml",
            "deploy/base/kustomization.yaml",
            "deploy/overlays/prod/kustomization.yml",
            "deploy/overlays/prod/patch.yaml",
        ]
    );
    assert!(prod.reads("deploy/base/deployment.yaml") && !prod.reads("deploy/overlays/dev/patch.yaml"));
    let closure: Vec<&str> = detail(prod).closure.iter().map(|k| k.file.as_str()).collect();
    assert_eq!(closure, vec!["deploy/overlays/prod/kustomization.yml", "deploy/base/kustomization.yaml"]);
    // The engine's `outermost` agrees: the base is read by the overlays.
    assert_eq!(crate::render::outermost(found.units).len(), 3);
}

#[test]
fn a_lone_kustomization_and_one_at_the_tree_root_are_roots() {
    let tree = Memory::new(&[("kustomization.yaml", "resources:\n- d.yaml\n"), ("d.yaml", DEPLOYMENT)]);
    let found = discover(&tree);
    assert_eq!(found.units.len(), 1);
    assert_eq!((found.units[0].root.as_str(), found.units[0].environment.as_deref()), ("", Some(".")));
    assert!(found.units[0].reads("d.yaml"));
}

#[test]
fn every_kind_of_input_is_read_by_the_root() {
    let root = "\
resources:
- svc.yaml
components:
- ../components/tls
patchesStrategicMerge:
- smp.yaml
patchesJson6902:
- target: {kind: Deployment, name: web}
  path: ops.yaml
configMapGenerator:
- name: cfg
  envs: [app.env]
  files: [conf/app.ini, key=conf/other.ini]
helmCharts:
- name: redis
  valuesFile: redis.yaml
  additionalValuesFiles: [redis-prod.yaml]
crds: [crd.yaml]
replacements:
- path: repl.yaml
configurations: [conf.yaml]
openapi:
  path: schema.json
";
    let tree = Memory::new(&[
        ("app/kustomization.yaml", root),
        ("app/svc.yaml", "kind: Service\n"),
        ("app/smp.yaml", DEPLOYMENT),
        ("app/ops.yaml", "- op: add\n  path: /x\n  value: 1\n"),
        ("app/app.env", "A=1\n"),
        ("app/conf/app.ini", "x\n"),
        ("app/conf/other.ini", "y\n"),
        ("app/charts/redis/Chart.yaml", "name: redis\n"),
        ("app/charts/redis/templates/x.yaml", "kind: ConfigMap\n"),
        ("app/redis.yaml", "a: 1\n"),
        ("app/redis-prod.yaml", "a: 2\n"),
        ("app/crd.yaml", "kind: CustomResourceDefinition\n"),
        ("app/repl.yaml", "source: {}\n"),
        ("app/conf.yaml", "nameReference: []\n"),
        ("app/schema.json", "{}\n"),
        ("components/tls/kustomization.yaml", "kind: Component\npatches:\n- path: tls.yaml\n"),
        ("components/tls/tls.yaml", DEPLOYMENT),
    ]);
    let found = discover(&tree);
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    assert_eq!(found.units.len(), 1, "the component is not a root");
    let unit = &found.units[0];
    for path in [
        "app/kustomization.yaml",
        "app/svc.yaml",
        "app/smp.yaml",
        "app/ops.yaml",
        "app/app.env",
        "app/conf/app.ini",
        "app/conf/other.ini",
        "app/charts/redis/",
        "app/redis.yaml",
        "app/redis-prod.yaml",
        "app/crd.yaml",
        "app/repl.yaml",
        "app/conf.yaml",
        "app/schema.json",
        "components/tls/kustomization.yaml",
        "components/tls/tls.yaml",
    ] {
        assert!(unit.inputs.contains(path), "{path} not in {:?}", unit.inputs);
    }
    assert!(unit.reads("app/charts/redis/templates/x.yaml"));
    assert!(detail(unit).uses_helm);
}

#[test]
fn escapes_and_absolute_paths_are_problems_at_their_line_and_not_read() {
    let tree = Memory::new(&[
        ("deploy/app/kustomization.yaml", "resources:\n- ok.yaml\n- ../../../etc/passwd\n- /etc/shadow\n"),
        ("deploy/app/ok.yaml", DEPLOYMENT),
    ]);
    let found = discover(&tree);
    let unit = &found.units[0];
    let problems: Vec<(u32, bool)> = detail(unit)
        .problems
        .iter()
        .map(|p| (p.pos.line, p.message.contains("out of the repository") || p.message.contains("absolute")))
        .collect();
    assert_eq!(problems, vec![(3, true), (4, true)]);
    assert!(unit.inputs.iter().all(|i| !i.contains("etc")), "{:?}", unit.inputs);
}

#[test]
fn remote_references_are_named_and_never_inputs() {
    let tree = Memory::new(&[(
        "overlays/prod/kustomization.yaml",
        "resources:\n- github.com/example/app//deploy/base?ref=v1.2.0\n- https://example.com/all.yaml\n",
    )]);
    let found = discover(&tree);
    let problems = &detail(&found.units[0]).problems;
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].pos.line, 2);
    assert!(problems[0].message.contains("github.com/example/app//deploy/base?ref=v1.2.0"), "{}", problems[0].message);
    assert!(problems[0].message.contains("remote"));
    assert_eq!(found.units[0].inputs.len(), 1);
}

#[test]
fn cycles_do_not_loop_and_are_named() {
    // a → b → a with a root above them, and c ↔ d that nothing else uses.
    let tree = Memory::new(&[
        ("root/kustomization.yaml", "resources:\n- ../a\n"),
        ("a/kustomization.yaml", "resources:\n- ../b\n"),
        ("b/kustomization.yaml", "resources:\n- ../a\n"),
        ("c/kustomization.yaml", "resources:\n- ../d\n"),
        ("d/kustomization.yaml", "resources:\n- ../c\n"),
        ("self/kustomization.yaml", "resources:\n- .\n"),
    ]);
    let found = discover(&tree);
    let roots: Vec<&str> = found.units.iter().map(|u| u.root.as_str()).collect();
    assert_eq!(roots, vec!["root", "self"]);
    let root = detail(&found.units[0]);
    assert_eq!(root.problems.len(), 1, "{:?}", root.problems);
    assert_eq!((root.problems[0].file.as_str(), root.problems[0].pos.line), ("b/kustomization.yaml", 2));
    assert!(root.problems[0].message.contains("a → b → a"), "{}", root.problems[0].message);
    assert!(detail(&found.units[1]).problems[0].message.contains("cycle"));
    // The c ↔ d cycle has no root: discovery reports it once.
    assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
    assert!(found.problems[0].message.contains("cycle"));
}

#[test]
fn a_kustomization_that_does_not_parse_stops_its_roots_at_its_line() {
    let tree = Memory::new(&[
        ("base/kustomization.yaml", "resources:\n- d.yaml\n  bad: [\n"),
        ("overlay/kustomization.yaml", "resources:\n- ../base\n"),
    ]);
    let found = discover(&tree);
    assert_eq!(found.units.len(), 1);
    let problems = &detail(&found.units[0]).problems;
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].file, "base/kustomization.yaml");
    assert!(problems[0].pos.line >= 2);
}

#[test]
fn a_chart_that_is_not_vendored_is_refused() {
    let tree = Memory::new(&[(
        "app/kustomization.yaml",
        "helmCharts:\n- name: redis\n  repo: https://charts.example.com\n  version: 1.0.0\n",
    )]);
    let found = discover(&tree);
    let problems = &detail(&found.units[0]).problems;
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].pos.line, 2);
    assert!(problems[0].message.contains("not vendored"), "{}", problems[0].message);
    assert!(problems[0].message.contains("app/charts/redis-1.0.0/redis/"), "{}", problems[0].message);
    assert!(found.units[0].inputs.contains("app/charts/redis-1.0.0/redis/"), "{:?}", found.units[0].inputs);
}
