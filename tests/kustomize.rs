//! Kustomize roots rendered with the real pinned kubectl (`KPATH_KUBECTL`, installed by
//! `scripts/install-kubectl`) and, for `helmCharts:`, the pinned helm: repositories written by each test,
//! rendered through the library's renderer API, with findings' routes placed on source lines.

#[path = "support/bin.rs"]
mod bin;

use std::path::{Path, PathBuf};
use std::process::Command;

use kpath::config::Config;
use kpath::kustomize::Kustomize;
use kpath::render::{DirTree, Doc, Namespace, Output, Problem, RenderCx, Renderer, Unit};
use kpath::yaml::Route;

fn kubectl() -> PathBuf {
    bin::pinned_kubectl()
}

fn helm() -> PathBuf {
    bin::pinned_helm()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        bin::write(dir, path, text);
    }
}

fn tree(dir: &Path) -> DirTree {
    let files = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).expect("inside").to_string_lossy().replace('\\', "/"))
        .collect();
    DirTree::new(dir, files, "")
}

fn config() -> Config {
    let mut config = Config::default();
    config.helm.binary = Some(helm());
    config.helm.cache_dir = None;
    config
}

/// Discovers and renders every root of `dir`.
fn render_all(dir: &Path, config: &Config) -> Vec<(Unit, Result<Output, Problem>)> {
    render_with(&Kustomize::new(Some(kubectl())), dir, config)
}

fn render_with(k: &Kustomize, dir: &Path, config: &Config) -> Vec<(Unit, Result<Output, Problem>)> {
    let tree = tree(dir);
    let found = k.discover(&tree, config);
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let cx = RenderCx { dir, config };
    found
        .units
        .into_iter()
        .map(|unit| {
            let output = k.render(&unit, &cx);
            (unit, output)
        })
        .collect()
}

fn doc<'a>(output: &'a Output, name: &str) -> &'a Doc {
    output.docs.iter().find(|d| d.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = output.docs.iter().map(|d| d.name.as_str()).collect();
        panic!("no document {name} in {names:?}")
    })
}

/// Where a finding at `route` lands: (file, line, kind), most direct first.
fn places(doc: &Doc, route: &str) -> Vec<(String, u32, &'static str)> {
    let route = Route::parse(route);
    doc.source.locations(doc.index, Some(&route), None).into_iter().map(|l| (l.file, l.line, l.kind)).collect()
}

fn place(file: &str, line: u32, kind: &'static str) -> (String, u32, &'static str) {
    (file.to_string(), line, kind)
}

/// What `kubectl kustomize DIR` prints, run directly (no provenance annotations).
fn plain_kustomize(dir: &Path, extra: &[String]) -> String {
    let out = Command::new(kubectl()).arg("kustomize").args(extra).arg(dir).output().expect("kubectl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn joined(output: &Output) -> String {
    output.docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>().join("---\n")
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
";

const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
";

const PROD: &str = "\
namespace: prod
namePrefix: prod-
resources:
- ../../base
components:
- ../../components/team
patches:
- path: replicas.yaml
- path: port.yaml
  target:
    kind: Deployment
    name: web
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      template:
        spec:
          containers:
          - name: web
            resources:
              limits: {memory: 1Gi}
images:
- name: nginx
  newTag: \"1.27\"
configMapGenerator:
- name: cfg
  literals:
  - LOG_LEVEL=debug
  - DB_PASSWORD=hunter2-but-longer
secretGenerator:
- name: creds
  literals:
  - token=s3cr3t-token-value
  envs:
  - creds.env
";

const TEAM: &str = "\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
- patch: |-
    - op: add
      path: /metadata/labels
      value:
        team: payments
  target:
    kind: Service
";

fn shop(dir: &Path) {
    write(
        dir,
        &[
            ("deploy/base/kustomization.yaml", "resources:\n- deployment.yaml\n- service.yaml\n"),
            ("deploy/base/deployment.yaml", DEPLOYMENT),
            ("deploy/base/service.yaml", SERVICE),
            ("deploy/components/team/kustomization.yaml", TEAM),
            ("deploy/overlays/prod/kustomization.yaml", PROD),
            (
                "deploy/overlays/prod/replicas.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
            ),
            (
                "deploy/overlays/prod/port.yaml",
                "- op: replace\n  path: /spec/template/spec/containers/0/ports/0/containerPort\n  value: 8080\n",
            ),
            ("deploy/overlays/prod/creds.env", "# API access\nAPI_KEY=api-key-from-env-file\n"),
        ],
    );
}

#[test]
fn an_overlay_renders_as_kubectl_kustomize_prints_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    shop(dir.path());
    let rendered = render_all(dir.path(), &config());
    assert_eq!(
        rendered.len(),
        1,
        "only the overlay is a root: {:?}",
        rendered.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let (unit, output) = &rendered[0];
    assert_eq!(
        (unit.root.as_str(), unit.environment.as_deref()),
        ("deploy/overlays/prod", Some("deploy/overlays/prod"))
    );
    let output = output.as_ref().expect("renders");
    let names: Vec<&str> = output.docs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "kustomize://deploy/overlays/prod/v1_configmap_prod-cfg-dd987bf2b9.yaml",
            "kustomize://deploy/overlays/prod/v1_secret_prod-creds-49fkfbgm42.yaml",
            "kustomize://deploy/overlays/prod/v1_service_prod-web.yaml",
            "kustomize://deploy/overlays/prod/apps_v1_deployment_prod-web.yaml",
        ]
    );
    // Exactly what `kubectl kustomize` prints without buildMetadata: the provenance is gone.
    assert_eq!(joined(output), plain_kustomize(&dir.path().join("deploy/overlays/prod"), &[]));
    assert!(!joined(output).contains("config.kubernetes.io/origin"));
    assert_eq!(output.namespace, Namespace::Known("prod".into()));
    // Generator values that are secrets reach the run's secret set (and so are redacted from reports).
    for secret in ["hunter2-but-longer", "s3cr3t-token-value", "api-key-from-env-file"] {
        assert!(output.secrets.occurs_in(secret), "{secret} is not a secret");
    }
    assert!(!output.secrets.occurs_in("debug"));
    let commented: Vec<&str> = output.comments.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        commented.contains(&"deploy/base/deployment.yaml") && commented.contains(&"deploy/overlays/prod/creds.env")
    );
}

#[test]
fn findings_are_placed_on_the_line_to_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    shop(dir.path());
    let rendered = render_all(dir.path(), &config());
    let output = rendered[0].1.as_ref().expect("renders");
    let prod = "deploy/overlays/prod/kustomization.yaml";
    let deployment = doc(output, "kustomize://deploy/overlays/prod/apps_v1_deployment_prod-web.yaml");
    // A strategic-merge patch file, then the base resource.
    assert_eq!(
        places(deployment, "spec.replicas"),
        vec![
            place("deploy/overlays/prod/replicas.yaml", 6, "patch"),
            place("deploy/base/deployment.yaml", 6, "resource")
        ]
    );
    // A JSON 6902 patch file: its `value:`.
    assert_eq!(
        places(deployment, "spec.template.spec.containers[0].ports[0].containerPort")[0],
        place("deploy/overlays/prod/port.yaml", 3, "patch")
    );
    // An inline patch: its line inside the Kustomization; the base does not have the field, so the object
    // itself is the resource place.
    assert_eq!(
        places(deployment, "spec.template.spec.containers[0].resources.limits.memory"),
        vec![place(prod, 24, "patch"), place("deploy/base/deployment.yaml", 1, "resource")]
    );
    // `images:` set the image: its `newTag:` line, the one that says what runs.
    assert_eq!(
        places(deployment, "spec.template.spec.containers[0].image"),
        vec![place(prod, 27, "kustomization"), place("deploy/base/deployment.yaml", 15, "resource")]
    );
    assert_eq!(places(deployment, "metadata.namespace")[0], place(prod, 1, "kustomization"));
    assert_eq!(places(deployment, "spec.selector"), vec![place("deploy/base/deployment.yaml", 7, "resource")]);
    // A component's inline JSON 6902 patch.
    let service = doc(output, "kustomize://deploy/overlays/prod/v1_service_prod-web.yaml");
    assert_eq!(
        places(service, "metadata.labels.team"),
        vec![
            place("deploy/components/team/kustomization.yaml", 8, "patch"),
            place("deploy/base/service.yaml", 1, "resource")
        ]
    );
    // Generator literals and env-file lines.
    let cm = doc(output, "kustomize://deploy/overlays/prod/v1_configmap_prod-cfg-dd987bf2b9.yaml");
    assert_eq!(places(cm, "data.DB_PASSWORD"), vec![place(prod, 32, "kustomization")]);
    assert_eq!(
        cm.source.locations(0, None, None),
        vec![kpath::finding::Location { file: prod.into(), line: 29, column: 3, kind: "kustomization" }]
    );
    let secret = doc(output, "kustomize://deploy/overlays/prod/v1_secret_prod-creds-49fkfbgm42.yaml");
    assert_eq!(places(secret, "data.token"), vec![place(prod, 36, "kustomization")]);
    assert_eq!(places(secret, "data.API_KEY"), vec![place("deploy/overlays/prod/creds.env", 2, "kustomization")]);
    // Nothing is invented: a route no source writes has no place but the object's resource.
    assert_eq!(places(cm, "data.NOPE"), Vec::new());
}

#[test]
fn a_base_shared_by_three_roots_renders_once_per_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[("base/kustomization.yaml", "resources:\n- deployment.yaml\n"), ("base/deployment.yaml", DEPLOYMENT)],
    );
    for env in ["dev", "stage", "prod"] {
        let k = format!("namespace: shop-{env}\nresources:\n- ../../base\n");
        write(dir.path(), &[(&format!("overlays/{env}/kustomization.yaml"), k.as_str())]);
    }
    let rendered = render_all(dir.path(), &config());
    let roots: Vec<&str> = rendered.iter().map(|(u, _)| u.root.as_str()).collect();
    assert_eq!(roots, vec!["overlays/dev", "overlays/prod", "overlays/stage"]);
    for (unit, output) in &rendered {
        let output = output.as_ref().expect("renders");
        let env = unit.root.trim_start_matches("overlays/");
        assert_eq!(output.namespace, Namespace::Known(format!("shop-{env}")));
        let d = doc(output, &format!("kustomize://{}/apps_v1_deployment_web.yaml", unit.root));
        assert!(d.text.contains(&format!("namespace: shop-{env}")), "{}", d.text);
        assert_eq!(places(d, "spec.replicas"), vec![place("base/deployment.yaml", 6, "resource")]);
    }
}

#[test]
fn helm_charts_inflate_with_the_pinned_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("apps/cache/charts/cache/Chart.yaml", "apiVersion: v2\nname: cache\nversion: 0.1.0\n"),
            ("apps/cache/charts/cache/values.yaml", "replicas: 1\n"),
            (
                "apps/cache/charts/cache/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  replicas: \"{{ .Values.replicas }}\"\n",
            ),
            (
                "apps/cache/kustomization.yaml",
                "namespace: apps\nhelmCharts:\n- name: cache\n  releaseName: rel\n  valuesFile: values-prod.yaml\n",
            ),
            ("apps/cache/values-prod.yaml", "replicas: 4\n"),
        ],
    );
    let rendered = render_all(dir.path(), &config());
    assert_eq!(rendered.len(), 1);
    let (unit, output) = &rendered[0];
    assert!(unit.reads("apps/cache/charts/cache/templates/cm.yaml") && unit.reads("apps/cache/values-prod.yaml"));
    let output = output.as_ref().expect("renders");
    let cm = doc(output, "kustomize://apps/cache/v1_configmap_rel-cm.yaml");
    assert!(cm.text.contains("replicas: \"4\""), "{}", cm.text);
    assert!(!cm.text.contains("config.kubernetes.io"), "{}", cm.text);
    let extra = vec!["--enable-helm".to_string(), format!("--helm-command={}", helm().display())];
    assert_eq!(joined(output), plain_kustomize(&dir.path().join("apps/cache"), &extra));
    assert_eq!(places(cm, "data.replicas"), vec![place("apps/cache/kustomization.yaml", 3, "kustomization")]);
}

#[test]
fn a_remote_base_is_refused_by_name_and_no_tool_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "prod/kustomization.yaml",
            "namespace: prod\nresources:\n- https://github.com/example/app//deploy?ref=v1\n",
        )],
    );
    // A kubectl that does not exist: had anything tried to run, the problem would be about it.
    let k = Kustomize::new(Some(PathBuf::from("/nonexistent/kubectl")));
    let rendered = render_with(&k, dir.path(), &config());
    let problem = rendered[0].1.as_ref().err().expect("refused");
    assert_eq!((problem.file.as_str(), problem.pos.line), ("prod/kustomization.yaml", 3));
    assert!(problem.message.contains("https://github.com/example/app//deploy?ref=v1"), "{}", problem.message);
    assert!(problem.message.contains("remote") && !problem.message.contains("nonexistent"), "{}", problem.message);
}

#[test]
fn broken_roots_fail_at_the_reference_kustomize_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("missing/kustomization.yaml", "resources:\n- service.yaml\n- missing.yaml\n"),
            ("missing/service.yaml", SERVICE),
            ("base/kustomization.yaml", "resources:\n- deployment.yaml\n- gone.yaml\n"),
            ("base/deployment.yaml", DEPLOYMENT),
            ("in-base/kustomization.yaml", "namespace: x\nresources:\n- ../base\n"),
            ("nopatch/kustomization.yaml", "resources:\n- deployment.yaml\npatches:\n- path: nope.yaml\n"),
            ("nopatch/deployment.yaml", DEPLOYMENT),
            ("unmatched/kustomization.yaml", "resources:\n- deployment.yaml\npatches:\n- path: other.yaml\n"),
            ("unmatched/deployment.yaml", DEPLOYMENT),
            (
                "unmatched/other.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other\nspec:\n  replicas: 2\n",
            ),
            ("typo/kustomization.yaml", "resources:\n- deployment.yaml\nresourcez:\n- x.yaml\n"),
            ("typo/deployment.yaml", DEPLOYMENT),
        ],
    );
    let rendered = render_all(dir.path(), &config());
    let failures: Vec<(&str, &str, u32)> = rendered
        .iter()
        .map(|(unit, output)| {
            let problem = output.as_ref().err().unwrap_or_else(|| panic!("{} rendered", unit.root));
            assert!(!problem.message.contains("kpath-helm-"), "sandbox path shown: {}", problem.message);
            (unit.root.as_str(), problem.file.as_str(), problem.pos.line)
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            ("in-base", "base/kustomization.yaml", 3),
            ("missing", "missing/kustomization.yaml", 3),
            ("nopatch", "nopatch/kustomization.yaml", 4),
            ("typo", "typo/kustomization.yaml", 3),
            ("unmatched", "unmatched/kustomization.yaml", 4),
        ]
    );
}

#[test]
fn failed_renders_are_cached_like_successful_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("bad/kustomization.yaml", "resources:\n- nothing-here-for-the-cache-test.yaml\n"),
            ("good/kustomization.yaml", "resources:\n- service.yaml\n"),
            ("good/service.yaml", SERVICE),
        ],
    );
    let mut config = config();
    config.helm.cache_dir = Some(cache.path().to_path_buf());
    let first = render_all(dir.path(), &config);
    let entries: Vec<String> = std::fs::read_dir(cache.path())
        .expect("the cache directory")
        .map(|e| std::fs::read_to_string(e.expect("an entry").path()).expect("readable"))
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().any(|e| e.starts_with("err\nbad/kustomization.yaml\n2\n")), "{entries:?}");
    assert!(entries.iter().any(|e| e.starts_with("ok\napiVersion: v1\n")), "{entries:?}");
    // The same content renders the same, from the cache.
    let again = render_all(dir.path(), &config);
    assert_eq!(first[0].1.as_ref().err(), again[0].1.as_ref().err());
    assert_eq!(joined(first[1].1.as_ref().expect("renders")), joined(again[1].1.as_ref().expect("renders")));
}

#[test]
fn escapes_and_links_out_of_the_tree_are_refused() {
    let outside = tempfile::tempdir().expect("tempdir");
    write(outside.path(), &[("secret.yaml", SERVICE)]);
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("up/kustomization.yaml", "resources:\n- ../../../../../../etc/hostname\n"),
            ("link/kustomization.yaml", "resources:\n- service.yaml\n"),
        ],
    );
    std::os::unix::fs::symlink(outside.path().join("secret.yaml"), dir.path().join("link/service.yaml"))
        .expect("symlink");
    let rendered = render_all(dir.path(), &config());
    let link = rendered[0].1.as_ref().err().expect("refused");
    assert_eq!((link.file.as_str(), link.pos.line), ("link/kustomization.yaml", 2));
    assert!(link.message.contains("link out of the repository"), "{}", link.message);
    let up = rendered[1].1.as_ref().err().expect("refused");
    assert_eq!((up.file.as_str(), up.pos.line), ("up/kustomization.yaml", 2));
    assert!(up.message.contains("out of the repository"), "{}", up.message);
}

#[test]
fn provenance_the_user_asked_for_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("app/kustomization.yaml", "resources:\n- service.yaml\nbuildMetadata: [originAnnotations]\n"),
            ("app/service.yaml", SERVICE),
        ],
    );
    let rendered = render_all(dir.path(), &config());
    let output = rendered[0].1.as_ref().expect("renders");
    let text = joined(output);
    assert!(text.contains("config.kubernetes.io/origin"), "{text}");
    assert!(!text.contains("alpha.config.kubernetes.io/transformations"), "{text}");
    // As `kubectl kustomize app` prints it: the path relative to the root, not to kpath's wrapper.
    assert_eq!(text, plain_kustomize(&dir.path().join("app"), &[]));
}
