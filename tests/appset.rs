//! ApplicationSet expansion with `goTemplate: true`, evaluated by the pinned Helm's Go template engine:
//! generators, sprig functions, Argo CD's `normalize`, `missingkey`, and failing templates placed on
//! their line.

#[path = "support/bin.rs"]
mod bin;

use std::collections::{BTreeMap, BTreeSet};

use kpath::gitops::appset::{Expansion, Generated, expand};
use kpath::gitops::{Cluster, Settings};
use kpath::render::DirTree;

const FILE: &str = "argocd/appset.yaml";

fn settings() -> Settings {
    Settings {
        repositories: BTreeSet::from(["github.com/acme/deploy".to_string()]),
        clusters: vec![Cluster {
            name: "Prod_EU".into(),
            server: "https://prod.example.com".into(),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            annotations: BTreeMap::new(),
        }],
        ..Settings::default()
    }
}

/// Writes `files` and the ApplicationSet `text` into a directory and expands it with the pinned Helm.
fn run(text: &str, files: &[(&str, &str)]) -> Expansion {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut names = vec![FILE.to_string()];
    bin::write(dir.path(), FILE, text);
    for (name, content) in files {
        bin::write(dir.path(), name, content);
        names.push(name.to_string());
    }
    let tree = DirTree::new(dir.path(), names, "");
    let helm = kpath::helm::binary::find(Some(&bin::pinned_helm())).expect("helm");
    expand(&tree, FILE, text, 0, &settings(), Some(&helm))
}

fn appset(options: &str, generators: &str, template: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: set\nspec:\n  goTemplate: true\n  goTemplateOptions: [{options}]\n  generators:\n{generators}  template:\n{template}"
    )
}

fn field(g: &Generated, route: &[&str]) -> (String, u32) {
    let root = kpath::yaml::parse_single(&g.text).expect("parses").expect("a document");
    let node = root.get_path(route).expect("route");
    (node.as_text().unwrap_or_default().to_string(), node.pos.line)
}

fn names(e: &Expansion) -> Vec<&str> {
    e.generated.iter().map(|g| g.name.as_str()).collect()
}

fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).expect("needle") as u32 + 1
}

#[test]
fn go_templates_with_sprig_and_argo_functions_fill_the_template_at_its_lines() {
    let generators =
        "  - git:\n      repoURL: https://github.com/acme/deploy.git\n      directories:\n      - path: 'apps/*'\n";
    let template = "    metadata:\n      name: '{{ .path.basename | normalize }}'\n      labels:\n        first: '{{ index .path.segments 0 | upper }}'\n        missing: 'x{{ .nothing }}'\n    spec:\n      source:\n        path: \"{{ .path.path }}\"\n      destination:\n        namespace: '{{ if eq .path.basename \"web\" }}frontend{{ else }}{{ .path.basename }}{{ end }}'\n";
    let text = appset("", generators, template);
    let e = run(&text, &[("apps/web/k.yaml", ""), ("apps/Api_V2/k.yaml", "")]);
    assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
    assert_eq!(names(&e), ["api-v2", "web"]);
    let web = &e.generated[1];
    assert_eq!(field(web, &["spec", "destination", "namespace"]), ("frontend".into(), line_of(&text, "namespace:")));
    assert_eq!(field(web, &["spec", "source", "path"]), ("apps/web".into(), line_of(&text, "path: \"{{")));
    assert_eq!(field(web, &["metadata", "labels", "first"]).0, "APPS");
    // Argo CD's default for a missing key.
    assert_eq!(field(web, &["metadata", "labels", "missing"]).0, "x<no value>");
    assert_eq!(field(&e.generated[0], &["spec", "destination", "namespace"]).0, "Api_V2");
}

#[test]
fn go_templates_over_list_files_and_cluster_generators() {
    let generators = "  - list:\n      elements:\n      - {name: a, replicas: 3, tags: [x, y]}\n  - git:\n      repoURL: git@github.com:acme/deploy\n      files:\n      - path: 'envs/*/config.yaml'\n      values:\n        ns: '{{ .env }}-{{ .path.basename }}'\n  - clusters:\n      values:\n        short: '{{ .nameNormalized }}'\n";
    let template = "    metadata:\n      name: '{{ if .server }}{{ .values.short }}{{ else if .name }}{{ .name }}{{ else }}{{ .values.ns }}{{ end }}-{{ len (.tags | default list) }}'\n    spec:\n      destination:\n        server: '{{ .server | default \"in\" }}'\n        namespace: '{{ if .values }}{{ .values.ns | default \"none\" }}{{ else }}none{{ end }}'\n";
    let text = appset("", generators, template);
    let e = run(&text, &[("envs/dev/config.yaml", "env: dev\n")]);
    assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
    assert_eq!(names(&e), ["a-2", "dev-dev-0", "prod-eu-0"]);
    assert_eq!(field(&e.generated[1], &["spec", "destination", "namespace"]).0, "dev-dev");
    assert_eq!(field(&e.generated[2], &["spec", "destination", "server"]).0, "https://prod.example.com");
    assert_eq!(e.generated[1].inputs, BTreeSet::from(["envs/dev/config.yaml".to_string()]));
}

#[test]
fn a_go_matrix_merges_both_children_s_parameters() {
    let generators = "  - matrix:\n      generators:\n      - git:\n          repoURL: https://github.com/acme/deploy\n          directories:\n          - path: 'apps/*'\n      - list:\n          elements:\n          - env: dev\n          - env: prod\n";
    let template = "    metadata:\n      name: '{{ .path.basename }}-{{ .env }}'\n    spec: {}\n";
    let e = run(&appset("", generators, template), &[("apps/api/a.yaml", "")]);
    assert!(e.problems.is_empty() && e.skipped.is_empty(), "{e:?}");
    assert_eq!(names(&e), ["api-dev", "api-prod"]);
}

#[test]
fn missingkey_error_makes_a_missing_parameter_a_problem_on_its_line() {
    let template =
        "    metadata:\n      name: '{{ .name }}'\n      labels:\n        team: '{{ .team }}'\n    spec: {}\n";
    let text = appset("\"missingkey=error\"", "  - list:\n      elements:\n      - name: a\n", template);
    let e = run(&text, &[]);
    assert!(e.generated.is_empty());
    assert_eq!(e.problems.len(), 1, "{:?}", e.problems);
    assert_eq!((e.problems[0].file.as_str(), e.problems[0].pos.line), (FILE, line_of(&text, "team:")));
    assert!(e.problems[0].message.contains("missingkey=error"), "{:?}", e.problems);
}

#[test]
fn a_failing_go_template_is_a_problem_on_its_line() {
    let template = "    metadata:\n      name: '{{ .name }}'\n    spec:\n      project: '{{ index .list 5 }}'\n";
    let text = appset("", "  - list:\n      elements:\n      - {name: a, list: [1]}\n", template);
    let e = run(&text, &[]);
    assert!(e.generated.is_empty());
    assert_eq!(e.problems.len(), 1, "{:?}", e.problems);
    assert_eq!(e.problems[0].pos.line, line_of(&text, "project:"), "{:?}", e.problems);
    assert!(e.problems[0].message.contains("index out of range"), "{:?}", e.problems);

    let template = "    metadata:\n      name: '{{ include \"x\" . }}'\n    spec: {}\n";
    let e = run(&appset("", "  - list:\n      elements:\n      - name: a\n", template), &[]);
    assert!(e.problems[0].message.contains("`include`, a function Argo CD does not define"), "{:?}", e.problems);

    let template = "    metadata:\n      name: '{{ .name | slugify }}'\n    spec: {}\n";
    let e = run(&appset("", "  - list:\n      elements:\n      - name: a\n", template), &[]);
    assert!(e.problems.is_empty() && e.skipped[0].1.contains("slugify"), "{e:?}");
}

#[test]
fn hostile_parameters_stay_data() {
    // A parameter that looks like a template, a shell command or YAML is only ever a string.
    let template = "    metadata:\n      name: 'app'\n      annotations:\n        a: '{{ .v }}'\n    spec: {}\n";
    let text = appset("", "  - list:\n      elements:\n      - v: \"{{ .x }}'; $(touch /tmp/p) \\n: b\"\n", template);
    let e = run(&text, &[]);
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    assert_eq!(field(&e.generated[0], &["metadata", "annotations", "a"]).0, "{{ .x }}'; $(touch /tmp/p) \n: b");
}
