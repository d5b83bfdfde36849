//! Generates a synthetic GitOps corpus for benchmarks: `cargo run --release --example gen_corpus -- DIR OBJECTS`.
//!
//! Each app gets a Deployment, Service, ConfigMap and HPA in its own file, in varied but realistic
//! shapes; about one app in ten carries a breach, so the rules have work to do.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(count)) = (args.next(), args.next().and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: gen_corpus DIR OBJECTS");
        return std::process::ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let apps = count.div_ceil(4);
    for app in 0..apps {
        let team = app % 37;
        let path = dir.join(format!("team-{team:02}")).join(format!("app-{app:06}.yaml"));
        if let Some(parent) = path.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            eprintln!("cannot create {}: {e}", parent.display());
            return std::process::ExitCode::FAILURE;
        }
        if let Err(e) = std::fs::write(&path, app_yaml(app)) {
            eprintln!("cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    println!("wrote {} objects in {apps} files under {}", apps * 4, dir.display());
    std::process::ExitCode::SUCCESS
}

fn app_yaml(app: usize) -> String {
    let name = format!("svc-{app:06}");
    let breach = app.is_multiple_of(10);
    let mut y = String::new();
    let ns = if breach && app.is_multiple_of(20) { "default".to_string() } else { name.clone() };
    let _ = write!(
        y,
        "# Generated app {app}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: shop\nspec:\n"
    );
    if breach {
        y.push_str("  replicas: 3\n");
    }
    let _ = write!(
        y,
        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {name}\n      annotations:\n        prometheus.io/scrape: \"true\"\n    spec:\n      serviceAccountName: {name}\n      containers:\n        - name: app\n          image: registry.example.com/{name}:{}.{}.{}\n          args: [\"--port=8080\", \"--metrics-port=9090\"]\n          ports:\n            - containerPort: 8080\n              name: http\n          env:\n            - name: LOG_LEVEL\n              value: info\n            - name: DATABASE_HOST\n              value: db.{name}.svc.cluster.local\n            - name: DATABASE_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: {name}-db\n                  key: password\n          resources:\n            requests:\n              cpu: {}m\n              memory: {}Mi\n            limits:\n              memory: {}Mi\n          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n            periodSeconds: 10\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n            periodSeconds: 20\n",
        1 + app % 3,
        app % 17,
        app % 5,
        100 + (app % 8) * 50,
        128 + (app % 4) * 128,
        128 + (app % 4) * 128 * if breach { 2 } else { 1 },
    );
    let _ = write!(
        y,
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: {name}\nspec:\n  selector:\n    app.kubernetes.io/name: {name}\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: {name}\ndata:\n  FEATURE_FLAGS: \"checkout,search\"\n  CACHE_TTL: \"300\"\n  application.yaml: |\n    server:\n      port: 8080\n    upstream:\n      url: http://inventory.{name}.svc\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: {name}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: {name}\n  minReplicas: 2\n  maxReplicas: 10\n  metrics:\n    - type: Resource\n      resource:\n        name: cpu\n        target:\n          type: Utilization\n          averageUtilization: 70\n"
    );
    y
}
