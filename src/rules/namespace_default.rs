//! `namespace-default`: an object placed in the `default` namespace.

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::Route;

pub static RULE: Rule = Rule {
    id: "namespace-default",
    section: "Namespaces",
    severity: Severity::Error,
    summary: "Object is deployed into the `default` namespace",
    why: "The `default` namespace is where everything lands when nobody chose: objects there share one \
set of RBAC bindings, quotas and network policies with whatever else was dropped in it, so access cannot \
be scoped to this app, and a compromise or a noisy neighbour there reaches everything. A namespace per \
application gives each one its own permissions, limits and observability boundary.",
    fix: "Set `metadata.namespace` to the application's own namespace (or remove it and let your deploy \
tool's destination namespace apply). Create that namespace once, with its RBAC and quotas, next to the app.",
    secret: false,
    options: &[],
    suggest: Some(suggest),
    bad: Example {
        dir: "namespace-default/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/namespace-default/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "namespace-default/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/namespace-default/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    if cx.object.namespace == Some("default") {
        out.at(
            Route::root().key("metadata").key("namespace"),
            format!("{} `{}` is in the `default` namespace", cx.object.kind, cx.object.name),
        );
    }
}

/// The fix: `namespace: default` → the app's own namespace (its name label nearby, else the object's name).
fn suggest(cx: &super::fix::FixCx<'_>) -> Option<super::fix::Suggestion> {
    let line = cx.text()?;
    let object = cx.finding.object.as_ref()?;
    let app = if matches!(cx.kind, "manifest" | "template") {
        super::fix::app_name_near(cx.head_line, cx.file, cx.line)
    } else {
        None
    };
    let name = app.or_else(|| super::fix::is_dns_label(&object.name).then(|| object.name.clone()))?;
    super::fix::replace_default_namespace(&line, &name).map(|text| cx.replace_line(text))
}
