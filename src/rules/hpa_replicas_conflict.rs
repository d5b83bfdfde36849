//! `hpa-replicas-conflict`: a workload that an HPA or a KEDA ScaledObject scales also sets `spec.replicas`.

use super::scale::{self, SCALER, ScalerKind};
use super::{Check, Emitter, Example, Global, GlobalCx, Rule};
use crate::finding::Severity;
use crate::model::facts::{Fact, FactKind, ObjectFacts, Spot};
use crate::model::{Object, PodSpec};
use crate::yaml::Route;

pub static RULE: Rule = Rule {
    id: "hpa-replicas-conflict",
    section: "HPA (HorizontalPodAutoscaler)",
    severity: Severity::Error,
    summary: "Autoscaled workload also sets `spec.replicas`",
    why: "Once an autoscaler owns a workload, the replica count is the autoscaler's to change, and it \
moves it up and down with load. A `spec.replicas` left in the manifest is re-applied on every deploy or \
GitOps sync, which resets the count to the written number: a busy service scaled out to ten pods drops \
back to two in the middle of a rollout, and the autoscaler needs minutes to climb again. The two owners \
keep fighting for as long as the field is there, so the fix is to give the count to one of them.",
    fix: "Delete `spec.replicas` from the workload and let the autoscaler's `minReplicas` (KEDA: \
`minReplicaCount`) set the floor. If you deploy with Argo CD or Flux and the field must stay for the first \
apply, tell the tool to ignore differences in `/spec/replicas` instead.",
    secret: false,
    options: &[],
    suggest: Some(suggest),
    bad: Example {
        dir: "hpa-replicas-conflict/bad",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-replicas-conflict/bad/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-replicas-conflict/bad/hpa.yaml")),
        ],
    },
    good: Example {
        dir: "hpa-replicas-conflict/good",
        files: &[
            ("deployment.yaml", include_str!("../../fixtures/rules/hpa-replicas-conflict/good/deployment.yaml")),
            ("hpa.yaml", include_str!("../../fixtures/rules/hpa-replicas-conflict/good/hpa.yaml")),
        ],
    },
    check: Check::Global(Global { run: check, reads: &[&SCALER, &REPLICAS] }),
};

static REPLICAS: FactKind = FactKind::of::<Replicas>("replicas");

/// A workload's written `spec.replicas` (its key's place).
#[derive(Debug, Clone)]
struct Replicas(Spot);

impl Fact for Replicas {
    fn read(object: &Object<'_>, pod: Option<&PodSpec<'_>>) -> Option<Replicas> {
        pod?;
        object.root.get_path(&["spec", "replicas"])?;
        Some(Replicas(Spot::of(object, Route::root().key("spec").key("replicas"))))
    }
}

fn check(cx: &GlobalCx<'_>, out: &mut Emitter<'_>) {
    // One finding per workload, naming the first autoscaler found: its `replicas:` is the one line to change.
    let mut told: std::collections::HashSet<*const ObjectFacts> = std::collections::HashSet::new();
    for (scaler_obj, scaler, target) in scale::scaled_targets(cx.facts, cx.config.namespace.as_deref()) {
        let Some(Replicas(replicas)) = cx.facts.get::<Replicas>(target) else { continue };
        if !told.insert(std::ptr::from_ref(target)) {
            continue;
        }
        let floor = match scaler.kind {
            ScalerKind::Hpa => "minReplicas",
            ScalerKind::Keda => "minReplicaCount",
        };
        out.at_fact(
            target,
            replicas,
            format!(
                "{} `{}` sets `spec.replicas` but is scaled by {} `{}`{}: every apply resets the replica count \
                 the autoscaler chose; remove it and let `{floor}` set the floor",
                target.kind,
                target.name,
                scaler.kind.label(),
                scaler_obj.name,
                cx.at(scaler_obj)
            ),
        );
    }
}

/// The fix: delete the `replicas:` line (in a manifest), or the values key a template's `replicas:` reads,
/// when the value is wholly on that line.
fn suggest(cx: &super::fix::FixCx<'_>) -> Option<super::fix::Suggestion> {
    let line = cx.text()?;
    let (key, value) = super::fix::key_value(&line)?;
    let deletable = super::fix::deletable_value(value) && (key == "replicas" || cx.kind == "values");
    deletable.then(|| cx.replace_line(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::testing::global_findings_with;

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n\
spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: web\n          image: a:1\n";

    #[test]
    fn hpa_on_workload_with_replicas() {
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web-hpa\n  \
namespace: shop\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: web\n";
        let v = global_findings_with(&RULE, &format!("{DEPLOY}---\n{hpa}"), &Config::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].line, 7, "points at the replicas line");
        assert!(v[0].message.contains("HorizontalPodAutoscaler `web-hpa`"), "{}", v[0].message);
        assert_eq!(v[0].object.as_ref().map(|o| o.kind.as_str()), Some("Deployment"));
    }

    #[test]
    fn keda_defaults_target_kind_to_deployment() {
        let so = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: web\n  namespace: shop\n\
spec:\n  scaleTargetRef:\n    name: web\n  triggers: []\n";
        let v = global_findings_with(&RULE, &format!("{DEPLOY}---\n{so}"), &Config::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("KEDA ScaledObject `web`") && v[0].message.contains("minReplicaCount"));
    }

    #[test]
    fn other_namespace_or_kind_is_not_matched() {
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  \
namespace: other\nspec:\n  scaleTargetRef:\n    kind: Deployment\n    name: web\n";
        assert!(global_findings_with(&RULE, &format!("{DEPLOY}---\n{hpa}"), &Config::default()).is_empty());
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  \
namespace: shop\nspec:\n  scaleTargetRef:\n    kind: StatefulSet\n    name: web\n";
        assert!(global_findings_with(&RULE, &format!("{DEPLOY}---\n{hpa}"), &Config::default()).is_empty());
    }

    #[test]
    fn unset_namespace_uses_the_configured_default() {
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n\
spec:\n  scaleTargetRef:\n    kind: Deployment\n    name: web\n";
        // Unknown destination: the HPA may well land in `shop`.
        assert_eq!(global_findings_with(&RULE, &format!("{DEPLOY}---\n{hpa}"), &Config::default()).len(), 1);
        let elsewhere = Config { namespace: Some("other".into()), ..Config::default() };
        assert!(global_findings_with(&RULE, &format!("{DEPLOY}---\n{hpa}"), &elsewhere).is_empty());
    }

    #[test]
    fn no_replicas_no_finding() {
        let deploy = DEPLOY.replace("  replicas: 3\n", "");
        let hpa = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n  \
namespace: shop\nspec:\n  scaleTargetRef:\n    kind: Deployment\n    name: web\n";
        assert!(global_findings_with(&RULE, &format!("{deploy}---\n{hpa}"), &Config::default()).is_empty());
    }
}
