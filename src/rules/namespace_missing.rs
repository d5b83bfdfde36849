//! `namespace-missing`: a namespaced object that says nothing about where it goes.

use std::collections::HashSet;

use compact_str::CompactString;

use super::{Check, Emitter, Example, Global, GlobalCx, ObjectCx, Rule};
use crate::finding::Severity;
use crate::model::facts::{Fact, FactKind};
use crate::model::{Object, PodSpec, kinds};
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "namespace-missing",
    section: "Namespaces",
    severity: Severity::Warning,
    summary: "Namespaced object has no `metadata.namespace` and nothing sets one",
    why: "An object without a namespace lands in whatever namespace the person or tool applying it happens \
to be pointed at, which is usually `default`. The same manifest can then end up in different places on \
different runs, outside the RBAC, quotas and network policies meant for the app, and next to unrelated \
workloads. Writing the namespace down (or having the deploy tool set it explicitly) makes where the app \
runs a reviewed decision instead of an accident of someone's kubeconfig. Cluster-scoped kinds have no \
namespace and are not reported: the built-in ones, those of well-known projects (Gateway API's \
`GatewayClass`, cert-manager's `ClusterIssuer`, Kyverno's `ClusterPolicy`, Crossplane's packages and \
compositions, …), and any kind whose CustomResourceDefinition among the checked files says `scope: Cluster`.",
    fix: "Set `metadata.namespace` to the application's own namespace. If your deploy tool sets it instead \
(an Argo CD destination, Kustomize's `namespace:`, `helm install -n`), tell kpath with `namespace:` in \
`.kpath.yml`.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "namespace-missing/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/namespace-missing/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "namespace-missing/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/namespace-missing/good/deployment.yaml"))],
    },
    check: Check::ObjectAndGlobal(check, Global { run: withdraw_cluster_scoped, reads: &[&CLUSTER_KIND] }),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let object = &cx.object;
    if object.namespace.is_some()
        || cx.config.namespace.is_some()
        || crate::model::is_cluster_scoped(object.api_version, object.kind)
        || kinds::tool_configuration(object.api_version, object.kind).is_some()
    {
        return;
    }
    out.at(
        Route::root().key("metadata").key("namespace"),
        format!("{} `{}` has no namespace, so it goes wherever it is applied", object.kind, object.name),
    );
}

static CLUSTER_KIND: FactKind = FactKind::of::<ClusterKind>("cluster-scoped-kind");

/// The group and kind a CustomResourceDefinition defines as cluster-scoped (`spec.scope: Cluster`).
#[derive(Debug, Clone)]
struct ClusterKind {
    group: CompactString,
    kind: CompactString,
}

impl Fact for ClusterKind {
    fn read(object: &Object<'_>, _: Option<&PodSpec<'_>>) -> Option<ClusterKind> {
        if (object.group(), object.kind) != ("apiextensions.k8s.io", "CustomResourceDefinition") {
            return None;
        }
        let spec = object.root.get("spec")?;
        (spec.get("scope").and_then(Node::as_text) == Some("Cluster")).then_some(())?;
        Some(ClusterKind {
            group: spec.get("group").and_then(Node::as_text)?.into(),
            kind: spec.get_path(&["names", "kind"]).and_then(Node::as_text)?.into(),
        })
    }
}

/// A custom resource kpath does not know is assumed namespaced while its object is checked; when a
/// CustomResourceDefinition among the checked files says the kind is cluster-scoped, the finding is
/// taken back.
fn withdraw_cluster_scoped(cx: &GlobalCx<'_>, out: &mut Emitter<'_>) {
    let cluster: HashSet<(&str, &str)> =
        cx.facts.with::<ClusterKind>().map(|(_, crd)| (crd.group.as_str(), crd.kind.as_str())).collect();
    if cluster.is_empty() {
        return;
    }
    out.withdraw(|finding| {
        finding.object.as_ref().is_some_and(|id| {
            kinds::known_scope(&id.api_version, &id.kind).is_none()
                && cluster.contains(&(kinds::group_of(&id.api_version), id.kind.as_str()))
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::testing::{object_findings, object_findings_with};

    #[test]
    fn missing_namespace_points_at_metadata() {
        let found = object_findings(&RULE, "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec: {}\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 3, "the nearest existing field: `metadata`");
        assert!(found[0].message.contains("Service `web`"));
        assert_eq!(
            object_findings(&RULE, "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: \"\"}\n").len(),
            1
        );
    }

    #[test]
    fn a_namespace_anywhere_is_enough() {
        assert!(
            object_findings(&RULE, "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: web}\n").is_empty()
        );
        let cfg = Config { namespace: Some("web".into()), ..Config::default() };
        assert!(object_findings_with(&RULE, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n", &cfg).is_empty());
    }

    #[test]
    fn cluster_scoped_kinds_are_exempt() {
        for (api, kind) in [
            ("v1", "Namespace"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("storage.k8s.io/v1", "StorageClass"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ] {
            assert!(
                object_findings(&RULE, &format!("apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\n")).is_empty(),
                "{kind}"
            );
        }
    }
}
