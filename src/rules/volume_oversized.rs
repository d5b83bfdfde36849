//! `volume-oversized`: a volume claim requesting more storage than the configured maximum.

use super::resources_requests_missing::quantity;
use super::{Check, Emitter, Example, ObjectCx, OptionKind, Rule, RuleOption};
use crate::finding::Severity;
use crate::quantity::{Quantity, parse_quantity};
use crate::yaml::{Node, Route};

const DEFAULT_MAX: &str = "100Gi";

pub static RULE: Rule = Rule {
    id: "volume-oversized",
    section: "Volume Mounts",
    severity: Severity::Warning,
    summary: "Volume claim requests more storage than the configured maximum",
    why: "Persistent storage is billed for what is provisioned, not for what is used, and most storage \
classes can grow a volume later but never shrink it. A claim sized \"to be safe\" therefore costs its full \
size from day one, for as long as it exists, and for a StatefulSet that cost is multiplied by every replica. \
Oversized volumes also take longer to snapshot, back up and restore. Starting small and expanding when \
monitoring shows the need keeps the bill tied to real usage.",
    fix: "Request the storage the data needs now plus reasonable headroom, and grow it later. Use a \
StorageClass with `allowVolumeExpansion: true`, then raise `resources.requests.storage` on the claim when \
usage approaches it. If a large volume is genuinely needed, raise this rule's `max` option for that \
repository or silence the finding with a reason.",
    secret: false,
    options: &[RuleOption {
        name: "max",
        kind: OptionKind::Quantity,
        default: DEFAULT_MAX,
        doc: "Largest storage request allowed for one claim, as a Kubernetes quantity (`500Gi`, `1Ti`).",
    }],
    suggest: None,
    bad: Example {
        dir: "volume-oversized/bad",
        files: &[("pvc.yaml", include_str!("../../fixtures/rules/volume-oversized/bad/pvc.yaml"))],
    },
    good: Example {
        dir: "volume-oversized/good",
        files: &[("pvc.yaml", include_str!("../../fixtures/rules/volume-oversized/good/pvc.yaml"))],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    // The option was checked when the configuration loaded; the default is only for a configuration
    // built without one (library callers).
    let configured = cx.options.text("max");
    let (max_text, max) = match cx.options.quantity("max") {
        Some(q) => (configured.as_str(), q),
        None => (DEFAULT_MAX, parse_quantity(DEFAULT_MAX).unwrap_or(Quantity(i128::MAX))),
    };
    let object = &cx.object;
    let storage = |claim_spec: Route| claim_spec.key("resources").key("requests").key("storage");
    let mut claims: Vec<(Route, String)> = Vec::new();
    match (object.group(), object.kind) {
        ("", "PersistentVolumeClaim") => {
            claims.push((storage(Route::root().key("spec")), format!("PersistentVolumeClaim `{}`", object.name)));
        }
        ("apps", "StatefulSet") => {
            let templates = object.root.get_path(&["spec", "volumeClaimTemplates"]).map(Node::items);
            for (i, template) in templates.unwrap_or_default().iter().enumerate() {
                let name = template.get_path(&["metadata", "name"]).and_then(Node::as_text).unwrap_or("?");
                claims.push((
                    storage(Route::root().key("spec").key("volumeClaimTemplates").index(i).key("spec")),
                    format!("volumeClaimTemplate `{name}` of StatefulSet `{}` (per replica)", object.name),
                ));
            }
        }
        _ => {}
    }
    // Generic ephemeral volumes carry a claim template inside any pod spec.
    if let Some(pod) = object.pod_spec() {
        for (i, volume) in pod.get("volumes").map(Node::items).unwrap_or_default().iter().enumerate() {
            if volume.get("ephemeral").is_none() {
                continue;
            }
            let name = volume.get("name").and_then(Node::as_text).unwrap_or("?");
            let spec = pod.route.key("volumes").index(i).key("ephemeral").key("volumeClaimTemplate").key("spec");
            claims.push((storage(spec), format!("ephemeral volume `{name}` of {} `{}`", object.kind, object.name)));
        }
    }
    for (route, who) in claims {
        let Some(node) = route.resolve(object.root) else { continue };
        let Some(requested) = quantity(node) else { continue };
        if requested > max {
            out.at(
                route,
                format!(
                    "{who} requests {} of storage, more than the {max_text} maximum (rule option `max`)",
                    node.as_text().unwrap_or_default()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::config::Config;
    use crate::rules::testing::{messages, object_findings, object_findings_with, routes, workload};

    fn pvc(size: &str) -> String {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: t\nspec:\n  \
             accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: {size}\n"
        )
    }

    #[test]
    fn pvc_over_the_default() {
        assert_eq!(
            messages(&object_findings(&RULE, &pvc("500Gi"))),
            vec![
                "PersistentVolumeClaim `data` requests 500Gi of storage, more than the 100Gi maximum (rule option `max`)"
            ]
        );
        assert_eq!(routes(&object_findings(&RULE, &pvc("0.5Ti"))), vec!["spec.resources.requests.storage"]);
        for ok in ["100Gi", "102400Mi", "20Gi", "lots"] {
            assert!(messages(&object_findings(&RULE, &pvc(ok))).is_empty(), "{ok}");
        }
    }

    #[test]
    fn max_option() {
        let config = Config::parse("rules:\n  volume-oversized: {max: 1Ti}\n", "c").expect("valid");
        assert!(object_findings_with(&RULE, &pvc("500Gi"), &config).is_empty());
        let found = object_findings_with(&RULE, &pvc("2Ti"), &config);
        assert!(found[0].message.contains("more than the 1Ti maximum"), "{:?}", found[0].message);
        // A maximum that is not a quantity is a configuration error, not a silent default.
        let e = Config::parse("rules:\n  volume-oversized: {max: huge}\n", "c").expect_err("not a quantity");
        assert!(e.message.contains("quantity"), "{e}");
    }

    #[test]
    fn statefulset_templates_and_ephemeral_volumes() {
        let mut yaml = workload(
            "StatefulSet",
            "containers:\n  - name: db\n    image: a:1\nvolumes:\n  - name: scratch\n    ephemeral:\n      \
             volumeClaimTemplate:\n        spec:\n          resources: {requests: {storage: 200Gi}}\n",
        );
        yaml.push_str(
            "  volumeClaimTemplates:\n    - metadata: {name: small}\n      spec: {resources: {requests: {storage: 1Gi}}}\n    \
             - metadata: {name: big}\n      spec:\n        resources:\n          requests:\n            storage: 1Ti\n",
        );
        let found = object_findings(&RULE, &yaml);
        let msgs = messages(&found);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("volumeClaimTemplate `big` of StatefulSet `t` (per replica) requests 1Ti"));
        assert!(msgs[1].starts_with("ephemeral volume `scratch` of StatefulSet `t` requests 200Gi"));
        assert_eq!(
            routes(&found),
            vec![
                "spec.volumeClaimTemplates[1].spec.resources.requests.storage",
                "spec.template.spec.volumes[0].ephemeral.volumeClaimTemplate.spec.resources.requests.storage"
            ]
        );
    }
}
