//! `hpa-target-missing`: an HPA or KEDA ScaledObject whose `scaleTargetRef` names no object kpath checked.

use super::scale::{self, SCALER};
use super::{Check, Emitter, Example, Global, GlobalCx, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "hpa-target-missing",
    section: "HPA (HorizontalPodAutoscaler)",
    severity: Severity::Warning,
    summary: "Autoscaler targets a workload that is not among the checked manifests",
    why: "An autoscaler is tied to its workload by kind and name alone. When the workload is renamed, \
deleted or moved to another namespace and the HPA or ScaledObject is left behind, nothing fails at apply \
time: the autoscaler just reports that it cannot find its target, and the workload it was meant to protect \
runs at a fixed size. kpath looks for the target among all the objects it checked together, so a target \
that lives in another repository or is rendered from a chart kpath did not render shows up here too; \
that is why this is a warning rather than an error.",
    fix: "Point `spec.scaleTargetRef` (kind, name, and the autoscaler's namespace) at the workload it should \
scale, or delete the autoscaler if the workload is gone. When the target really is deployed from \
elsewhere, check both together or suppress this finding with the reason.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "hpa-target-missing/bad",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-target-missing/bad/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-target-missing/bad/hpa.yaml")),
        ],
    },
    good: Example {
        dir: "hpa-target-missing/good",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-target-missing/good/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-target-missing/good/hpa.yaml")),
        ],
    },
    check: Check::Global(Global { run: check, reads: &[&SCALER] }),
};

fn check(cx: &GlobalCx<'_>, out: &mut Emitter<'_>) {
    for (scaler_obj, scaler) in scale::scalers(cx.facts) {
        // Any object of that kind and name will do: custom resources with a scale subresource have no
        // pod template kpath knows about, but they are still valid targets.
        if scale::any_target(cx.facts, scaler_obj, scaler, cx.config.namespace.as_deref()) {
            continue;
        }
        // A plain file's autoscaler may target what a unit renders; when some units were not rendered, its
        // target may be there.
        if cx.facts.partial && scaler_obj.scope.is_none() {
            continue;
        }
        let namespace = scaler_obj
            .namespace
            .as_deref()
            .or(cx.config.namespace.as_deref())
            .map(|ns| format!(" in namespace `{ns}`"))
            .unwrap_or_default();
        out.at_fact(
            scaler_obj,
            &scaler.target,
            format!(
                "{} `{}` scales {} `{}`, but no such object{namespace} is among the checked manifests",
                scaler.kind.label(),
                scaler_obj.name,
                scaler.target_kind,
                scaler.target_name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::global_findings;

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n\
spec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: a:1\n";

    fn hpa(kind: &str, name: &str, namespace: &str) -> String {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web-hpa\n  namespace: \
             {namespace}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: {kind}\n    name: {name}\n"
        )
    }

    #[test]
    fn present_target_is_fine() {
        assert!(global_findings(&RULE, &format!("{DEPLOY}---\n{}", hpa("Deployment", "web", "shop"))).is_empty());
    }

    #[test]
    fn wrong_name_kind_or_namespace() {
        for (kind, name, ns) in
            [("Deployment", "web2", "shop"), ("StatefulSet", "web", "shop"), ("Deployment", "web", "x")]
        {
            let v = global_findings(&RULE, &format!("{DEPLOY}---\n{}", hpa(kind, name, ns)));
            assert_eq!(v.len(), 1, "{kind} {name} {ns}: {v:?}");
            assert_eq!(v[0].line, 19, "points at scaleTargetRef");
            assert!(v[0].message.contains(&format!("scales {kind} `{name}`")), "{}", v[0].message);
            assert!(v[0].message.contains(&format!("in namespace `{ns}`")), "{}", v[0].message);
        }
    }

    #[test]
    fn keda_default_kind_is_deployment() {
        let so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: web\n  namespace: shop\n\
spec:\n  scaleTargetRef:\n    name: web\n";
        assert!(global_findings(&RULE, &format!("{DEPLOY}---\n{so}")).is_empty());
        let v = global_findings(&RULE, so);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("KEDA ScaledObject `web` scales Deployment `web`"), "{}", v[0].message);
    }

    #[test]
    fn custom_resource_targets_count() {
        let rollout = "apiVersion: example.com/v1\nkind: Canary\nmetadata:\n  name: web\n  namespace: shop\n";
        assert!(global_findings(&RULE, &format!("{rollout}---\n{}", hpa("Canary", "web", "shop"))).is_empty());
    }
}
