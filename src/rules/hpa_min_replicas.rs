//! `hpa-min-replicas`: a HorizontalPodAutoscaler that lets its workload shrink to a single pod.

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::Route;

pub static RULE: Rule = Rule {
    id: "hpa-min-replicas",
    section: "HPA (HorizontalPodAutoscaler)",
    severity: Severity::Warning,
    summary: "HorizontalPodAutoscaler allows fewer than 2 replicas",
    why: "With `minReplicas` below 2 (or left out, which means 1) the autoscaler shrinks the workload to a \
single pod whenever traffic is quiet. That pod is then a single point of failure: a node drain, an eviction, \
a crash or an ordinary rolling update leaves nothing serving until a replacement is ready. Two replicas is \
the floor the guideline asks for so that one can always stand in for the other. This rule looks at HPAs \
only: KEDA's `minReplicaCount` is left alone, because scaling event-driven consumers down to one or to zero \
is often the point of using KEDA, and the guideline's own KEDA example uses 1.",
    fix: "Set `spec.minReplicas: 2` (or more) on the HorizontalPodAutoscaler. Pair it with a \
PodDisruptionBudget so that voluntary disruptions keep at least one pod running.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "hpa-min-replicas/bad",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-min-replicas/bad/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-min-replicas/bad/hpa.yaml")),
        ],
    },
    good: Example {
        dir: "hpa-min-replicas/good",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-min-replicas/good/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-min-replicas/good/hpa.yaml")),
        ],
    },
    check: Check::Object(check),
};

/// The floor the guideline asks for.
const MIN_REPLICAS: i128 = 2;

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let object = &cx.object;
    if object.group() != "autoscaling" || object.kind != "HorizontalPodAutoscaler" {
        return;
    }
    let route = Route::root().key("spec").key("minReplicas");
    match object.root.get_path(&["spec", "minReplicas"]) {
        None => out.at(
            route,
            format!(
                "HorizontalPodAutoscaler `{}` has no `minReplicas`, so it may scale down to 1 replica",
                object.name
            ),
        ),
        Some(node) if node.is_null() => out.at(
            route,
            format!(
                "HorizontalPodAutoscaler `{}` has an empty `minReplicas`, so it may scale down to 1 replica",
                object.name
            ),
        ),
        // A value that is not an integer is `manifest-invalid`'s to report.
        Some(node) => {
            if let Some(n) = node.as_int().filter(|n| *n < MIN_REPLICAS) {
                out.at(
                    route,
                    format!(
                        "HorizontalPodAutoscaler `{}` has `minReplicas: {n}`; keep at least {MIN_REPLICAS} so one pod \
                         can stand in for another",
                        object.name
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{lines_and_messages, object_findings};

    fn messages(yaml: &str) -> Vec<(u32, String)> {
        lines_and_messages(&object_findings(&RULE, yaml))
    }

    fn hpa(api: &str, spec_extra: &str) -> String {
        format!(
            "apiVersion: {api}\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  scaleTargetRef:\n    \
             kind: Deployment\n    name: web\n  maxReplicas: 5\n{spec_extra}"
        )
    }

    #[test]
    fn below_two_or_absent() {
        let m = messages(&hpa("autoscaling/v2", "  minReplicas: 1\n"));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, 10);
        assert!(m[0].1.contains("minReplicas: 1"), "{m:?}");
        let m = messages(&hpa("autoscaling/v1", ""));
        assert_eq!(m.len(), 1);
        assert!(m[0].1.contains("no `minReplicas`"), "{m:?}");
        assert_eq!(messages(&hpa("autoscaling/v2beta2", "  minReplicas: 0\n")).len(), 1);
        assert_eq!(messages(&hpa("autoscaling/v2", "  minReplicas:\n")).len(), 1);
    }

    #[test]
    fn two_or_more_is_fine_and_bad_values_are_not_ours() {
        assert!(messages(&hpa("autoscaling/v2", "  minReplicas: 2\n")).is_empty());
        assert!(messages(&hpa("autoscaling/v2", "  minReplicas: 5\n")).is_empty());
        assert!(messages(&hpa("autoscaling/v2", "  minReplicas: \"1\"\n")).is_empty());
    }

    #[test]
    fn keda_is_left_alone() {
        let so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: web\nspec:\n  \
                  minReplicaCount: 0\n  scaleTargetRef:\n    name: web\n";
        assert!(messages(so).is_empty());
    }
}
