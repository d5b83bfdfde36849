//! `hpa-missing-requests`: an autoscaler scales on CPU or memory utilization that the target's containers
//! do not request, so the utilization cannot be computed.

use compact_str::CompactString;

use super::scale::{self, SCALER, Scaler, Utilization};
use super::{Check, Emitter, Example, Global, GlobalCx, Rule};
use crate::finding::Severity;
use crate::model::facts::{Fact, FactKind, ObjectFacts, Spot};
use crate::model::{ContainerRole, Object, PodSpec};
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "hpa-missing-requests",
    section: "HPA (HorizontalPodAutoscaler)",
    severity: Severity::Error,
    summary: "Autoscaler scales on utilization of a resource a container does not request",
    why: "Utilization is usage divided by request, so an autoscaler that targets CPU or memory \
utilization needs a request to divide by. The HPA controller adds up the requests of every container in \
the pod (native sidecars included, init containers not), and if even one of them has no request for the \
resource it gives up: the HPA reports `FailedGetResourceMetric` and the replica count freezes wherever it \
was, however busy the pods get. KEDA's `cpu` and `memory` triggers create exactly such an HPA and fail the \
same way. A pod-level `spec.resources` request is used instead of the containers' when it is set, unless \
the metric names a single container.",
    fix: "Give every container of the target (sidecars too) a `resources.requests` entry for the resource \
the autoscaler scales on. A limit alone also works, because the API server copies it into the request; if \
one container really should not count, scale on a `containerResource` metric (KEDA: `containerName`) \
that names the main container. Requests that a LimitRange fills in at admission are invisible to kpath; \
if the namespace relies on one, suppress the finding and say so.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "hpa-missing-requests/bad",
        files: &[
            (".kpath.yml", include_str!("../../fixtures/rules/hpa-missing-requests/bad/.kpath.yml")),
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-missing-requests/bad/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-missing-requests/bad/hpa.yaml")),
        ],
    },
    good: Example {
        dir: "hpa-missing-requests/good",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-missing-requests/good/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-missing-requests/good/hpa.yaml")),
        ],
    },
    check: Check::Global(Global { run: check, reads: &[&SCALER, &REQUESTS] }),
};

static REQUESTS: FactKind = FactKind::of::<Requests>("requests");

/// What a workload's pod requests, as an autoscaler's utilization needs it.
#[derive(Debug, Clone)]
struct Requests {
    containers: Vec<ContainerRequests>,
    /// Resources (`cpu`, `memory`, …) requested at pod level (`spec.resources`, a request or a limit). The HPA
    /// uses a pod-level request in place of the containers' when one is set.
    pod: Vec<CompactString>,
}

#[derive(Debug, Clone)]
struct ContainerRequests {
    name: CompactString,
    role: ContainerRole,
    at: Spot,
    /// Effective requests: an explicit request, or a limit (which sets the request when it is absent).
    cpu: bool,
    memory: bool,
}

impl Fact for Requests {
    fn read(object: &Object<'_>, pod: Option<&PodSpec<'_>>) -> Option<Requests> {
        let pod = pod?;
        let containers = pod
            .containers()
            .iter()
            .map(|c| {
                let has = |res: &str| {
                    ["requests", "limits"]
                        .iter()
                        .any(|k| c.node.get_path(&["resources", k, res]).is_some_and(|n| !n.is_null()))
                };
                ContainerRequests {
                    name: c.name.into(),
                    role: c.role,
                    at: Spot::of(object, c.route.clone()),
                    cpu: has("cpu"),
                    memory: has("memory"),
                }
            })
            .collect();
        let requested = pod
            .get("resources")
            .map(|r| {
                ["requests", "limits"]
                    .iter()
                    .flat_map(|k| r.get(k).map(Node::entries).unwrap_or_default())
                    .filter(|e| !e.value.is_null())
                    .filter_map(|e| e.key.as_key().map(CompactString::from))
                    .collect()
            })
            .unwrap_or_default();
        Some(Requests { containers, pod: requested })
    }
}

fn check(cx: &GlobalCx<'_>, out: &mut Emitter<'_>) {
    for (scaler_obj, scaler, target) in scale::scaled_targets(cx.facts, cx.config.namespace.as_deref()) {
        let Some(requests) = cx.facts.get::<Requests>(target) else { continue };
        for metric in &scaler.utilization {
            check_metric(cx, scaler_obj, scaler, metric, target, requests, out);
        }
    }
}

fn check_metric(
    cx: &GlobalCx<'_>,
    scaler_obj: &ObjectFacts,
    scaler: &Scaler,
    metric: &Utilization,
    target: &ObjectFacts,
    workload: &Requests,
    out: &mut Emitter<'_>,
) {
    let resource = metric.resource.as_str();
    // Only CPU and memory requests are known to the facts (and only those have utilization metrics).
    let requests = |c: &ContainerRequests| match resource {
        "cpu" => Some(c.cpu),
        "memory" => Some(c.memory),
        _ => None,
    };
    // The HPA counts main containers and native sidecars; init containers have finished by then.
    let counted = workload.containers.iter().filter(|c| c.role != ContainerRole::Init);
    // Built only for a finding: naming a rendered object's place walks its source map.
    let scaler_label = || format!("{} `{}`{}", scaler.kind.label(), scaler_obj.name, cx.at(scaler_obj));
    let target_label = || format!("{} `{}`{}", target.kind, target.name, cx.at(target));
    let missing: Vec<&ContainerRequests> = match &metric.container {
        Some(name) => {
            let Some(container) = counted.clone().find(|c| c.name == name) else {
                out.at_fact(
                    scaler_obj,
                    &metric.at,
                    format!(
                        "{} scales on {resource} utilization of container `{name}`, which {} does not have: the \
                         autoscaler cannot compute it",
                        scaler_label(),
                        target_label()
                    ),
                );
                return;
            };
            vec![container].into_iter().filter(|c| requests(c) == Some(false)).collect()
        }
        // A pod-level request stands in for the containers' when the metric is pod-wide.
        None if workload.pod.iter().any(|r| r == resource) => Vec::new(),
        None => counted.filter(|c| requests(c) == Some(false)).collect(),
    };
    for container in missing {
        let role = if container.role == ContainerRole::Sidecar { "sidecar container" } else { "container" };
        let who =
            if container.name.is_empty() { format!("unnamed {role}") } else { format!("{role} `{}`", container.name) };
        out.at_fact(
            target,
            &container.at,
            format!(
                "{who} of {} requests no {resource}, but {} scales on {resource} utilization: without a request the \
                 autoscaler cannot compute it and stops scaling",
                target_label(),
                scaler_label()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::global_findings;

    /// A Deployment `web` whose main container requests `main` and whose sidecar requests `sidecar`.
    fn deploy(main: &str, sidecar: &str, pod: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    \
             spec:\n{pod}      containers:\n        - name: web\n          image: a:1\n          resources: {main}\n      \
             initContainers:\n        - name: migrate\n          image: a:1\n        - name: proxy\n          \
             image: b:1\n          restartPolicy: Always\n          resources: {sidecar}\n"
        )
    }

    const HPA_CPU: &str = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  \
namespace: shop\nspec:\n  scaleTargetRef:\n    kind: Deployment\n    name: web\n  metrics:\n    - type: Resource\n      \
resource:\n        name: cpu\n        target:\n          type: Utilization\n          averageUtilization: 70\n";

    #[test]
    fn sidecar_without_request_breaks_the_hpa_init_container_does_not() {
        let v = global_findings(
            &RULE,
            &format!("{}---\n{HPA_CPU}", deploy("{requests: {cpu: 1}}", "{requests: {memory: 1Gi}}", "")),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.starts_with("sidecar container `proxy` of Deployment `web` (`t.yaml:2`) requests no cpu"),
            "{v:?}"
        );
        assert_eq!(v[0].object.as_ref().map(|o| o.name.as_str()), Some("web"));
        // A limit sets the request.
        assert!(
            global_findings(
                &RULE,
                &format!("{}---\n{HPA_CPU}", deploy("{requests: {cpu: 1}}", "{limits: {cpu: 1}}", ""))
            )
            .is_empty()
        );
    }

    #[test]
    fn memory_metric_checks_memory() {
        let hpa = HPA_CPU.replace("name: cpu", "name: memory");
        let v = global_findings(
            &RULE,
            &format!("{}---\n{hpa}", deploy("{requests: {cpu: 1}}", "{requests: {memory: 1Gi}}", "")),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.starts_with("container `web` of Deployment `web` (`t.yaml:2`) requests no memory"),
            "{v:?}"
        );
    }

    #[test]
    fn hpa_v1_target_cpu_percentage() {
        let hpa = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  \
namespace: shop\nspec:\n  scaleTargetRef:\n    kind: Deployment\n    name: web\n  targetCPUUtilizationPercentage: 60\n";
        let v = global_findings(&RULE, &format!("{}---\n{hpa}", deploy("{}", "{requests: {cpu: 1}}", "")));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("container `web`"), "{v:?}");
    }

    #[test]
    fn container_resource_metric_counts_one_container() {
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  \
namespace: shop\nspec:\n  scaleTargetRef:\n    kind: Deployment\n    name: web\n  metrics:\n    - type: \
ContainerResource\n      containerResource:\n        name: cpu\n        container: web\n        target:\n          \
type: Utilization\n          averageUtilization: 70\n";
        assert!(global_findings(&RULE, &format!("{}---\n{hpa}", deploy("{requests: {cpu: 1}}", "{}", ""))).is_empty());
        let v = global_findings(&RULE, &format!("{}---\n{hpa}", deploy("{}", "{requests: {cpu: 1}}", "")));
        assert_eq!(v.len(), 1, "{v:?}");
        let missing = hpa.replace("container: web", "container: api");
        let v = global_findings(&RULE, &format!("{}---\n{missing}", deploy("{requests: {cpu: 1}}", "{}", "")));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("container `api`, which Deployment `web` (`t.yaml:2`) does not have"), "{v:?}");
        assert_eq!(v[0].object.as_ref().map(|o| o.kind.as_str()), Some("HorizontalPodAutoscaler"));
    }

    #[test]
    fn pod_level_request_covers_pod_wide_metrics() {
        let pod = "      resources:\n        requests:\n          cpu: 2\n";
        assert!(global_findings(&RULE, &format!("{}---\n{HPA_CPU}", deploy("{}", "{}", pod))).is_empty());
    }

    #[test]
    fn keda_cpu_trigger_defaults_to_deployment() {
        let so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: web-so\n  namespace: shop\n\
spec:\n  scaleTargetRef:\n    name: web\n  triggers:\n    - type: cpu\n      metricType: Utilization\n      \
metadata:\n        value: \"60\"\n    - type: memory\n      metricType: AverageValue\n      metadata:\n        \
value: 512Mi\n";
        let v = global_findings(
            &RULE,
            &format!("{}---\n{so}", deploy("{requests: {memory: 1Gi}}", "{requests: {memory: 1Gi}}", "")),
        );
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|f| f.message.contains("KEDA ScaledObject `web-so`") && f.message.contains("no cpu")));
    }

    #[test]
    fn other_namespace_is_not_matched() {
        let hpa = HPA_CPU.replace("namespace: shop", "namespace: other");
        assert!(global_findings(&RULE, &format!("{}---\n{hpa}", deploy("{}", "{}", ""))).is_empty());
    }
}
