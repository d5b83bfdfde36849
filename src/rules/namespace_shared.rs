//! `namespace-shared`: objects of several apps in one namespace, instead of a namespace per app.

use std::collections::HashMap;

use compact_str::CompactString;

use super::{Check, Emitter, Example, Global, GlobalCx, Rule};
use crate::finding::Severity;
use crate::model::facts::{Fact, FactKind, ObjectFacts, Spot};
use crate::model::{Object, PodSpec};

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
    suggest: None,
    bad: Example {
        dir: "namespace-shared/bad",
        files: &[("deployments.yaml", include_str!("../../fixtures/rules/namespace-shared/bad/deployments.yaml"))],
    },
    good: Example {
        dir: "namespace-shared/good",
        files: &[("deployments.yaml", include_str!("../../fixtures/rules/namespace-shared/good/deployments.yaml"))],
    },
    check: Check::Global(Global { run: check, reads: &[&APP] }),
};

static APP: FactKind = FactKind::of::<App>("app");

/// Every name tying an object of a namespace other than `default` to an app (see [`Object::app_keys`]), the
/// display name first.
#[derive(Debug, Clone)]
struct App(Vec<CompactString>);

impl Fact for App {
    fn read(object: &Object<'_>, _: Option<&PodSpec<'_>>) -> Option<App> {
        // `namespace-default` already reports everything in `default`.
        object.namespace.filter(|ns| *ns != "default")?;
        let keys = object.app_keys();
        (!keys.is_empty()).then(|| App(keys.into_iter().map(CompactString::from).collect()))
    }
}

/// How many app names a message lists before "and N more".
const SHOWN_APPS: usize = 5;

/// The apps of one namespace: objects joined into groups whenever they share an app name.
struct Namespace<'a> {
    name: &'a str,
    /// Union-find parent of each group.
    parent: Vec<usize>,
    /// Each group's display name and first object, in order of first appearance.
    first: Vec<(&'a str, &'a ObjectFacts)>,
    group_of: HashMap<&'a str, usize>,
}

impl<'a> Namespace<'a> {
    fn root(&mut self, mut g: usize) -> usize {
        while self.parent[g] != g {
            self.parent[g] = self.parent[self.parent[g]];
            g = self.parent[g];
        }
        g
    }

    fn add(&mut self, object: &'a ObjectFacts, App(keys): &'a App) {
        let roots: Vec<usize> = keys.iter().filter_map(|k| self.group_of.get(k.as_str()).copied()).collect();
        let roots: Vec<usize> = roots.into_iter().map(|g| self.root(g)).collect();
        // Join into the earliest group so reports keep first-appearance order.
        let target = match roots.iter().min() {
            Some(&g) => g,
            None => {
                self.parent.push(self.parent.len());
                self.first.push((keys.first().map_or(object.name.as_str(), CompactString::as_str), object));
                self.parent.len() - 1
            }
        };
        for g in roots {
            self.parent[g] = target;
        }
        for key in keys {
            self.group_of.insert(key.as_str(), target);
        }
    }

    /// The first object of each app, in order of first appearance.
    fn apps(&mut self) -> Vec<(&'a str, &'a ObjectFacts)> {
        let roots: Vec<usize> = (0..self.parent.len()).filter(|&g| self.root(g) == g).collect();
        roots.into_iter().map(|g| self.first[g]).collect()
    }
}

fn check(cx: &GlobalCx<'_>, out: &mut Emitter<'_>) {
    let mut namespaces: Vec<Namespace<'_>> = Vec::new();
    let mut index_of: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for (object, app) in cx.facts.with::<App>() {
        let Some(ns) = object.namespace.as_deref() else { continue };
        // Each environment's render is its own cluster view.
        let key = (ns, object.scope.as_deref());
        let index = *index_of.entry(key).or_insert_with(|| {
            namespaces.push(Namespace { name: ns, parent: Vec::new(), first: Vec::new(), group_of: HashMap::new() });
            namespaces.len() - 1
        });
        namespaces[index].add(object, app);
    }
    for ns in &mut namespaces {
        let apps = ns.apps();
        if apps.len() < 2 {
            continue;
        }
        // On the second app, which joined the first. In a review, on an app the change touches: an unchanged
        // app read beside it is context, and the one to tell is the one joining.
        let checked = |i: &usize| !apps[*i].1.context;
        let at = (1..apps.len()).find(checked).or((0..1).find(checked)).unwrap_or(1);
        let (_, second) = apps[at];
        // The app it joined named with where its first object is.
        let other = if at == 0 { 1 } else { 0 };
        let mut names: Vec<String> = apps
            .iter()
            .take(SHOWN_APPS)
            .enumerate()
            .map(|(i, (a, first))| if i == other { format!("`{a}`{}", cx.at(first)) } else { format!("`{a}`") })
            .collect();
        if apps.len() > SHOWN_APPS {
            names.push(format!("and {} more", apps.len() - SHOWN_APPS));
        }
        out.at_fact(
            second,
            &Spot { pos: second.pos, route: crate::yaml::Route::root().key("kind") },
            format!("namespace `{}` holds objects of {} apps: {}", ns.name, apps.len(), names.join(", ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::global_findings;

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
        let found = global_findings(&RULE, &text);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.document, Some(2));
        assert_eq!(f.object.as_ref().map(|o| o.name.as_str()), Some("b"));
        assert_eq!(f.message, "namespace `shop` holds objects of 3 apps: `cart` (`t.yaml:2`), `payments`, `search`");
    }

    #[test]
    fn long_lists_are_cut() {
        let text: String =
            (0..8).map(|i| object("Service", &format!("s{i}"), Some("shared"), Some(&format!("app{i}")))).collect();
        let found = global_findings(&RULE, &text);
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
        assert!(global_findings(&RULE, &text).is_empty());
    }

    #[test]
    fn objects_sharing_any_app_name_are_one_app() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: server, namespace: argocd, labels: {app.kubernetes.io/name: argocd-server, app.kubernetes.io/part-of: argocd}}\n---\n\
apiVersion: v1\nkind: Service\nmetadata: {name: server, namespace: argocd, labels: {app.kubernetes.io/name: argocd-server}}\n---\n\
apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: repo, namespace: argocd, labels: {app.kubernetes.io/name: argocd-repo-server, app.kubernetes.io/part-of: argocd}}\n---\n\
apiVersion: v1\nkind: ConfigMap\nmetadata: {name: repo-cfg, namespace: argocd, labels: {app.kubernetes.io/name: argocd-repo-server}}\n";
        assert!(global_findings(&RULE, text).is_empty(), "{:?}", global_findings(&RULE, text));
    }
}
