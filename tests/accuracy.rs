//! Rule accuracy from the user's side: repositories written by the test and checked by the `kpath`
//! binary, one test per false positive (or miss) seen on real input. Each test also keeps the true
//! case next to the false one, so a fix that silences the rule fails here.

#[path = "support/bin.rs"]
mod bin;

use bin::{kpath, repo};
use serde_json::Value;

/// `(rule, file, line)` of every finding that counts, from `kpath check --format json .`.
fn findings(files: &[(&str, &str)]) -> Vec<(String, String, u64)> {
    let dir = repo(files);
    let run = kpath(&["check", "--no-cache", "--format", "json", "."], dir.path());
    assert!(run.code == 0 || run.code == 1, "exit {}: {}", run.code, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout));
    bin::counted(&report)
        .into_iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn of_rule<'a>(found: &'a [(String, String, u64)], rule: &str) -> Vec<&'a str> {
    found.iter().filter(|(r, _, _)| r == rule).map(|(_, file, _)| file.as_str()).collect()
}

/// A Deployment in namespace `shop` whose one container runs `command`.
fn deployment(name: &str, command: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  selector:\n    \
         matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      \
         containers:\n        - name: {name}\n          image: registry.example.com/{name}:1.0.0\n          \
         command: {command}\n"
    )
}

#[test]
fn shell_pid1_follows_what_each_shell_does() {
    let found = findings(&[
        // bash replaces itself with a lone simple command: the server is PID 1.
        ("bash-lone.yaml", &deployment("a", r#"["bash", "-c", "./server --port 8080"]"#)),
        ("bash-lone-args.yaml", &deployment("b", r#"["/bin/bash", "-ec", "FOO=1 nginx -g 'daemon off;'"]"#)),
        // Still the shell: a list, a pipeline, a redirection, and `sh` (dash on Debian, which forks).
        ("bash-list.yaml", &deployment("c", r#"["bash", "-c", "./migrate && ./server"]"#)),
        ("bash-pipe.yaml", &deployment("d", r#"["bash", "-c", "./server | tee /tmp/log"]"#)),
        ("bash-redirect.yaml", &deployment("e", r#"["bash", "-c", "./server 2>&1"]"#)),
        ("sh-lone.yaml", &deployment("f", r#"["sh", "-c", "./server"]"#)),
    ]);
    let mut reported = of_rule(&found, "shell-pid1");
    reported.sort();
    assert_eq!(reported, ["bash-list.yaml", "bash-pipe.yaml", "bash-redirect.yaml", "sh-lone.yaml"], "{found:?}");
}

#[test]
fn tool_configuration_is_not_a_manifest() {
    let found = findings(&[
        (
            "kubeconfig.yaml",
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: dev\n    cluster: {server: https://127.0.0.1:6443}\n\
             contexts: []\ncurrent-context: dev\n",
        ),
        ("audit/policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n"),
        ("cluster/kind.yaml", "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnodes:\n  - role: control-plane\n"),
        ("cluster/k3d.yaml", "apiVersion: k3d.io/v1alpha5\nkind: Simple\nmetadata:\n  name: dev\nservers: 1\n"),
        ("skaffold.yaml", "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n    - image: app\n"),
        ("kubelet.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 110\n"),
        // A real object without a name is still reported.
        ("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: shop\nspec: {}\n"),
    ]);
    assert_eq!(of_rule(&found, "manifest-invalid"), ["broken.yaml"], "{found:?}");
    assert!(of_rule(&found, "namespace-missing").is_empty(), "tool files have no namespace to give: {found:?}");
}

#[test]
fn cluster_scoped_kinds_need_no_namespace() {
    let crd = |plural: &str, kind: &str, scope: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.example.com\n\
             spec:\n  group: example.com\n  scope: {scope}\n  names: {{kind: {kind}, plural: {plural}}}\n  versions:\n    \
             - {{name: v1, served: true, storage: true}}\n"
        )
    };
    let object = |api: &str, kind: &str| format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: x\n");
    let found = findings(&[
        ("gatewayclass.yaml", &object("gateway.networking.k8s.io/v1", "GatewayClass")),
        ("clusterissuer.yaml", &object("cert-manager.io/v1", "ClusterIssuer")),
        ("clusterpolicy.yaml", &object("kyverno.io/v1", "ClusterPolicy")),
        ("xrd.yaml", &object("apiextensions.crossplane.io/v1", "CompositeResourceDefinition")),
        ("volumeattributesclass.yaml", &object("storage.k8s.io/v1", "VolumeAttributesClass")),
        ("crds/widgets.yaml", &crd("widgets", "Widget", "Cluster")),
        ("crds/gadgets.yaml", &crd("gadgets", "Gadget", "Namespaced")),
        ("widget.yaml", &object("example.com/v1", "Widget")),
        // Namespaced, by their definition or by default: still reported.
        ("gadget.yaml", &object("example.com/v1", "Gadget")),
        ("thing.yaml", &object("other.example.com/v1", "Thing")),
        ("gateway.yaml", &object("gateway.networking.k8s.io/v1", "Gateway")),
        ("application.yaml", &object("argoproj.io/v1alpha1", "Application")),
    ]);
    let mut reported = of_rule(&found, "namespace-missing");
    reported.sort();
    assert_eq!(reported, ["application.yaml", "gadget.yaml", "gateway.yaml", "thing.yaml"], "{found:?}");
}

#[test]
fn pod_templates_of_well_known_kinds_are_read() {
    let container =
        "          containers:\n            - name: job\n              image: registry.example.com/job:latest\n";
    let scaled_job = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata:\n  name: jobs\n  namespace: shop\nspec:\n  \
         jobTargetRef:\n    template:\n      spec:\n{container}  triggers: []\n"
    );
    let deployment_config = "apiVersion: apps.openshift.io/v1\nkind: DeploymentConfig\nmetadata:\n  name: web\n  \
        namespace: shop\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: web\n          \
        image: registry.example.com/web:latest\n";
    let found = findings(&[("scaledjob.yaml", &scaled_job), ("dc.yaml", deployment_config)]);
    let mut latest = of_rule(&found, "image-latest");
    latest.sort();
    assert_eq!(latest, ["dc.yaml", "scaledjob.yaml"], "{found:?}");
    // A ScaledJob runs to completion: no probes expected.
    assert!(
        !found.iter().any(|(r, f, _)| f == "scaledjob.yaml" && r.starts_with("probe-")),
        "a job has no readiness to report: {found:?}"
    );
    assert!(of_rule(&found, "probe-readiness-missing").contains(&"dc.yaml"), "{found:?}");
}

#[test]
fn sensitive_names_and_values() {
    let env = |name: &str, value: &str| {
        deployment(name.to_ascii_lowercase().replace('_', "-").as_str(), r#"["./server"]"#)
            + &format!("          env:\n            - name: {name}\n              value: \"{value}\"\n")
    };
    let configmap = |key: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  {key}: \"{value}\"\n"
        )
    };
    let found = findings(&[
        ("batch.yaml", &env("AZURE_BATCH_KEY", "q0Zx9vL3mT8rB2nK7wY4pD6sF1hJ5cA0eG9uR3tV8xM=")),
        ("oci.yaml", &env("OCI_CLI_KEY_CONTENT", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")),
        ("creds.yaml", &env("SERVICE_CREDENTIALS", "c2VydmljZTpodW50ZXIy")),
        ("cm-conn.yaml", &configmap("ConnectionStrings__Db", "Server=db;Database=shop;User Id=app;Password=hunter2x;")),
        // Not secrets: a key's id, a path to a key, a key of a cache, a public key.
        ("cm-keyid.yaml", &configmap("git.commit-signing-key", "3AA5C34371567BD2")),
        ("keypath.yaml", &env("TLS_PRIVATE_KEY", "/etc/keys/tls.pem")),
        ("cachekey.yaml", &env("CACHE_KEY", "orders-v2-cache-partition-key")),
        ("keyid.yaml", &env("SIGNING_KEY_ID", "abc")),
        ("pubkey.yaml", &env("JWT_PUBLIC_KEY", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")),
    ]);
    let mut env_secrets = of_rule(&found, "secret-in-env");
    env_secrets.sort();
    assert_eq!(env_secrets, ["batch.yaml", "creds.yaml", "oci.yaml"], "{found:?}");
    assert_eq!(of_rule(&found, "secret-in-configmap"), ["cm-conn.yaml"], "{found:?}");
}

#[test]
fn rule_options_are_typed_and_checked_when_the_config_loads() {
    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: shop\nspec:\n  \
        resources:\n    requests:\n      storage: 10Gi\n";
    let dir = repo(&[("pvc.yaml", pvc), (".kpath.yml", "rules:\n  volume-oversized:\n    max: banana\n")]);
    let run = kpath(&["check", "."], dir.path());
    assert_eq!(run.code, 2, "a configuration error: {}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(".kpath.yml:3:"), "names the line: {}", run.stderr);
    assert!(run.stderr.contains("banana") && run.stderr.contains("quantity"), "{}", run.stderr);

    let dir = repo(&[("pvc.yaml", pvc), (".kpath.yml", "rules:\n  volume-oversized:\n    maxx: 1Gi\n")]);
    let run = kpath(&["check", "."], dir.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(".kpath.yml:3:") && run.stderr.contains("did you mean `max`"), "{}", run.stderr);

    let dir = repo(&[("pvc.yaml", pvc), (".kpath.yml", "rules:\n  keda-trigger-too-fine:\n    minRateWindow: [1m]\n")]);
    let run = kpath(&["check", "."], dir.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("duration"), "{}", run.stderr);

    // A good value is used: 10Gi is over a 5Gi maximum.
    let dir = repo(&[("pvc.yaml", pvc), (".kpath.yml", "rules:\n  volume-oversized:\n    max: 5Gi\n")]);
    let run = kpath(&["check", "."], dir.path());
    assert_eq!(run.code, 0, "a warning does not fail the check: {}", run.stderr);
    assert!(run.stdout.contains("volume-oversized") && run.stdout.contains("5Gi"), "{}", run.stdout);
}
