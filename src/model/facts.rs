//! Cross-object facts: the small part of each object that rules spanning several objects need
//! (autoscaler targets, replica counts, requests, referenced Secrets). Extracted while a file's tree is
//! in memory, so the trees themselves can be dropped: memory follows the largest file, not the corpus.

use std::collections::HashMap;
use std::sync::Arc;

use crate::finding::ObjectId;
use crate::model::{ContainerRole, Object, PodSpec};
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
    /// The app's display name (see [`Object::app_name`]).
    pub app: Option<String>,
    /// Every name tying the object to an app (see [`Object::app_keys`]).
    pub app_keys: Vec<String>,
    /// Rules ignored through the `kpath/ignore` annotation.
    pub ignored_rules: Vec<String>,
    /// The Helm environment render this object came from (`release/env`); `None` for plain files
    /// and renders without environments. Objects of different environments never relate.
    pub scope: Option<Arc<str>>,
    /// Boxed: most objects are not workloads, and facts are kept for every object.
    pub workload: Option<Box<WorkloadFacts>>,
    pub scaler: Option<Box<ScalerFacts>>,
    /// Keys of a Secret's `data`/`stringData` or a ConfigMap's `data`, for `envFrom` lookups.
    pub data_keys: Vec<String>,
    /// What a CustomResourceDefinition defines (boxed: few objects are definitions).
    pub crd: Option<Box<CrdFacts>>,
    /// Context only: an unchanged object a review reads beside the checked ones. A finding about a relation
    /// goes on a checked object when the rule can choose.
    pub context: bool,
}

/// The kind a CustomResourceDefinition adds, and whether it is cluster-scoped (`spec.scope: Cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdFacts {
    pub group: String,
    pub kind: String,
    pub cluster_scoped: bool,
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
    /// Resources (`cpu`, `memory`, …) requested at pod level (`spec.resources`, a request or a limit).
    /// The HPA uses a pod-level request in place of the containers' when one is set.
    pub pod_requests: Vec<String>,
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

impl ScalerKind {
    /// How findings name an autoscaler of this kind.
    pub fn label(self) -> &'static str {
        match self {
            ScalerKind::Hpa => "HorizontalPodAutoscaler",
            ScalerKind::Keda => "KEDA ScaledObject",
        }
    }
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
    /// The same metrics as `utilization`, with the container a metric is limited to (an HPA
    /// `containerResource` metric, a KEDA trigger's `metadata.containerName`).
    pub utilization_targets: Vec<UtilizationTarget>,
}

/// One utilization metric of an autoscaler.
#[derive(Debug, Clone)]
pub struct UtilizationTarget {
    /// `cpu` or `memory`.
    pub resource: String,
    /// Only this container's request counts; `None` means every container of the pod.
    pub container: Option<String>,
    /// The metric (HPA) or trigger (KEDA).
    pub place: Place,
}

/// Extracts the facts of one object.
pub fn extract(object: &Object<'_>, file: &Arc<str>, document: usize) -> ObjectFacts {
    extract_with_pod(object, object.pod_spec().as_ref(), file, document)
}

/// Like [`extract`], reusing a pod spec that was already read.
pub fn extract_with_pod(
    object: &Object<'_>,
    pod: Option<&PodSpec<'_>>,
    file: &Arc<str>,
    document: usize,
) -> ObjectFacts {
    let place = |route: Route| {
        let (pos, _) = route.locate(object.root);
        Place { file: file.clone(), document, pos, route }
    };
    let ignored_rules = object
        .annotation("kpath/ignore")
        .map(|s| s.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect())
        .unwrap_or_default();
    let workload = pod.map(|pod| {
        let containers = pod
            .containers()
            .iter()
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
        let pod_requests = pod
            .get("resources")
            .map(|r| {
                ["requests", "limits"]
                    .iter()
                    .flat_map(|k| r.get(k).map(Node::entries).unwrap_or_default())
                    .filter(|e| !e.value.is_null())
                    .filter_map(|e| e.key.as_key().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        WorkloadFacts {
            replicas,
            scalable: object.is_scalable_workload(),
            containers,
            env_from,
            secret_refs,
            pod_requests,
        }
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
        app_keys: object.app_keys().into_iter().map(str::to_string).collect(),
        ignored_rules,
        scope: None,
        workload: workload.map(Box::new),
        scaler: scaler_facts(object, &place).map(Box::new),
        data_keys,
        crd: crd_facts(object).map(Box::new),
        context: false,
    }
}

/// `spec.group`, `spec.names.kind` and `spec.scope` of a CustomResourceDefinition.
fn crd_facts(object: &Object<'_>) -> Option<CrdFacts> {
    if (object.group(), object.kind) != ("apiextensions.k8s.io", "CustomResourceDefinition") {
        return None;
    }
    let spec = object.root.get("spec")?;
    Some(CrdFacts {
        group: spec.get("group").and_then(Node::as_text)?.to_string(),
        kind: spec.get_path(&["names", "kind"]).and_then(Node::as_text)?.to_string(),
        cluster_scoped: spec.get("scope").and_then(Node::as_text) == Some("Cluster"),
    })
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
    let mut utilization_targets = Vec::new();
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
                    let metric_place = place(Route::root().key("spec").key("metrics").index(i));
                    let container = (field == "containerResource")
                        .then(|| res.and_then(|r| r.get("container")).and_then(Node::as_text).map(str::to_string))
                        .flatten();
                    utilization_targets.push(UtilizationTarget {
                        resource: name.to_string(),
                        container,
                        place: metric_place.clone(),
                    });
                    utilization.push((name.to_string(), metric_place));
                }
            }
            // autoscaling/v1: targetCPUUtilizationPercentage.
            if spec.and_then(|s| s.get("targetCPUUtilizationPercentage")).is_some() {
                let metric_place = place(Route::root().key("spec").key("targetCPUUtilizationPercentage"));
                utilization_targets.push(UtilizationTarget {
                    resource: "cpu".to_string(),
                    container: None,
                    place: metric_place.clone(),
                });
                utilization.push(("cpu".to_string(), metric_place));
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
                    let trigger_place = place(Route::root().key("spec").key("triggers").index(i));
                    let container = trigger
                        .get_path(&["metadata", "containerName"])
                        .and_then(Node::as_text)
                        .filter(|c| !c.is_empty())
                        .map(str::to_string);
                    utilization_targets.push(UtilizationTarget {
                        resource: ty.to_string(),
                        container,
                        place: trigger_place.clone(),
                    });
                    utilization.push((ty.to_string(), trigger_place));
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
        utilization_targets,
    })
}

/// Can these objects be in one namespace? Yes when both are known and equal, or when either is unknown (none
/// written, none configured: it is decided when the file is applied).
fn may_share_namespace(a: &ObjectFacts, b: &ObjectFacts, default_namespace: Option<&str>) -> bool {
    match (a.id.namespace.as_deref().or(default_namespace), b.id.namespace.as_deref().or(default_namespace)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// The directory of a file path (`` for a file at the top).
fn dir_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The facts of every object checked together, for rules that span objects, indexed by kind and
/// name so that cross-object lookups stay linear in the number of objects.
#[derive(Debug, Default)]
pub struct Facts {
    pub objects: Vec<ObjectFacts>,
    by_name: HashMap<(String, String), Vec<usize>>,
    /// Objects of render units that were not rendered may exist (a review renders only the affected units):
    /// a plain file's object missing its counterpart may have it there, so rules do not conclude it is absent.
    pub partial: bool,
}

impl ObjectFacts {
    /// The same facts for the same object in another file (every place of it moves).
    pub fn move_to(&mut self, file: &Arc<str>) {
        let mut places: Vec<&mut Place> = vec![&mut self.place];
        if let Some(w) = self.workload.as_deref_mut() {
            places.extend(w.replicas.as_mut());
            places.extend(w.containers.iter_mut().map(|c| &mut c.place));
            places.extend(w.env_from.iter_mut().map(|e| &mut e.place));
        }
        if let Some(s) = self.scaler.as_deref_mut() {
            places.push(&mut s.target_place);
            places.extend(s.utilization.iter_mut().map(|(_, p)| p));
            places.extend(s.utilization_targets.iter_mut().map(|u| &mut u.place));
        }
        for place in places {
            place.file = file.clone();
        }
    }

    /// Can these two objects relate? Only within one environment's render, or with plain files.
    pub fn same_scope(&self, other: &ObjectFacts) -> bool {
        match (&self.scope, &other.scope) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

impl Facts {
    pub fn new(objects: Vec<ObjectFacts>) -> Facts {
        let mut by_name: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            by_name.entry((o.id.kind.clone(), o.id.name.clone())).or_default().push(i);
        }
        Facts { objects, by_name, partial: false }
    }

    /// Objects of this kind and name, in any namespace.
    pub fn named<'a>(&'a self, kind: &str, name: &str) -> impl Iterator<Item = &'a ObjectFacts> + 'a {
        self.by_name
            .get(&(kind.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|&i| self.objects.get(i))
    }

    /// Every autoscaler (HPA or KEDA ScaledObject) with its scaler facts.
    pub fn scalers(&self) -> impl Iterator<Item = (&ObjectFacts, &ScalerFacts)> {
        self.objects.iter().filter_map(|o| Some((o, o.scaler.as_deref()?)))
    }

    /// Every autoscaler paired with each object it may target (see [`Facts::scale_targets`]).
    pub fn scaled_targets<'a>(
        &'a self,
        default_namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjectFacts, &'a ScalerFacts, &'a ObjectFacts)> + 'a {
        self.scalers().flat_map(move |(scaler_obj, scaler)| {
            self.scale_targets(scaler_obj, scaler, default_namespace).into_iter().map(move |t| (scaler_obj, scaler, t))
        })
    }

    /// Does any object of the autoscaler's target kind and name exist that it could target, in any directory?
    /// (For "the target is missing": where deployment together is unknown, any candidate is enough.)
    pub fn any_scale_target(
        &self,
        scaler_obj: &ObjectFacts,
        scaler: &ScalerFacts,
        default_namespace: Option<&str>,
    ) -> bool {
        self.named(&scaler.target_kind, &scaler.target_name)
            .any(|o| o.same_scope(scaler_obj) && may_share_namespace(o, scaler_obj, default_namespace))
    }

    /// Every object an autoscaler may target: same kind and name, in a namespace that can be the
    /// autoscaler's. An unset namespace is taken to be `default_namespace` (the deploy tool's
    /// destination) and, when that is unknown too, could be any namespace, so it matches.
    pub fn scale_targets(
        &self,
        scaler_obj: &ObjectFacts,
        scaler: &ScalerFacts,
        default_namespace: Option<&str>,
    ) -> Vec<&ObjectFacts> {
        let both_known = |o: &ObjectFacts| {
            o.id.namespace.as_deref().or(default_namespace).is_some()
                && scaler_obj.id.namespace.as_deref().or(default_namespace).is_some()
        };
        let candidates: Vec<&ObjectFacts> = self
            .named(&scaler.target_kind, &scaler.target_name)
            .filter(|o| o.same_scope(scaler_obj) && may_share_namespace(o, scaler_obj, default_namespace))
            // Two plain files whose namespace is decided when they are applied: deployed together only as far as
            // anything says so, which is their being in one directory (`kubectl apply -f DIR`). A same-named
            // workload of another app elsewhere in the repository is not the target.
            .filter(|o| {
                both_known(o)
                    || o.scope.is_some()
                    || scaler_obj.scope.is_some()
                    || dir_of(&o.place.file) == dir_of(&scaler_obj.place.file)
            })
            .collect();
        // The target deployed with the autoscaler (same render, or both plain files) when there is one: a
        // plain file's autoscaler pairs with a render's workload only when the plain files do not hold its
        // target (a chart's committed render beside the chart is not applied with every environment of it).
        let own: Vec<&ObjectFacts> = candidates.iter().copied().filter(|o| o.scope == scaler_obj.scope).collect();
        if own.is_empty() { candidates } else { own }
    }
}
