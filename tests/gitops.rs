//! Argo CD Applications and Flux objects as the environments kpath renders: repositories written by each test
//! (a git repository whose `origin` is the URL the objects name), checked and reviewed through the `kpath`
//! binary with the pinned Helm and kubectl. Each finding names its environment and sits on the source line.

#[path = "support/bin.rs"]
mod bin;

use std::collections::BTreeSet;
use std::path::Path;

use bin::{git, kpath, write};

const ORIGIN: &str = "git@github.com:acme/deploy.git";

/// A git repository (no commit yet) whose `origin` is [`ORIGIN`], holding `files`.
fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["remote", "add", "origin", ORIGIN]);
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    rule: String,
    file: String,
    line: u64,
    environments: Vec<String>,
    message: String,
}

fn check(dir: &Path, extra: &[&str]) -> (i32, Vec<Seen>) {
    let mut args = vec!["check", ".", "--format", "json", "--no-cache"];
    args.extend_from_slice(extra);
    let run = kpath(&args, dir);
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", run.stdout, run.stderr));
    let findings = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| Seen {
            rule: f["rule"].as_str().unwrap_or("").to_string(),
            file: f["file"].as_str().unwrap_or("").to_string(),
            line: f["line"].as_u64().unwrap_or(0),
            environments: f["environments"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            message: f["message"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    (run.code, findings)
}

fn with_rule<'a>(found: &'a [Seen], rule: &str) -> Vec<&'a Seen> {
    found.iter().filter(|f| f.rule == rule).collect()
}

/// `kpath review` of the last commit of `dir`: its output, and the plan.
fn review_last_commit(dir: &Path) -> (String, serde_json::Value) {
    let run = kpath(&["review", "--repo", ".", "--base", "HEAD~1", "--format", "json", "--no-cache"], dir);
    let plan = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    (run.stdout, plan)
}

/// Environments whose rendered objects a review's plan shows changed.
fn changed_environments(plan: &serde_json::Value) -> BTreeSet<String> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["kind"] != "unchanged")
        .filter_map(|c| c["environment"].as_str().map(str::to_string))
        .collect()
}

fn reviewed_environments(dir: &Path) -> BTreeSet<String> {
    changed_environments(&review_last_commit(dir).1)
}

const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\n";
const VALUES: &str = "image:\n  repository: nginx\n  tag: \"1.27\"\nreplicas: 2\n";
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
{{- if .Values.required }}
          env: [{name: X, value: {{ required "set me" .Values.missing }}}]
{{- end }}
"#;

fn chart_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("charts/web/Chart.yaml", CHART),
        ("charts/web/values.yaml", VALUES),
        ("charts/web/templates/deployment.yaml", DEPLOYMENT),
    ]
}

const APPS: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-prod
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/deploy.git
    targetRevision: main
    path: charts/web
    helm:
      valueFiles:
        - ../../envs/prod.yaml
      valuesObject:
        image:
          tag: latest
  destination:
    server: https://kubernetes.default.svc
    namespace: web
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-staging
  namespace: argocd
spec:
  source:
    repoURL: https://github.com/Acme/deploy
    path: charts/web
    helm:
      releaseName: web
      parameters:
        - name: image.tag
          value: latest
  destination:
    namespace: web-staging
"#;

#[test]
fn each_application_renders_its_chart_with_its_values_and_findings_land_where_they_are_set() {
    let mut files = chart_files();
    files.push(("envs/prod.yaml", "replicas: 3\n"));
    files.push(("apps/web.yaml", APPS));
    let repo = repository(&files);
    let (_, found) = check(repo.path(), &[]);
    let latest = with_rule(&found, "image-latest");
    // `valuesObject` sets the tag on line 17 of the Application; the staging app's `parameters` value on line 35.
    assert_eq!(
        latest.iter().map(|f| (f.file.as_str(), f.line, f.environments.clone())).collect::<Vec<_>>(),
        vec![
            ("apps/web.yaml", 17, vec!["web-prod".to_string()]),
            ("apps/web.yaml", 35, vec!["web-staging".to_string()])
        ],
        "{found:#?}"
    );
    // One finding for both environments, on the template line.
    let probes = with_rule(&found, "probe-liveness-missing");
    assert_eq!(probes.len(), 1, "{found:#?}");
    assert_eq!(probes[0].file, "charts/web/templates/deployment.yaml");
    assert_eq!(probes[0].environments, vec!["web-prod".to_string(), "web-staging".to_string()]);
    // The chart is rendered only as the Applications deploy it: no finding without an environment, and the
    // destination namespace is where its objects go.
    assert!(found.iter().all(|f| !f.environments.is_empty()), "{found:#?}");
    assert!(with_rule(&found, "namespace-missing").is_empty(), "{found:#?}");
}

#[test]
fn multi_source_applications_read_value_files_through_their_ref() {
    let mut files = chart_files();
    files.push(("envs/prod/values.yaml", "replicas: 3\nimage:\n  tag: latest\n"));
    files.push((
        "apps/web.yaml",
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
spec:
  sources:
    - repoURL: https://github.com/acme/deploy.git
      path: charts/web
      helm:
        valueFiles:
          - $values/envs/prod/values.yaml
    - repoURL: ssh://git@github.com/acme/deploy.git
      targetRevision: main
      ref: values
  destination:
    namespace: web
"#,
    ));
    let repo = repository(&files);
    let (_, found) = check(repo.path(), &[]);
    let latest = with_rule(&found, "image-latest");
    assert_eq!(latest.len(), 1, "{found:#?}");
    assert_eq!((latest[0].file.as_str(), latest[0].line), ("envs/prod/values.yaml", 3));
    assert_eq!(latest[0].environments, vec!["web".to_string()]);
}

#[test]
fn kustomize_and_directory_sources_take_the_applications_overrides() {
    let repo = repository(&[
        (
            "apps/apps.yaml",
            r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop
spec:
  source:
    repoURL: https://github.com/acme/deploy
    path: shop
    kustomize:
      namePrefix: prod-
      namespace: shop
      images:
        - nginx:latest
  destination:
    namespace: ignored-for-namespaced-objects-kustomize-sets
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: config
spec:
  source:
    repoURL: https://github.com/acme/deploy
    path: config
    directory:
      recurse: true
      exclude: 'scratch/*'
  destination:
    namespace: config
"#,
        ),
        ("shop/kustomization.yaml", "resources:\n- cm.yaml\n"),
        (
            "shop/cm.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n    - name: web\n      image: nginx:1.27\n",
        ),
        (
            "config/app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  DB_PASSWORD: hunter2hunter2\n",
        ),
        (
            "config/scratch/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\ndata:\n  API_PASSWORD: swordfish99\n",
        ),
    ]);
    let (_, found) = check(repo.path(), &[]);
    // The Application's image override makes the Pod run `nginx:latest`, placed on the override.
    let latest = with_rule(&found, "image-latest");
    assert_eq!(latest.len(), 1, "{found:#?}");
    assert_eq!(latest[0].environments, vec!["shop".to_string()]);
    assert!(latest[0].message.contains("nginx:latest"), "{latest:?}");
    assert!(with_rule(&found, "namespace-missing").is_empty(), "{found:#?}");
    // The directory source reads its files where they are written; what it excludes is not deployed.
    let secrets = with_rule(&found, "secret-in-configmap");
    assert_eq!(
        secrets.iter().map(|f| (f.file.as_str(), f.line)).collect::<Vec<_>>(),
        vec![("config/app/cm.yaml", 6)],
        "{found:#?}"
    );
    assert_eq!(secrets[0].environments, vec!["config".to_string()]);
}

#[test]
fn what_cannot_be_rendered_offline_is_a_notice_where_it_is_declared() {
    let repo = repository(&[(
        "apps/apps.yaml",
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: other-team
spec:
  source:
    repoURL: https://github.com/acme/other-team.git
    path: deploy
  destination: {namespace: other}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: plugin
spec:
  source:
    repoURL: https://github.com/acme/deploy.git
    path: deploy
    plugin:
      name: sops
  destination: {namespace: plugin}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: ingress
spec:
  source:
    repoURL: https://kubernetes.github.io/ingress-nginx
    chart: ingress-nginx
    targetRevision: 4.11.3
  destination: {namespace: ingress}
"#,
    )]);
    let (code, found) = check(repo.path(), &[]);
    let skipped = with_rule(&found, "render-skipped");
    let summary: Vec<(u64, &str)> = skipped.iter().map(|f| (f.line, f.environments[0].as_str())).collect();
    assert_eq!(summary, vec![(7, "other-team"), (17, "plugin"), (29, "ingress")], "{found:#?}");
    assert!(skipped[0].message.contains("another repository"), "{}", skipped[0].message);
    assert!(skipped[1].message.contains("plugin"), "{}", skipped[1].message);
    assert!(skipped[2].message.contains("--allow-chart-source"), "{}", skipped[2].message);
    assert_eq!(code, 0, "a notice does not fail the check");
}

#[test]
fn without_a_known_url_kpath_says_how_to_name_the_repository() {
    let repo = bin::repo(&[(
        "app.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: a\nspec:\n  source:\n    repoURL: https://github.com/acme/deploy\n    path: x\n",
    )]);
    let (_, found) = check(repo.path(), &[]);
    let skipped = with_rule(&found, "render-skipped");
    assert_eq!(skipped.len(), 1, "{found:#?}");
    assert!(skipped[0].message.contains("gitops.repoURLs"), "{}", skipped[0].message);
    // Named in `.kpath.yml`, it renders (and the empty path is then a problem of its own).
    write(repo.path(), ".kpath.yml", "gitops:\n  repoURLs: [https://github.com/acme/deploy.git]\n");
    write(repo.path(), "x/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: x\n");
    let (_, found) = check(repo.path(), &[]);
    assert!(with_rule(&found, "render-skipped").is_empty(), "{found:#?}");
}

#[test]
fn a_missing_value_file_is_an_error_unless_the_application_ignores_it() {
    let mut files = chart_files();
    let app = |ignore: bool| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  source:\n    repoURL: https://github.com/acme/deploy\n    path: charts/web\n    helm:\n      ignoreMissingValueFiles: {ignore}\n      valueFiles:\n        - values-nope.yaml\n  destination: {{namespace: web}}\n"
        )
    };
    let strict = app(false);
    files.push(("apps/web.yaml", strict.as_str()));
    let repo = repository(&files);
    let (_, found) = check(repo.path(), &[]);
    let failed = with_rule(&found, "render-failed");
    assert_eq!(failed.len(), 1, "{found:#?}");
    assert_eq!((failed[0].file.as_str(), failed[0].line), ("apps/web.yaml", 12));
    write(repo.path(), "apps/web.yaml", &app(true));
    let (_, found) = check(repo.path(), &[]);
    assert!(with_rule(&found, "render-failed").is_empty(), "{found:#?}");
}

#[test]
fn a_review_renders_only_the_environments_the_change_feeds() {
    let mut files = chart_files();
    let app = |name: &str, values: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  source:\n    repoURL: https://github.com/acme/deploy\n    path: charts/web\n    helm:\n      valueFiles: [../../envs/{values}]\n  destination: {{namespace: {name}}}\n"
        )
    };
    let (prod, broken) = (app("prod", "prod.yaml"), app("broken", "broken.yaml"));
    files.push(("apps/prod.yaml", prod.as_str()));
    files.push(("apps/broken.yaml", broken.as_str()));
    files.push(("envs/prod.yaml", "replicas: 3\n"));
    // An environment the change does not touch, which does not render at all: it must not be rendered.
    files.push(("envs/broken.yaml", "required: true\n"));
    let repo = repository(&files);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "base"]);
    write(repo.path(), "envs/prod.yaml", "replicas: 4\n");
    git(repo.path(), &["commit", "-q", "-am", "scale prod"]);
    let (stdout, plan) = review_last_commit(repo.path());
    assert!(!stdout.contains("render-failed"), "the untouched environment was rendered: {stdout}");
    assert_eq!(changed_environments(&plan), BTreeSet::from(["prod".to_string()]), "{stdout}");
    assert!(stdout.contains("replicas: 4"), "{stdout}");
}

#[test]
fn applications_an_app_of_apps_chart_renders_are_followed() {
    let repo = repository(&[
        ("apps/Chart.yaml", "apiVersion: v2\nname: apps\nversion: 0.1.0\n"),
        ("apps/values.yaml", "teams: [billing, search]\n"),
        (
            "apps/templates/apps.yaml",
            r#"{{- range .Values.teams }}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: team-{{ . }}
spec:
  source:
    repoURL: https://github.com/acme/deploy.git
    path: teams/{{ . }}
  destination:
    namespace: {{ . }}
{{- end }}
"#,
        ),
        (
            "teams/billing/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: billing\ndata:\n  STRIPE_SECRET: sk_live_4eC39HqLyjWDarjtT1zdp7dc\n",
        ),
        ("teams/search/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: search\ndata:\n  LEVEL: info\n"),
    ]);
    let (_, found) = check(repo.path(), &[]);
    let secrets: Vec<&Seen> = found.iter().filter(|f| f.rule.starts_with("secret-")).collect();
    assert!(!secrets.is_empty(), "{found:#?}");
    assert!(
        secrets.iter().all(|f| f.file == "teams/billing/cm.yaml" && f.environments == ["team-billing"]),
        "{found:#?}"
    );
    // The children's destination namespaces apply: nothing lacks a namespace.
    assert!(with_rule(&found, "namespace-missing").is_empty(), "{found:#?}");
}

const APPSET: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
spec:
  generators:
    - git:
        repoURL: https://github.com/acme/deploy.git
        revision: HEAD
        files:
          - path: "envs/*/config.yaml"
  template:
    metadata:
      name: 'web-{{path.basename}}'
    spec:
      source:
        repoURL: https://github.com/acme/deploy.git
        path: charts/web
        helm:
          valueFiles: ['../../envs/{{path.basename}}/values.yaml']
          parameters:
            - name: image.tag
              value: '{{tag}}'
      destination:
        namespace: 'web-{{path.basename}}'
"#;

#[test]
fn an_application_set_declares_one_environment_per_generated_application() {
    let mut files = chart_files();
    files.push(("apps/web.yaml", APPSET));
    files.push(("envs/prod/config.yaml", "tag: \"1.28\"\n"));
    files.push(("envs/prod/values.yaml", "replicas: 3\n"));
    files.push(("envs/dev/config.yaml", "tag: latest\n"));
    files.push(("envs/dev/values.yaml", "replicas: 1\n"));
    let repo = repository(&files);
    let (_, found) = check(repo.path(), &[]);
    let latest = with_rule(&found, "image-latest");
    assert_eq!(latest.len(), 1, "{found:#?}");
    assert_eq!(latest[0].environments, vec!["web-dev".to_string()]);
    // The tag comes from the generator's file: that is the line to change.
    assert_eq!((latest[0].file.as_str(), latest[0].line), ("envs/dev/config.yaml", 1));
    let probes = with_rule(&found, "probe-liveness-missing");
    assert_eq!(probes.len(), 1, "{found:#?}");
    let mut envs = probes[0].environments.clone();
    envs.sort();
    assert_eq!(envs, vec!["web-dev".to_string(), "web-prod".to_string()]);
    assert!(with_rule(&found, "namespace-missing").is_empty(), "{found:#?}");

    // A change to one environment's generator file reviews that environment only.
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "base"]);
    write(repo.path(), "envs/prod/config.yaml", "tag: latest\n");
    git(repo.path(), &["commit", "-q", "-am", "prod on latest"]);
    let (stdout, plan) = review_last_commit(repo.path());
    assert_eq!(changed_environments(&plan), BTreeSet::from(["web-prod".to_string()]), "{stdout}");
    let new: Vec<&serde_json::Value> =
        plan["findings"].as_array().expect("findings").iter().filter(|f| f["status"] == "new").collect();
    assert!(new.iter().any(|f| f["rule"] == "image-latest"), "{stdout}");
}

const FLUX_SOURCE: &str = r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: ssh://git@github.com/acme/deploy
  ref:
    branch: main
"#;

#[test]
fn a_flux_helm_release_renders_its_chart_with_its_values_and_post_renderers() {
    let mut files = chart_files();
    files.push(("clusters/prod/flux-system/gotk-sync.yaml", FLUX_SOURCE));
    files.push((
        "clusters/prod/web.yaml",
        r#"apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  interval: 5m
  chart:
    spec:
      chart: ./charts/web
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  valuesFrom:
    - kind: ConfigMap
      name: web-values
  values:
    image:
      tag: latest
  postRenderers:
    - kustomize:
        patches:
          - target:
              kind: Deployment
            patch: |
              - op: add
                path: /metadata/labels
                value: {team: web}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-values
  namespace: web
data:
  values.yaml: |
    replicas: 4
"#,
    ));
    let repo = repository(&files);
    let (_, found) = check(repo.path(), &[]);
    let latest = with_rule(&found, "image-latest");
    assert_eq!(latest.len(), 1, "{found:#?}");
    assert_eq!((latest[0].file.as_str(), latest[0].line), ("clusters/prod/web.yaml", 20), "{found:#?}");
    assert_eq!(latest[0].environments, vec!["web/web".to_string()]);
    // Rendered only as the HelmRelease deploys it, in its namespace.
    assert!(found.iter().all(|f| f.rule == "render-skipped" || !f.environments.is_empty()), "{found:#?}");
    assert!(with_rule(&found, "render-failed").is_empty(), "{found:#?}");
    assert!(with_rule(&found, "namespace-missing").is_empty(), "{found:#?}");
    // The ConfigMap's values and the post-renderer's patch reach the rendered Deployment: a review against an
    // empty base shows it whole.
    let empty = tempfile::tempdir().expect("tempdir");
    write(empty.path(), "README.md", "empty\n");
    let base = empty.path().to_string_lossy().into_owned();
    let head = repo.path().to_string_lossy().into_owned();
    let run =
        kpath(&["review", "--base-dir", &base, "--head-dir", &head, "--format", "json", "--no-cache"], repo.path());
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let diffs: String =
        plan["changes"].as_array().expect("changes").iter().filter_map(|c| c["diff"].as_str()).collect();
    assert!(diffs.contains("replicas: 4"), "{diffs}");
    assert!(diffs.contains("team: web"), "{diffs}");
}

#[test]
fn a_flux_kustomization_builds_its_path_with_target_namespace_prefix_and_variables() {
    let repo = repository(&[
        ("clusters/prod/flux-system/gotk-sync.yaml", FLUX_SOURCE),
        (
            "clusters/prod/apps.yaml",
            r#"apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/web
  prune: true
  targetNamespace: web
  namePrefix: prod-
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substitute:
      TAG: latest
"#,
        ),
        // No kustomization.yaml: Flux builds every manifest of the directory.
        (
            "apps/web/pod.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n    - name: web\n      image: nginx:${TAG}\n",
        ),
    ]);
    let (_, found) = check(repo.path(), &[]);
    let latest = with_rule(&found, "image-latest");
    assert_eq!(latest.len(), 1, "{found:#?}");
    assert_eq!(latest[0].environments, vec!["flux-system/apps".to_string()]);
    assert_eq!(latest[0].file, "apps/web/pod.yaml");
    assert!(latest[0].message.contains("prod-web") || latest[0].message.contains("nginx:latest"), "{latest:?}");
    assert!(with_rule(&found, "namespace-missing").is_empty(), "the target namespace applies: {found:#?}");
    assert!(with_rule(&found, "render-failed").is_empty(), "{found:#?}");
}

#[test]
fn a_value_from_a_list_generator_element_is_placed_on_the_element() {
    let mut files = chart_files();
    files.push((
        "apps/web.yaml",
        r#"apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
spec:
  goTemplate: true
  generators:
    - list:
        elements:
          - env: dev
            tag: latest
          - env: qa
            tag: "1.28"
  template:
    metadata:
      name: 'web-{{ .env }}'
    spec:
      source:
        repoURL: https://github.com/acme/deploy.git
        path: charts/web
        helm:
          valuesObject:
            image:
              tag: '{{ .tag }}'
      destination:
        namespace: 'web-{{ .env }}'
"#,
    ));
    let repo = repository(&files);
    let (_, found) = check(repo.path(), &[]);
    let latest = with_rule(&found, "image-latest");
    assert_eq!(
        latest.iter().map(|f| (f.file.as_str(), f.line, f.environments.clone())).collect::<Vec<_>>(),
        vec![("apps/web.yaml", 11, vec!["web-dev".to_string()])],
        "{found:#?}"
    );
}

#[test]
fn a_template_that_reads_the_cluster_says_so_and_the_rest_is_checked() {
    let mut files = chart_files();
    files.push((
        "charts/web/templates/secret.yaml",
        "{{- $existing := lookup \"v1\" \"Secret\" .Release.Namespace \"web\" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-seen\ndata:\n  found: {{ empty $existing | not | quote }}\n",
    ));
    files.push((
        "apps/web.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  source:\n    repoURL: https://github.com/acme/deploy\n    path: charts/web\n  destination: {namespace: web}\n",
    ));
    let repo = repository(&files);
    let (_, found) = check(repo.path(), &[]);
    let skipped = with_rule(&found, "render-skipped");
    assert_eq!(skipped.len(), 1, "{found:#?}");
    assert_eq!((skipped[0].file.as_str(), skipped[0].line), ("charts/web/templates/secret.yaml", 1));
    assert!(skipped[0].message.contains("`lookup`"), "{}", skipped[0].message);
    assert!(!with_rule(&found, "probe-liveness-missing").is_empty(), "the chart was still checked: {found:#?}");
}

#[test]
fn what_argo_cd_would_read_elsewhere_is_a_notice_and_a_path_that_is_not_there_an_error() {
    let mut files = chart_files();
    files.push((
        "apps/apps.yaml",
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
spec:
  sources:
    - repoURL: https://github.com/acme/deploy.git
      path: charts/web
      helm:
        valueFiles:
          - $shared/prod/values.yaml
    - repoURL: https://github.com/acme/shared-values.git
      ref: shared
  destination: {namespace: web}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-remote-values
spec:
  source:
    repoURL: https://github.com/acme/deploy.git
    path: charts/web
    helm:
      valueFiles: [https://config.example.com/web/values.yaml]
  destination: {namespace: web2}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: gone
spec:
  source:
    repoURL: https://github.com/acme/deploy.git
    path: apps/removed
  destination: {namespace: gone}
"#,
    ));
    let repo = repository(&files);
    let (code, found) = check(repo.path(), &[]);
    let skipped = with_rule(&found, "render-skipped");
    assert_eq!(skipped.iter().map(|f| f.line).collect::<Vec<_>>(), vec![11, 25], "{found:#?}");
    let failed = with_rule(&found, "render-failed");
    assert_eq!(failed.len(), 1, "{found:#?}");
    assert_eq!((failed[0].file.as_str(), failed[0].line), ("apps/apps.yaml", 35));
    assert!(failed[0].message.contains("does not exist"), "{}", failed[0].message);
    assert_eq!(code, 1, "the missing path fails, the notices do not");
}

#[test]
fn a_review_re_renders_exactly_what_each_kind_of_input_feeds() {
    let mut files = chart_files();
    files.push(("clusters/prod/flux-system/gotk-sync.yaml", FLUX_SOURCE));
    files.push((
        "apps/argo.yaml",
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-argo
spec:
  source:
    repoURL: https://github.com/acme/deploy.git
    path: charts/web
    helm:
      valuesObject:
        replicas: 2
  destination: {namespace: web}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop
spec:
  source:
    repoURL: https://github.com/acme/deploy.git
    path: shop/prod
  destination: {namespace: shop}
"#,
    ));
    files.push(("shop/base/kustomization.yaml", "resources:\n- cm.yaml\n"));
    files.push((
        "shop/base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\ndata:\n  level: info\n",
    ));
    files.push(("shop/prod/kustomization.yaml", "resources:\n- ../base\n"));
    files.push((
        "clusters/prod/web.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n  namespace: edge\nspec:\n  chart:\n    spec:\n      chart: ./charts/web\n      sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}\n  values:\n    replicas: 1\n",
    ));
    let repo = repository(&files);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "base"]);
    let change = |path: &str, from: &str, to: &str, message: &str| {
        let file = repo.path().join(path);
        let text = std::fs::read_to_string(&file).expect("file").replacen(from, to, 1);
        std::fs::write(&file, text).expect("write");
        git(repo.path(), &["commit", "-q", "-am", message]);
    };
    // An Application's own values: that Application only.
    change("apps/argo.yaml", "replicas: 2", "replicas: 3", "argo values");
    assert_eq!(reviewed_environments(repo.path()), BTreeSet::from(["web-argo".to_string()]));
    // A Kustomize base an Application deploys through an overlay: that Application.
    change("shop/base/cm.yaml", "level: info", "level: debug", "base");
    assert_eq!(reviewed_environments(repo.path()), BTreeSet::from(["shop".to_string()]));
    // A Flux HelmRelease: that release only.
    change("clusters/prod/web.yaml", "replicas: 1", "replicas: 2", "flux values");
    assert_eq!(reviewed_environments(repo.path()), BTreeSet::from(["edge/web".to_string()]));
    // The chart itself: every environment that deploys it, and no other.
    change(
        "charts/web/templates/deployment.yaml",
        "matchLabels: {app: web}",
        "matchLabels: {app: web, tier: front}",
        "chart",
    );
    assert_eq!(reviewed_environments(repo.path()), BTreeSet::from(["web-argo".to_string(), "edge/web".to_string()]));
}
