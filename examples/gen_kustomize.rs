//! Generates a synthetic Kustomize corpus for benchmarks: `cargo run --release --example gen_kustomize -- DIR APPS [OVERLAYS]`.
//!
//! Each app is a base (Deployment, Service, ConfigMap, a `configMapGenerator` with literals and a file)
//! and 2 or 3 overlays (`dev`, [`staging`,] `prod`), each a Kustomize root: `namespace`, `namePrefix`,
//! `images:`, strategic-merge patches (a file, and through the shared component), JSON6902 patches (inline
//! and from a file), a merging `configMapGenerator`, `replicas:`, and one shared component
//! (`components/monitoring`) used by every overlay but `dev`. The output depends only on the arguments.
//! Some apps carry a breach (a `latest` tag, a password literal, a CPU limit) so the rules have work to do
//! on rendered objects; app 0 carries all of them.
//! Kustomization fields: <https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/>.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from);
    let apps = args.next().and_then(|n| n.parse::<usize>().ok());
    let overlays = match args.next() {
        None => Some(3),
        Some(n) => n.parse::<usize>().ok().filter(|n| (2..=3).contains(n)),
    };
    let (Some(dir), Some(apps), Some(overlays)) = (dir, apps, overlays) else {
        eprintln!("usage: gen_kustomize DIR APPS [OVERLAYS (2 or 3, default 3)]");
        return std::process::ExitCode::from(2);
    };
    match generate(&dir, apps, overlays) {
        Ok(roots) => {
            println!("wrote {apps} apps, {roots} Kustomize roots under {}", dir.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes the component and every app; returns the number of roots (overlays).
fn generate(dir: &Path, apps: usize, overlays: usize) -> Result<usize, String> {
    let component = dir.join("components").join("monitoring");
    write(&component.join("kustomization.yaml"), COMPONENT)?;
    write(&component.join("scrape.yaml"), COMPONENT_PATCH)?;
    let envs: &[&str] = if overlays == 3 { &["dev", "staging", "prod"] } else { &["dev", "prod"] };
    for app in 0..apps {
        let a = App::new(app);
        let base = dir.join("apps").join(&a.name);
        write(&base.join("base").join("kustomization.yaml"), &a.base_kustomization())?;
        write(&base.join("base").join("deployment.yaml"), &a.deployment())?;
        write(&base.join("base").join("service.yaml"), &a.service())?;
        write(&base.join("base").join("configmap.yaml"), &a.configmap())?;
        write(&base.join("base").join("application.properties"), &a.properties())?;
        for env in envs {
            let root = base.join("overlays").join(env);
            for (file, text) in a.overlay(env) {
                write(&root.join(file), &text)?;
            }
        }
    }
    Ok(apps * envs.len())
}

const COMPONENT: &str = "\
# Shared by the staging and prod overlays of every app: Prometheus scraping.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
labels:
  - pairs:
      observability.example.com/scraped: \"true\"
patches:
  - path: scrape.yaml
    target:
      group: apps
      version: v1
      kind: Deployment
";

const COMPONENT_PATCH: &str = "\
# The name is replaced by each target's.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: any
spec:
  template:
    metadata:
      annotations:
        prometheus.io/scrape: \"true\"
        prometheus.io/port: \"9090\"
        prometheus.io/path: /metrics
";

struct App {
    index: usize,
    name: String,
    image: String,
}

impl App {
    fn new(index: usize) -> App {
        let name = format!("app-{index:04}");
        let image = format!("registry.example.com/shop/{name}");
        App { index, name, image }
    }

    /// A deterministic number from the app's index and a salt (splitmix64), for varied fields.
    fn pick(&self, salt: u64) -> u64 {
        let mut z = (self.index as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn base_kustomization(&self) -> String {
        let name = &self.name;
        let mut y = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nlabels:\n  - pairs:\n      app.kubernetes.io/name: {name}\n      app.kubernetes.io/part-of: shop\n    includeSelectors: true\nresources:\n  - deployment.yaml\n  - service.yaml\n  - configmap.yaml\nconfigMapGenerator:\n  - name: {name}-settings\n    literals:\n      - LOG_LEVEL=info\n      - CACHE_TTL={}\n      - UPSTREAM_URL=http://inventory.shop.svc.cluster.local\n",
            60 * (1 + self.pick(1) % 10)
        );
        // A password written in a generator literal: `secret-in-configmap` once literals are checked.
        if self.index.is_multiple_of(10) {
            let _ = writeln!(y, "      - DATABASE_PASSWORD=hunter2-{:08x}", self.pick(2) as u32);
        }
        y.push_str("    files:\n      - application.properties\n");
        y
    }

    fn deployment(&self) -> String {
        let (name, image) = (&self.name, &self.image);
        let cpu = 100 + (self.pick(3) % 8) * 50;
        let memory = 128 + (self.pick(4) % 4) * 128;
        let mut y = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  annotations:\n    team.example.com/owner: team-{:02}\nspec:\n  revisionHistoryLimit: 5\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: server\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/component: server\n    spec:\n      serviceAccountName: {name}\n      securityContext:\n        runAsNonRoot: true\n        seccompProfile:\n          type: RuntimeDefault\n      containers:\n        - name: server\n          image: {image}:1.0.0\n          args: [\"--port=8080\", \"--metrics-port=9090\"]\n          ports:\n            - name: http\n              containerPort: 8080\n            - name: metrics\n              containerPort: 9090\n          envFrom:\n            - configMapRef:\n                name: {name}-settings\n          env:\n            - name: POD_NAMESPACE\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.namespace\n            - name: DATABASE_HOST\n              valueFrom:\n                configMapKeyRef:\n                  name: {name}-config\n                  key: database.host\n",
            self.index % 37
        );
        let _ = write!(
            y,
            "          resources:\n            requests:\n              cpu: {cpu}m\n              memory: {memory}Mi\n            limits:\n              memory: {memory}Mi\n          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n            periodSeconds: 10\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n            periodSeconds: 20\n          lifecycle:\n            preStop:\n              sleep:\n                seconds: 5\n          securityContext:\n            allowPrivilegeEscalation: false\n            readOnlyRootFilesystem: true\n            capabilities:\n              drop: [\"ALL\"]\n          volumeMounts:\n            - name: config\n              mountPath: /etc/{name}\n              readOnly: true\n            - name: tmp\n              mountPath: /tmp\n      volumes:\n        - name: config\n          configMap:\n            name: {name}-settings\n        - name: tmp\n          emptyDir:\n            sizeLimit: 64Mi\n"
        );
        y
    }

    fn service(&self) -> String {
        let name = &self.name;
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/component: server\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n    - name: metrics\n      port: 9090\n      targetPort: metrics\n"
        )
    }

    fn configmap(&self) -> String {
        let name = &self.name;
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n  database.host: db-{:02}.shop.svc.cluster.local\n  FEATURE_FLAGS: \"checkout,search\"\n  tracing.yaml: |\n    exporter: otlp\n    endpoint: http://otel-collector.observability.svc:4317\n    sampleRatio: 0.{}\n",
            self.index % 12,
            1 + self.pick(5) % 9
        )
    }

    fn properties(&self) -> String {
        format!(
            "server.port=8080\nserver.shutdown=graceful\nspring.application.name={}\nmanagement.endpoints.web.exposure.include=health,prometheus\ncache.size={}\n",
            self.name,
            1000 * (1 + self.pick(6) % 20)
        )
    }

    /// The files of one overlay root.
    fn overlay(&self, env: &str) -> Vec<(&'static str, String)> {
        let (name, image) = (&self.name, &self.image);
        let mut k = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: shop-{env}\nnamePrefix: {env}-\nresources:\n  - ../../base\n"
        );
        let mut files = Vec::new();
        if env == "prod" {
            k.push_str("  - pdb.yaml\n");
            files.push((
                "pdb.yaml",
                format!(
                    "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {name}\nspec:\n  minAvailable: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n      app.kubernetes.io/component: server\n"
                ),
            ));
        }
        if env != "dev" {
            k.push_str("components:\n  - ../../../../components/monitoring\n");
        }
        // `images:` sets the tag (or, in prod, a release registry and a digest).
        match env {
            "dev" => {
                // A mutable tag in some dev overlays: `image-latest`, found on this line.
                let tag = if self.index.is_multiple_of(5) {
                    "latest".to_string()
                } else {
                    format!("1.{}.0-dev.{}", self.pick(7) % 9, self.pick(8) % 40)
                };
                let _ = write!(k, "images:\n  - name: {image}\n    newTag: {tag}\n");
            }
            "staging" => {
                let _ =
                    write!(k, "images:\n  - name: {image}\n    newTag: 1.{}.{}\n", self.pick(7) % 9, self.pick(9) % 5);
            }
            _ => {
                let digest =
                    format!("{:016x}{:016x}{:016x}{:016x}", self.pick(10), self.pick(11), self.pick(12), self.pick(13));
                let _ = write!(
                    k,
                    "images:\n  - name: {image}\n    newName: registry.example.com/shop-release/{name}\n    digest: sha256:{digest}\nreplicas:\n  - name: {name}\n    count: {}\n",
                    3 + self.pick(14) % 3
                );
            }
        }
        // Strategic-merge patch from a file: resources (and, in some prod overlays, a CPU limit).
        k.push_str("patches:\n  - path: resources.yaml\n");
        let memory = match env {
            "dev" => 256,
            "staging" => 512,
            _ => 1024,
        };
        let mut patch = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: server\n          resources:\n            requests:\n              memory: {memory}Mi\n            limits:\n              memory: {memory}Mi\n"
        );
        if env == "prod" && self.index.is_multiple_of(4) {
            patch.push_str("              cpu: \"2\"\n");
        }
        files.push(("resources.yaml", patch));
        // JSON6902 patches: inline in staging, from a file in prod.
        match env {
            "staging" => {
                let _ = write!(
                    k,
                    "  - target:\n      group: apps\n      version: v1\n      kind: Deployment\n      name: {name}\n    patch: |-\n      - op: replace\n        path: /spec/revisionHistoryLimit\n        value: 3\n      - op: add\n        path: /spec/template/spec/containers/0/env/-\n        value:\n          name: FEATURE_PREVIEW\n          value: \"on\"\n"
                );
            }
            "prod" => {
                let _ = write!(
                    k,
                    "  - path: rollout.yaml\n    target:\n      group: apps\n      version: v1\n      kind: Deployment\n      name: {name}\n"
                );
                files.push((
                    "rollout.yaml",
                    "- op: add\n  path: /spec/strategy\n  value:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 0\n- op: add\n  path: /spec/template/spec/topologySpreadConstraints\n  value:\n    - maxSkew: 1\n      topologyKey: topology.kubernetes.io/zone\n      whenUnsatisfiable: ScheduleAnyway\n      labelSelector:\n        matchLabels:\n          app.kubernetes.io/component: server\n"
                        .to_string(),
                ));
            }
            _ => {}
        }
        let level = if env == "dev" { "debug" } else { "info" };
        let _ = write!(
            k,
            "configMapGenerator:\n  - name: {name}-settings\n    behavior: merge\n    literals:\n      - LOG_LEVEL={level}\n      - ENVIRONMENT={env}\n"
        );
        files.push(("kustomization.yaml", k));
        files
    }
}
