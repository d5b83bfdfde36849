//! The autoscaler fact the HPA and KEDA rules share: what an HPA or ScaledObject scales and on which
//! utilization metrics, and which checked objects it may target.

use compact_str::CompactString;

use crate::model::facts::{Fact, FactKind, Facts, ObjectFacts, Spot};
use crate::model::{Object, PodSpec};
use crate::yaml::{Node, Route};

pub static SCALER: FactKind = FactKind::of::<Scaler>("scaler");

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

/// An HPA's or KEDA ScaledObject's target and utilization metrics.
#[derive(Debug, Clone)]
pub struct Scaler {
    pub kind: ScalerKind,
    pub target_kind: CompactString,
    pub target_name: CompactString,
    /// Place of `scaleTargetRef`.
    pub target: Spot,
    /// Metrics on the utilization of a resource's request.
    pub utilization: Vec<Utilization>,
}

/// One utilization metric of an autoscaler.
#[derive(Debug, Clone)]
pub struct Utilization {
    /// `cpu` or `memory`.
    pub resource: CompactString,
    /// Only this container's request counts (an HPA `containerResource` metric, a KEDA trigger's
    /// `metadata.containerName`); `None` means every container of the pod.
    pub container: Option<CompactString>,
    /// The metric (HPA) or trigger (KEDA).
    pub at: Spot,
}

impl Fact for Scaler {
    fn read(object: &Object<'_>, _: Option<&PodSpec<'_>>) -> Option<Scaler> {
        let kind = match (object.group(), object.kind) {
            ("autoscaling", "HorizontalPodAutoscaler") => ScalerKind::Hpa,
            ("keda.sh" | "keda.k8s.io", "ScaledObject") => ScalerKind::Keda,
            _ => return None,
        };
        let target_route = Route::root().key("spec").key("scaleTargetRef");
        let target = target_route.resolve(object.root)?;
        let target_name = target.get("name").and_then(Node::as_text)?.into();
        // KEDA defaults the target kind to Deployment; HPA requires it.
        let target_kind = target.get("kind").and_then(Node::as_text).unwrap_or("Deployment").into();
        let utilization = match kind {
            ScalerKind::Hpa => hpa_utilization(object),
            ScalerKind::Keda => keda_utilization(object),
        };
        Some(Scaler { kind, target_kind, target_name, target: Spot::of(object, target_route), utilization })
    }
}

fn hpa_utilization(object: &Object<'_>) -> Vec<Utilization> {
    let mut out = Vec::new();
    let spec = object.root.get("spec");
    let metrics = spec.and_then(|s| s.get("metrics")).map(Node::items).unwrap_or_default();
    for (i, metric) in metrics.iter().enumerate() {
        let Some(field) = ["resource", "containerResource"].into_iter().find(|f| metric.get(f).is_some()) else {
            continue;
        };
        let res = metric.get(field);
        let name = res.and_then(|r| r.get("name")).and_then(Node::as_text);
        // autoscaling/v2 `target.type`, v2beta1 `targetAverageUtilization`.
        let is_util = res.and_then(|r| r.get_path(&["target", "type"])).and_then(Node::as_text) == Some("Utilization")
            || res.and_then(|r| r.get("targetAverageUtilization")).is_some();
        if let (Some(name), true) = (name, is_util) {
            let container = (field == "containerResource")
                .then(|| res.and_then(|r| r.get("container")).and_then(Node::as_text).map(CompactString::from))
                .flatten();
            let at = Spot::of(object, Route::root().key("spec").key("metrics").index(i));
            out.push(Utilization { resource: name.into(), container, at });
        }
    }
    // autoscaling/v1: targetCPUUtilizationPercentage.
    if spec.and_then(|s| s.get("targetCPUUtilizationPercentage")).is_some() {
        let at = Spot::of(object, Route::root().key("spec").key("targetCPUUtilizationPercentage"));
        out.push(Utilization { resource: "cpu".into(), container: None, at });
    }
    out
}

fn keda_utilization(object: &Object<'_>) -> Vec<Utilization> {
    let mut out = Vec::new();
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
            let container = trigger
                .get_path(&["metadata", "containerName"])
                .and_then(Node::as_text)
                .filter(|c| !c.is_empty())
                .map(CompactString::from);
            let at = Spot::of(object, Route::root().key("spec").key("triggers").index(i));
            out.push(Utilization { resource: ty.into(), container, at });
        }
    }
    out
}

/// Can these objects be in one namespace? Yes when both are known and equal, or when either is unknown (none
/// written, none configured: it is decided when the file is applied).
fn may_share_namespace(a: &ObjectFacts, b: &ObjectFacts, default_namespace: Option<&str>) -> bool {
    match (a.namespace.as_deref().or(default_namespace), b.namespace.as_deref().or(default_namespace)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// The directory of a file path (`` for a file at the top).
fn dir_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Every autoscaler with its fact.
pub fn scalers(facts: &Facts) -> impl Iterator<Item = (&ObjectFacts, &Scaler)> {
    facts.with::<Scaler>()
}

/// Every autoscaler paired with each object it may target (see [`targets`]).
pub fn scaled_targets<'a>(
    facts: &'a Facts,
    default_namespace: Option<&'a str>,
) -> impl Iterator<Item = (&'a ObjectFacts, &'a Scaler, &'a ObjectFacts)> + 'a {
    scalers(facts).flat_map(move |(scaler_obj, scaler)| {
        targets(facts, scaler_obj, scaler, default_namespace).into_iter().map(move |t| (scaler_obj, scaler, t))
    })
}

/// Does any object of the autoscaler's target kind and name exist that it could target, in any directory?
/// (For "the target is missing": where deployment together is unknown, any candidate is enough.)
pub fn any_target(facts: &Facts, scaler_obj: &ObjectFacts, scaler: &Scaler, default_namespace: Option<&str>) -> bool {
    facts
        .named(&scaler.target_kind, &scaler.target_name)
        .any(|o| o.same_scope(scaler_obj) && may_share_namespace(o, scaler_obj, default_namespace))
}

/// Every object an autoscaler may target: same kind and name, in a namespace that can be the autoscaler's.
/// An unset namespace is taken to be `default_namespace` (the deploy tool's destination) and, when that is
/// unknown too, could be any namespace, so it matches.
pub fn targets<'a>(
    facts: &'a Facts,
    scaler_obj: &ObjectFacts,
    scaler: &Scaler,
    default_namespace: Option<&str>,
) -> Vec<&'a ObjectFacts> {
    let both_known = |o: &ObjectFacts| {
        o.namespace.as_deref().or(default_namespace).is_some()
            && scaler_obj.namespace.as_deref().or(default_namespace).is_some()
    };
    let candidates: Vec<&ObjectFacts> = facts
        .named(&scaler.target_kind, &scaler.target_name)
        .filter(|o| o.same_scope(scaler_obj) && may_share_namespace(o, scaler_obj, default_namespace))
        // Two plain files whose namespace is decided when they are applied: deployed together only as far as
        // anything says so, which is their being in one directory (`kubectl apply -f DIR`). A same-named
        // workload of another app elsewhere in the repository is not the target.
        .filter(|o| {
            both_known(o)
                || o.scope.is_some()
                || scaler_obj.scope.is_some()
                || dir_of(&o.file) == dir_of(&scaler_obj.file)
        })
        .collect();
    // The target deployed with the autoscaler (same render, or both plain files) when there is one: a plain
    // file's autoscaler pairs with a render's workload only when the plain files do not hold its target (a
    // chart's committed render beside the chart is not applied with every environment of it).
    let own: Vec<&ObjectFacts> = candidates.iter().copied().filter(|o| o.scope == scaler_obj.scope).collect();
    if own.is_empty() { candidates } else { own }
}
