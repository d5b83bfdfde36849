//! What a change costs: for each environment, the CPU and memory its workloads request (each pod's requests ×
//! its replicas; between `minReplicas` and `maxReplicas` when an autoscaler owns the count), base against head.
//! Pure: computed from the objects both sides rendered.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::engine::CheckedObject;
use crate::model::{ContainerRole, Object};
use crate::quantity::parse_quantity;
use crate::yaml::Node;

/// Requested resources of one environment: a range, since an autoscaler moves the replica count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// Millicores, at the fewest and the most replicas.
    pub cpu: (i128, i128),
    /// Bytes (in thousandths, as `Quantity` keeps them), at the fewest and the most replicas.
    pub memory: (i128, i128),
}

/// One environment whose requests the change moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentCost {
    /// The render unit, and its environment when it has several.
    pub unit: String,
    pub environment: Option<String>,
    pub base: Requests,
    pub head: Requests,
}

/// The environments whose requested resources differ between the sides, in order.
pub fn costs(base: &[CheckedObject], head: &[CheckedObject]) -> Vec<EnvironmentCost> {
    let base = by_environment(base);
    let head = by_environment(head);
    let mut keys: Vec<&(String, Option<String>)> = base.keys().chain(head.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (b, h) = (base.get(key).copied().unwrap_or_default(), head.get(key).copied().unwrap_or_default());
            (b != h).then(|| EnvironmentCost { unit: key.0.clone(), environment: key.1.clone(), base: b, head: h })
        })
        .collect()
}

/// What an autoscaler scales: (unit, environment, `namespace/kind`, name).
type Target = (String, Option<String>, String, String);

fn by_environment(objects: &[CheckedObject]) -> BTreeMap<(String, Option<String>), Requests> {
    // Autoscalers first: (unit, environment, namespace, kind, name) → (min, max) replicas.
    let mut scaled: BTreeMap<Target, (i128, i128)> = BTreeMap::new();
    for o in objects {
        let Some(object) = Object::from_root(&o.node) else { continue };
        let Some(spec) = o.node.get("spec") else { continue };
        let range = match (object.group(), object.kind) {
            ("autoscaling", "HorizontalPodAutoscaler") => {
                Some((int(spec.get("minReplicas")).unwrap_or(1), int(spec.get("maxReplicas")).unwrap_or(1)))
            }
            ("keda.sh", "ScaledObject") => {
                Some((int(spec.get("minReplicaCount")).unwrap_or(0), int(spec.get("maxReplicaCount")).unwrap_or(100)))
            }
            _ => None,
        };
        let Some((min, max)) = range else { continue };
        let target = spec.get("scaleTargetRef");
        let kind = target.and_then(|t| t.get("kind")).and_then(Node::as_text).unwrap_or("Deployment");
        let Some(name) = target.and_then(|t| t.get("name")).and_then(Node::as_text) else { continue };
        let namespace = o.id.namespace.clone().unwrap_or_default();
        scaled.insert(
            (o.unit.clone(), o.environment.clone(), format!("{namespace}/{kind}"), name.to_string()),
            (min, max.max(min)),
        );
    }
    let mut out: BTreeMap<(String, Option<String>), Requests> = BTreeMap::new();
    for o in objects {
        let Some(object) = Object::from_root(&o.node) else { continue };
        let replicas = if object.is_scalable_workload() {
            let namespace = o.id.namespace.clone().unwrap_or_default();
            let key =
                (o.unit.clone(), o.environment.clone(), format!("{namespace}/{}", object.kind), o.id.name.clone());
            match scaled.get(&key) {
                Some(range) => *range,
                None => {
                    let n = int(o.node.get_path(&["spec", "replicas"])).unwrap_or(1);
                    (n, n)
                }
            }
        } else if object.kind == "Pod" {
            (1, 1)
        } else {
            // DaemonSets (one per node), Jobs and CronJobs (they come and go): not a steady count.
            continue;
        };
        let Some(pod) = object.pod_spec() else { continue };
        let (mut cpu, mut memory) = (0i128, 0i128);
        for container in pod.containers().iter().filter(|c| c.role != ContainerRole::Init) {
            let requests = container.get("resources").and_then(|r| r.get("requests"));
            let quantity = |key: &str| {
                requests.and_then(|r| r.get(key)).and_then(Node::as_text).and_then(parse_quantity).map(|q| q.millis())
            };
            cpu += quantity("cpu").unwrap_or(0);
            memory += quantity("memory").unwrap_or(0);
        }
        let total = out.entry((o.unit.clone(), o.environment.clone())).or_default();
        total.cpu.0 += cpu * replicas.0;
        total.cpu.1 += cpu * replicas.1;
        total.memory.0 += memory * replicas.0;
        total.memory.1 += memory * replicas.1;
    }
    out
}

fn int(node: Option<&Node>) -> Option<i128> {
    node.and_then(Node::as_int).filter(|n| *n >= 0)
}

/// The summary's table: one row per environment, CPU and memory base → head with the difference.
pub fn table(costs: &[EnvironmentCost], max_rows: usize) -> String {
    if costs.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n#### What the change requests\n\nCPU and memory requested by each environment's workloads (requests × replicas; a range when an \
         autoscaler owns the count):\n\n| Environment | CPU | Memory |\n|---|---|---|\n",
    );
    for cost in costs.iter().take(max_rows) {
        let name = match &cost.environment {
            Some(env) => env.clone(),
            None => cost.unit.clone(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            name.replace(['`', '|', '\n'], " "),
            change(cost.base.cpu, cost.head.cpu, cores),
            change(cost.base.memory, cost.head.memory, bytes)
        );
    }
    if costs.len() > max_rows {
        let _ = writeln!(out, "\n…and {} more environments.", costs.len() - max_rows);
    }
    out
}

fn change(base: (i128, i128), head: (i128, i128), unit: fn(i128) -> String) -> String {
    let range = |(a, b): (i128, i128)| if a == b { unit(a) } else { format!("{}–{}", unit(a), unit(b)) };
    if base == head {
        return range(head);
    }
    let delta = |a: i128, b: i128| {
        let d = b - a;
        if d >= 0 { format!("+{}", unit(d)) } else { format!("−{}", unit(-d)) }
    };
    let diff = if base.0 == base.1 && head.0 == head.1 {
        delta(base.0, head.0)
    } else {
        format!("{}…{}", delta(base.0, head.0), delta(base.1, head.1))
    };
    format!("{} → {} ({diff})", range(base), range(head))
}

/// Millicores as cores (`1.5`) or millicores (`250m`).
fn cores(millis: i128) -> String {
    if millis % 1000 == 0 {
        format!("{}", millis / 1000)
    } else if millis < 1000 {
        format!("{millis}m")
    } else {
        format!("{:.2}", millis as f64 / 1000.0).trim_end_matches('0').to_string()
    }
}

/// Thousandths of a byte as Mi/Gi.
fn bytes(milli_bytes: i128) -> String {
    let b = milli_bytes / 1000;
    const MI: i128 = 1 << 20;
    const GI: i128 = 1 << 30;
    if b >= GI && b % (GI / 4) == 0 {
        format!("{}Gi", b as f64 / GI as f64)
    } else if b >= MI {
        format!("{}Mi", b / MI)
    } else {
        format!("{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::ObjectId;

    fn object(unit: &str, env: &str, yaml: &str) -> CheckedObject {
        let node = crate::yaml::parse_single(yaml).expect("yaml").expect("a document");
        let o = Object::from_root(&node).expect("an object");
        let id: ObjectId = o.id();
        CheckedObject { id, unit: unit.into(), environment: Some(env.into()), node, secret_routes: Vec::new() }
    }

    fn deployment(name: &str, replicas: u32, cpu: &str, memory: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n        - name: app\n          resources:\n            requests: {{cpu: {cpu}, memory: {memory}}}\n"
        )
    }

    #[test]
    fn requests_times_replicas_per_environment() {
        let base = vec![object("charts/web", "prod", &deployment("web", 2, "500m", "512Mi"))];
        let head = vec![object("charts/web", "prod", &deployment("web", 3, "500m", "1Gi"))];
        let costs = costs(&base, &head);
        assert_eq!(costs.len(), 1);
        assert_eq!(costs[0].base.cpu, (1000, 1000));
        assert_eq!(costs[0].head.cpu, (1500, 1500));
        let table = table(&costs, 20);
        assert!(table.contains("| `prod` | 1 → 1.5 (+500m) | 1Gi → 3Gi (+2Gi) |"), "{table}");
    }

    #[test]
    fn an_autoscaled_workload_counts_from_min_to_max_replicas() {
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 2\n  maxReplicas: 8\n";
        let base = vec![object("u", "prod", &deployment("web", 1, "250m", "256Mi")), object("u", "prod", hpa)];
        let head = vec![object("u", "prod", &deployment("web", 1, "500m", "256Mi")), object("u", "prod", hpa)];
        let costs = costs(&base, &head);
        assert_eq!(costs[0].base.cpu, (500, 2000));
        assert_eq!(costs[0].head.cpu, (1000, 4000));
        assert!(table(&costs, 20).contains("500m–2 → 1–4 (+500m…+2)"), "{}", table(&costs, 20));
    }

    #[test]
    fn unchanged_environments_are_not_listed() {
        let same = vec![object("u", "prod", &deployment("web", 2, "1", "1Gi"))];
        assert!(costs(&same, &same).is_empty());
        assert_eq!(table(&[], 20), "");
    }
}
