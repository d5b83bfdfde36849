//! `namespace-shared`: objects of several apps in one namespace, instead of a namespace per app.

use super::{Check, Emitter, Example, GlobalCx, Rule};
use crate::finding::Severity;
use crate::model::facts::ObjectFacts;

pub static RULE: Rule = Rule {
    id: "namespace-shared",
    section: "Namespaces",
    severity: Severity::Notice,
    summary: "Several apps share one namespace",
    why: "A namespace is the unit Kubernetes scopes RBAC, quotas, network policies and most observability \
by. When several apps share one, a permission granted for one of them reaches all of them, one app's \
runaway usage eats the others' quota, and their alerts and dashboards blur together. Grouping by an \
overarching product or team seems tidy but has the same problem on a larger scale; one namespace per app \
keeps each boundary as small as the thing it protects.",
    fix: "Give each app its own namespace, named after the app. Shared infrastructure an app depends on \
(a database, a cache) gets a namespace of its own too, reached through a Service rather than by sharing one.",
    secret: false,
    options: &[],
    bad: Example {
        dir: "namespace-shared/bad",
        files: &[("deployments.yaml", include_str!("../../fixtures/rules/namespace-shared/bad/deployments.yaml"))],
    },
    good: Example {
        dir: "namespace-shared/good",
        files: &[("deployments.yaml", include_str!("../../fixtures/rules/namespace-shared/good/deployments.yaml"))],
    },
    check: Check::Global(check),
};

/// How many app names a message lists before "and N more".
const SHOWN_APPS: usize = 5;

struct Namespace<'a> {
    name: &'a str,
    /// Apps in order of first appearance, each with its first object.
    apps: Vec<(&'a str, &'a ObjectFacts)>,
}

fn check(cx: &GlobalCx<'_>, out: &mut Emitter<'_>) {
    let mut namespaces: Vec<Namespace<'_>> = Vec::new();
    for object in &cx.facts.objects {
        let (Some(app), Some(ns)) = (object.app.as_deref(), object.id.namespace.as_deref()) else { continue };
        // `namespace-default` already reports everything in `default`.
        if ns == "default" {
            continue;
        }
        let index = match namespaces.iter().position(|n| n.name == ns) {
            Some(i) => i,
            None => {
                namespaces.push(Namespace { name: ns, apps: Vec::new() });
                namespaces.len() - 1
            }
        };
        let apps = &mut namespaces[index].apps;
        if !apps.iter().any(|(a, _)| *a == app) {
            apps.push((app, object));
        }
    }
    for ns in &namespaces {
        let Some((_, second)) = ns.apps.get(1) else { continue };
        let mut names: Vec<String> = ns.apps.iter().take(SHOWN_APPS).map(|(a, _)| format!("`{a}`")).collect();
        if ns.apps.len() > SHOWN_APPS {
            names.push(format!("and {} more", ns.apps.len() - SHOWN_APPS));
        }
        out.at_place(
            &second.place,
            &second.id,
            format!("namespace `{}` holds objects of {} apps: {}", ns.name, ns.apps.len(), names.join(", ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::finding::Finding;
    use crate::model::Object;
    use crate::model::facts::{self, Facts};

    fn run(text: &str) -> Vec<Finding> {
        let (docs, broken) = crate::yaml::parse_stream(text);
        assert!(broken.is_empty());
        let file: Arc<str> = Arc::from("f.yaml");
        let objects = docs
            .iter()
            .filter_map(|d| d.root.as_ref().filter(|r| !r.is_null()).map(|r| (d.index, r)))
            .map(|(i, root)| facts::extract(&Object::from_root(root).unwrap(), &file, i))
            .collect();
        let facts = Facts { objects };
        let cfg = Config::default();
        let cx = GlobalCx { facts: &facts, config: &cfg, options: cfg.options(RULE.id) };
        let mut found = Vec::new();
        let mut out = Emitter {
            rule: &RULE,
            severity: RULE.severity,
            file: Arc::from(""),
            root: None,
            document: None,
            object: None,
            out: &mut found,
        };
        check(&cx, &mut out);
        found
    }

    fn object(kind: &str, name: &str, ns: Option<&str>, app: Option<&str>) -> String {
        let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
        let labels = app.map(|a| format!(", labels: {{app.kubernetes.io/name: {a}}}")).unwrap_or_default();
        format!("apiVersion: v1\nkind: {kind}\nmetadata: {{name: {name}{ns}{labels}}}\n---\n")
    }

    #[test]
    fn reported_once_at_the_first_object_of_the_second_app() {
        let text = [
            object("Service", "a", Some("shop"), Some("cart")),
            object("ConfigMap", "a-cfg", Some("shop"), Some("cart")),
            object("Service", "b", Some("shop"), Some("payments")),
            object("Service", "b2", Some("shop"), Some("payments")),
            object("Service", "c", Some("shop"), Some("search")),
        ]
        .concat();
        let found = run(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.document, Some(2));
        assert_eq!(f.object.as_ref().map(|o| o.name.as_str()), Some("b"));
        assert_eq!(f.message, "namespace `shop` holds objects of 3 apps: `cart`, `payments`, `search`");
    }

    #[test]
    fn long_lists_are_cut() {
        let text: String =
            (0..8).map(|i| object("Service", &format!("s{i}"), Some("shared"), Some(&format!("app{i}")))).collect();
        let found = run(&text);
        assert_eq!(found.len(), 1);
        assert!(found[0].message.ends_with("`app4`, and 3 more"), "{}", found[0].message);
    }

    #[test]
    fn one_app_per_namespace_and_unlabelled_objects_pass() {
        let text = [
            object("Service", "a", Some("cart"), Some("cart")),
            object("Service", "b", Some("payments"), Some("payments")),
            object("ConfigMap", "shared-cfg", Some("cart"), None),
            object("Service", "c", None, Some("search")),
            object("Service", "d", Some("default"), Some("x")),
            object("Service", "e", Some("default"), Some("y")),
        ]
        .concat();
        assert!(run(&text).is_empty());
    }
}
