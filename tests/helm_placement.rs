//! Where a finding on a rendered Helm object is placed, from the user's side: small charts written by each
//! test, checked by the `kpath` binary with the pinned Helm; the first location must be the line a person
//! changes (the values key, `.kpath.yml`'s or an Argo CD / Flux object's `set` line), the template line next.

#[path = "support/bin.rs"]
mod bin;

use std::path::Path;

use bin::{git, kpath, write};
use serde_json::Value;

const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: \"2.0\"\n";

/// A Deployment whose single container's `image:` and `env:` lines are `image` and `env` (each indented to
/// sit under the container).
fn deployment(image: &str, env: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          {image}
          env:
{env}"
    )
}

/// A repository holding the chart `charts/web` with `template` and `values`, and `files`.
fn repository(template: &str, values: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "charts/web/Chart.yaml", CHART);
    write(dir.path(), "charts/web/values.yaml", values);
    write(dir.path(), "charts/web/templates/deployment.yaml", template);
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

fn check(dir: &Path) -> Value {
    let run = kpath(&["check", ".", "--format", "json", "--no-cache"], dir);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", run.stdout, run.stderr))
}

/// The findings of `rule`.
fn of_rule<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"].as_array().expect("findings").iter().filter(|f| f["rule"] == rule).collect()
}

/// The only finding of `rule`.
fn one<'a>(report: &'a Value, rule: &str) -> &'a Value {
    let found = of_rule(report, rule);
    assert_eq!(found.len(), 1, "expected one `{rule}`: {report:#}");
    found[0]
}

/// (kind, file, line) of each location but the rendered one, in order.
fn placed(finding: &Value) -> Vec<(String, String, u64)> {
    finding["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .filter(|l| l["kind"] != "rendered")
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or("").to_string(),
                l["file"].as_str().unwrap_or("").to_string(),
                l["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The 1-based line of the `nth` (0-based) line of `text` containing `needle`.
fn line_of(text: &str, needle: &str, nth: usize) -> u64 {
    let index = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .unwrap_or_else(|| panic!("no line {nth} with {needle:?} in:\n{text}"))
        .0;
    index as u64 + 1
}

fn at(kind: &str, file: &str, line: u64) -> (String, String, u64) {
    (kind.to_string(), file.to_string(), line)
}

const TEMPLATE_FILE: &str = "charts/web/templates/deployment.yaml";
const VALUES_FILE: &str = "charts/web/values.yaml";
const NO_ENV: &str = "            - {name: MODE, value: web}\n";

#[test]
fn of_several_references_on_a_line_the_finding_is_on_the_value_at_fault() {
    // The tag is `latest`: the comment belongs on `tag:`, not on `repository:` (the first reference).
    let template = deployment(r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}""#, NO_ENV);
    let values = "image:\n  repository: nginx\n  tag: latest\n";
    let report = check(repository(&template, values, &[]).path());
    assert_eq!(
        placed(one(&report, "image-latest")),
        [
            at("values", VALUES_FILE, line_of(values, "tag:", 0)),
            at("template", TEMPLATE_FILE, line_of(&template, "image:", 0))
        ]
    );

    // With `default`, the same.
    let template = deployment(
        r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}""#,
        NO_ENV,
    );
    let report = check(repository(&template, values, &[]).path());
    assert_eq!(placed(one(&report, "image-latest"))[0], at("values", VALUES_FILE, line_of(values, "tag:", 0)));

    // No tag at all: the repository's value is the one to pin.
    let template = deployment(r#"image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}""#, NO_ENV);
    let values = "image:\n  registry: docker.io\n  repository: library/nginx\n";
    let report = check(repository(&template, values, &[]).path());
    assert_eq!(
        placed(one(&report, "image-latest")),
        [
            at("values", VALUES_FILE, line_of(values, "repository:", 0)),
            at("template", TEMPLATE_FILE, line_of(&template, "image:", 0))
        ]
    );

    // A digest pins the image whatever the tag says: nothing to place.
    let template = deployment(
        r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}@{{ .Values.image.digest }}""#,
        NO_ENV,
    );
    let values = "image:\n  repository: nginx\n  tag: latest\n  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
    let report = check(repository(&template, values, &[]).path());
    assert!(of_rule(&report, "image-latest").is_empty(), "{report:#}");
}

const RANGE_ENV: &str = "            - name: MODE
              value: web
          {{- range .Values.env }}
            - name: {{ .name }}
              value: {{ .value | quote }}
          {{- end }}
";

#[test]
fn a_literal_secret_rendered_by_a_range_loop_is_on_its_values_item() {
    let image = r#"image: "nginx:1.27""#;
    let template = deployment(image, RANGE_ENV);
    let values = "env:\n  - name: LOG_LEVEL\n    value: info\n  - name: DB_PASSWORD\n    value: hunter2\n";
    let report = check(repository(&template, values, &[]).path());
    let secret = one(&report, "secret-in-env");
    assert_eq!(
        placed(secret),
        [
            at("values", VALUES_FILE, line_of(values, "value: hunter2", 0)),
            at("template", TEMPLATE_FILE, line_of(&template, "value: {{ .value", 0))
        ],
        "{secret:#}"
    );

    // A map, with its key and value as loop variables: Go visits the keys sorted, the item is the key's line.
    let env = "          {{- range $name, $value := .Values.env }}
            - name: {{ $name }}
              value: {{ $value | quote }}
          {{- end }}
";
    let template = deployment(image, env);
    let values = "env:\n  ZONE: eu\n  DB_PASSWORD: hunter2\n  LOG_LEVEL: info\n";
    let report = check(repository(&template, values, &[]).path());
    assert_eq!(
        placed(one(&report, "secret-in-env")),
        [
            at("values", VALUES_FILE, line_of(values, "DB_PASSWORD", 0)),
            at("template", TEMPLATE_FILE, line_of(&template, "value: {{ $value", 0))
        ]
    );

    // `range $i, $e := …` over a list.
    let env = "          {{- range $i, $e := .Values.env }}
            - name: {{ $e.name }}
              value: {{ $e.value | quote }}
          {{- end }}
";
    let template = deployment(image, env);
    let values = "env:\n  - name: LOG_LEVEL\n    value: info\n  - name: DB_PASSWORD\n    value: hunter2\n";
    let report = check(repository(&template, values, &[]).path());
    assert_eq!(
        placed(one(&report, "secret-in-env"))[0],
        at("values", VALUES_FILE, line_of(values, "value: hunter2", 0))
    );

    // The list written whole with `toYaml`.
    let env = "            {{- toYaml .Values.env | nindent 12 }}\n";
    let template = deployment(image, env);
    let report = check(repository(&template, values, &[]).path());
    assert_eq!(
        placed(one(&report, "secret-in-env"))[0],
        at("values", VALUES_FILE, line_of(values, "value: hunter2", 0))
    );

    // A loop that may skip elements: which element rendered the item cannot be told; the template line only.
    let env = "          {{- range .Values.env }}
          {{- if .name }}
            - name: {{ .name }}
              value: {{ .value | quote }}
          {{- end }}
          {{- end }}
";
    let template = deployment(image, env);
    let report = check(repository(&template, values, &[]).path());
    assert_eq!(
        placed(one(&report, "secret-in-env")),
        [at("template", TEMPLATE_FILE, line_of(&template, "value: {{ .value", 0))]
    );
}

#[test]
fn a_value_set_in_kpath_yml_is_placed_on_its_set_line() {
    let template = deployment(r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}""#, NO_ENV);
    let values = "image:\n  repository: nginx\n  tag: \"1.27\"\n";
    let config = "helm:
  releases:
    - chart: charts/web
      namespace: web
      set:
        replicaCount: \"2\"
        image.tag: latest
      environments:
        prod:
          set: {image.repository: \"nginx\"}
        dev:
          set:
            image.tag: \"1.27\"
            image.repository: busybox
";
    let report = check(repository(&template, values, &[(".kpath.yml", config)]).path());
    // prod: the release's `set` line of the tag (dev sets the tag back to a version).
    let latest = one(&report, "image-latest");
    assert_eq!(latest["environments"], serde_json::json!(["prod"]), "{latest:#}");
    assert_eq!(
        placed(latest),
        [
            at("values", ".kpath.yml", line_of(config, "image.tag: latest", 0)),
            at("template", TEMPLATE_FILE, line_of(&template, "image:", 0))
        ]
    );
}

const ORIGIN: &str = "git@github.com:acme/deploy.git";

/// A repository like [`repository`] whose `origin` is [`ORIGIN`], as the Argo CD and Flux objects name it.
fn declared_repository(template: &str, values: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = repository(template, values, files);
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["remote", "add", "origin", ORIGIN]);
    dir
}

#[test]
fn argo_cd_parameters_and_flux_target_paths_are_placed_where_they_are_written() {
    let template = deployment(r#"image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}""#, NO_ENV);
    let values = "image:\n  repository: nginx\n  tag: \"1.27\"\n";
    let application = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
  namespace: argocd
spec:
  source:
    repoURL: https://github.com/acme/deploy.git
    path: charts/web
    helm:
      parameters:
        - name: image.repository
          value: nginx
        - name: image.tag
          value: latest
  destination:
    namespace: web
";
    let repo = declared_repository(&template, values, &[("apps/web.yaml", application)]);
    let report = check(repo.path());
    assert_eq!(
        placed(one(&report, "image-latest")),
        [
            at("values", "apps/web.yaml", line_of(application, "value: latest", 0)),
            at("template", TEMPLATE_FILE, line_of(&template, "image:", 0))
        ]
    );

    let flux = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  url: ssh://git@github.com/acme/deploy
  ref:
    branch: main
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  chart:
    spec:
      chart: ./charts/web
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  valuesFrom:
    - kind: ConfigMap
      name: web-tag
      valuesKey: tag
      targetPath: image.tag
  values:
    image:
      repository: nginx
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-tag
  namespace: web
data:
  tag: latest
";
    let repo = declared_repository(&template, values, &[("clusters/prod/web.yaml", flux)]);
    let report = check(repo.path());
    // The tag is written on the ConfigMap's key, which `targetPath` puts at `image.tag`.
    assert_eq!(
        placed(one(&report, "image-latest")),
        [
            at("values", "clusters/prod/web.yaml", line_of(flux, "tag: latest", 0)),
            at("template", TEMPLATE_FILE, line_of(&template, "image:", 0))
        ]
    );
}
