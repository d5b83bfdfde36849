//! Cross-object facts: the small part of each object that rules spanning several objects need
//! (autoscaler targets, replica counts, requests, referenced Secrets). Extracted while a file's tree is
//! in memory, so the trees themselves can be dropped: memory follows the largest file, not the corpus.

use std::sync::Arc;

use crate::finding::ObjectId;
use crate::model::{ContainerRole, Object};
use crate::yaml::{Node, Pos, Route};

/// A place in a file, already resolved, for findings raised after the tree is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: Arc<str>,
    pub document: usize,
    pub pos: Pos,
    pub route: Route,
}

#[derive(Debug, Clone)]
pub struct ObjectFacts {
    pub id: ObjectId,
    /// Where the object starts (its `kind:` line).
    pub place: Place,
    /// `app.kubernetes.io/name`, `app` label, or the workload's name.
    pub app: Option<String>,
    /// Rules ignored through the `kpath/ignore` annotation.
    pub ignored_rules: Vec<String>,
    pub workload: Option<WorkloadFacts>,
    pub scaler: Option<ScalerFacts>,
    /// Keys of a Secret's `data`/`stringData` or a ConfigMap's `data`, for `envFrom` lookups.
    pub data_keys: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct WorkloadFacts {
    /// `spec.replicas` when written (its key's place).
    pub replicas: Option<Place>,
    pub scalable: bool,
    pub containers: Vec<ContainerFacts>,
    /// `envFrom` references of all containers.
    pub env_from: Vec<EnvFromRef>,
    /// Secrets referenced anywhere in the pod (env, envFrom, volumes, imagePullSecrets).
    pub secret_refs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ContainerFacts {
    pub name: String,
    pub role: ContainerRole,
    pub place: Place,
    /// Effective requests: an explicit request, or a limit (which sets the request when it is absent).
    pub requests_cpu: bool,
    pub requests_memory: bool,
}

#[derive(Debug, Clone)]
pub struct EnvFromRef {
    /// `Secret` or `ConfigMap`.
    pub kind: &'static str,
    pub name: String,
    pub place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalerKind {
    Hpa,
    Keda,
}

#[derive(Debug, Clone)]
pub struct ScalerFacts {
    pub kind: ScalerKind,
    pub target_api_version: Option<String>,
    pub target_kind: String,
    pub target_name: String,
    /// Place of `scaleTargetRef`.
    pub target_place: Place,
    /// Resources scaled on by utilization (`cpu`, `memory`), each with the place of its metric/trigger.
    pub utilization: Vec<(String, Place)>,
}

/// Extracts the facts of one object.
pub fn extract(object: &Object<'_>, file: &Arc<str>, document: usize) -> ObjectFacts {
    let place = |route: Route| {
        let (pos, _) = route.locate(object.root);
        Place { file: file.clone(), document, pos, route }
    };
    let ignored_rules = object
        .annotation("kpath/ignore")
        .map(|s| s.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect())
        .unwrap_or_default();
    let workload = object.pod_spec().map(|pod| {
        let containers = pod
            .containers()
            .into_iter()
            .map(|c| {
                let has = |res: &str| {
                    ["requests", "limits"]
                        .iter()
                        .any(|k| c.node.get_path(&["resources", k, res]).is_some_and(|n| !n.is_null()))
                };
                ContainerFacts {
                    name: c.name.to_string(),
                    role: c.role,
                    place: place(c.route.clone()),
                    requests_cpu: has("cpu"),
                    requests_memory: has("memory"),
                }
            })
            .collect();
        let mut env_from = Vec::new();
        let mut secret_refs = Vec::new();
        for c in pod.containers() {
            for (i, source) in c.node.get("envFrom").map(Node::items).unwrap_or_default().iter().enumerate() {
                for (field, kind) in [("secretRef", "Secret"), ("configMapRef", "ConfigMap")] {
                    if let Some(name) = source.get_path(&[field, "name"]).and_then(Node::as_text) {
                        env_from.push(EnvFromRef {
                            kind,
                            name: name.to_string(),
                            place: place(c.route.key("envFrom").index(i)),
                        });
                        if kind == "Secret" {
                            secret_refs.push(name.to_string());
                        }
                    }
                }
            }
            for env in c.node.get("env").map(Node::items).unwrap_or_default() {
                if let Some(name) = env.get_path(&["valueFrom", "secretKeyRef", "name"]).and_then(Node::as_text) {
                    secret_refs.push(name.to_string());
                }
            }
        }
        for vol in pod.get("volumes").map(Node::items).unwrap_or_default() {
            if let Some(name) = vol.get_path(&["secret", "secretName"]).and_then(Node::as_text) {
                secret_refs.push(name.to_string());
            }
        }
        for s in pod.get("imagePullSecrets").map(Node::items).unwrap_or_default() {
            if let Some(name) = s.get("name").and_then(Node::as_text) {
                secret_refs.push(name.to_string());
            }
        }
        secret_refs.sort();
        secret_refs.dedup();
        let replicas =
            object.root.get_path(&["spec", "replicas"]).map(|_| place(Route::root().key("spec").key("replicas")));
        WorkloadFacts { replicas, scalable: object.is_scalable_workload(), containers, env_from, secret_refs }
    });
    let data_keys = match (object.group(), object.kind) {
        ("", "Secret") => ["data", "stringData"]
            .iter()
            .flat_map(|f| object.root.get(f).map(Node::entries).unwrap_or_default())
            .filter_map(|e| e.key.as_key().map(str::to_string))
            .collect(),
        ("", "ConfigMap") => object
            .root
            .get("data")
            .map(Node::entries)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.key.as_key().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    ObjectFacts {
        id: object.id(),
        place: place(Route::root().key("kind")),
        app: object.app_name().map(str::to_string),
        ignored_rules,
        workload,
        scaler: scaler_facts(object, &place),
        data_keys,
    }
}

fn scaler_facts(object: &Object<'_>, place: &dyn Fn(Route) -> Place) -> Option<ScalerFacts> {
    let kind = match (object.group(), object.kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => ScalerKind::Hpa,
        ("keda.sh" | "keda.k8s.io", "ScaledObject") => ScalerKind::Keda,
        _ => return None,
    };
    let target_route = Route::root().key("spec").key("scaleTargetRef");
    let target = target_route.resolve(object.root)?;
    let target_name = target.get("name").and_then(Node::as_text)?.to_string();
    // KEDA defaults the target kind to Deployment; HPA requires it.
    let target_kind = target.get("kind").and_then(Node::as_text).unwrap_or("Deployment").to_string();
    let target_api_version = target.get("apiVersion").and_then(Node::as_text).map(str::to_string);
    let mut utilization = Vec::new();
    match kind {
        ScalerKind::Hpa => {
            let spec = object.root.get("spec");
            for (i, metric) in
                spec.and_then(|s| s.get("metrics")).map(Node::items).unwrap_or_default().iter().enumerate()
            {
                let Some(field) = ["resource", "containerResource"].into_iter().find(|f| metric.get(f).is_some())
                else {
                    continue;
                };
                let res = metric.get(field);
                let name = res.and_then(|r| r.get("name")).and_then(Node::as_text);
                // autoscaling/v2 `target.type`, v2beta1 `targetAverageUtilization`.
                let is_util = res.and_then(|r| r.get_path(&["target", "type"])).and_then(Node::as_text)
                    == Some("Utilization")
                    || res.and_then(|r| r.get("targetAverageUtilization")).is_some();
                if let (Some(name), true) = (name, is_util) {
                    utilization.push((name.to_string(), place(Route::root().key("spec").key("metrics").index(i))));
                }
            }
            // autoscaling/v1: targetCPUUtilizationPercentage.
            if spec.and_then(|s| s.get("targetCPUUtilizationPercentage")).is_some() {
                utilization
                    .push(("cpu".to_string(), place(Route::root().key("spec").key("targetCPUUtilizationPercentage"))));
            }
        }
        ScalerKind::Keda => {
            let triggers = object.root.get_path(&["spec", "triggers"]).map(Node::items).unwrap_or_default();
            for (i, trigger) in triggers.iter().enumerate() {
                let ty = trigger.get("type").and_then(Node::as_text).unwrap_or("");
                if !matches!(ty, "cpu" | "memory") {
                    continue;
                }
                let metric_type = trigger
                    .get("metricType")
                    .or_else(|| trigger.get_path(&["metadata", "type"]))
                    .and_then(Node::as_text)
                    .unwrap_or("Utilization");
                if metric_type == "Utilization" {
                    utilization.push((ty.to_string(), place(Route::root().key("spec").key("triggers").index(i))));
                }
            }
        }
    }
    Some(ScalerFacts {
        kind,
        target_api_version,
        target_kind,
        target_name,
        target_place: place(target_route),
        utilization,
    })
}

/// The facts of every object checked together, for rules that span objects.
#[derive(Debug, Default)]
pub struct Facts {
    pub objects: Vec<ObjectFacts>,
}

impl Facts {
    /// Finds the workload an autoscaler targets: same namespace, same kind and name.
    pub fn scale_target(&self, scaler_obj: &ObjectFacts, scaler: &ScalerFacts) -> Option<&ObjectFacts> {
        self.objects.iter().find(|o| {
            o.workload.is_some()
                && o.id.kind == scaler.target_kind
                && o.id.name == scaler.target_name
                && o.id.namespace == scaler_obj.id.namespace
        })
    }
}
