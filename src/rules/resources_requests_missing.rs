//! `resources-requests-missing`: a container without an effective CPU or memory request.
//!
//! Also home of the small helpers the `resources-*` rules share: how a container is named in messages
//! and how a `resources` quantity is read.

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::model::{Container, ContainerRole};
use crate::quantity::{Quantity, parse_quantity};
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "resources-requests-missing",
    section: "Resource Limits and Requests",
    severity: Severity::Error,
    summary: "Container has no CPU or memory request",
    why: "The scheduler places pods by their requests: a container that requests nothing is treated as \
needing nothing, so it can be packed onto a node that is already full and then starve, or be starved by, \
its neighbours. Without requests the pod also lands in a lower quality-of-service class and is among the \
first to be evicted when the node runs short of memory. Autoscalers measure utilisation as a share of the \
request, so an HPA on CPU or memory has nothing to compute against. Requests are the capacity you reserve; \
leaving them out means reserving nothing.",
    fix: "Set `resources.requests.cpu` and `resources.requests.memory` on every container, init containers \
included. Start from what the container uses under normal load (a metrics dashboard or \
`kubectl top pod --containers` shows it) and give memory some headroom. A limit alone also sets the request \
to the same value, which is how `limits.memory` with no `requests.memory` counts here, but writing the \
request out keeps the intent visible.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "resources-requests-missing/bad",
        files: &[(
            "deployment.yaml",
            include_str!("../../fixtures/rules/resources-requests-missing/bad/deployment.yaml"),
        )],
    },
    good: Example {
        dir: "resources-requests-missing/good",
        files: &[(
            "deployment.yaml",
            include_str!("../../fixtures/rules/resources-requests-missing/good/deployment.yaml"),
        )],
    },
    check: Check::Object(check),
};

/// How a container is named in messages: ``container `web` ``, ``init container `migrate` ``,
/// ``sidecar container `proxy` ``.
pub(super) fn container_label(c: &Container<'_>) -> String {
    let role = match c.role {
        ContainerRole::Main => "container",
        ContainerRole::Init => "init container",
        ContainerRole::Sidecar => "sidecar container",
    };
    if c.name.is_empty() { format!("unnamed {role} at `{}`", c.route) } else { format!("{role} `{}`", c.name) }
}

/// `resources.<kind>.<name>` (kind is `requests` or `limits`) as written; an explicit null is absent.
pub(super) fn resource<'a>(resources: Option<&'a Node>, kind: &str, name: &str) -> Option<&'a Node> {
    resources?.get_path(&[kind, name]).filter(|n| !n.is_null())
}

/// A quantity node's value; `None` when it does not parse (`manifest-invalid` reports that).
pub(super) fn quantity(node: &Node) -> Option<Quantity> {
    node.as_text().and_then(parse_quantity)
}

/// A request is effective when written, or when a limit is written (the API server then copies the
/// limit into the request).
fn has_request(resources: Option<&Node>, name: &str) -> bool {
    resource(resources, "requests", name).is_some() || resource(resources, "limits", name).is_some()
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    // Pod-level resources (`spec.resources`) cover every container that sets none of its own.
    let pod_resources = pod.get("resources");
    for c in pod.containers() {
        let resources = c.get("resources");
        let missing: Vec<&str> = ["cpu", "memory"]
            .into_iter()
            .filter(|name| !has_request(resources, name) && !has_request(pod_resources, name))
            .collect();
        let message = match missing.as_slice() {
            [] => continue,
            [one] => format!(
                "{} has no {one} request: neither `resources.requests.{one}` nor `resources.limits.{one}` is set",
                container_label(c)
            ),
            _ => format!(
                "{} has no cpu and no memory request: `resources` sets neither a request nor a limit for them",
                container_label(c)
            ),
        };
        out.at(c.route.key("resources").key("requests"), message);
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, workload};

    #[test]
    fn limit_only_counts_as_request() {
        let yaml = workload(
            "Deployment",
            "containers:\n  - name: web\n    image: a:1\n    resources:\n      limits: {cpu: 1, memory: 1Gi}\n",
        );
        assert!(messages(&object_findings(&RULE, &yaml)).is_empty());
    }

    #[test]
    fn one_finding_per_container_listing_what_is_missing() {
        let yaml = workload(
            "Deployment",
            "containers:\n  - name: web\n    image: a:1\n    resources:\n      requests: {memory: 1Gi}\n\
             initContainers:\n  - name: migrate\n    image: a:1\n",
        );
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("container `web` has no cpu request"), "{msgs:?}");
        assert!(msgs[1].starts_with("init container `migrate` has no cpu and no memory request"), "{msgs:?}");
    }

    #[test]
    fn null_values_are_missing_and_jobs_are_checked() {
        let yaml = workload(
            "CronJob",
            "containers:\n  - name: batch\n    image: a:1\n    resources:\n      requests: {cpu: ~, memory: 1Gi}\n",
        );
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("container `batch` has no cpu request"), "{msgs:?}");
    }

    #[test]
    fn pod_level_resources_cover_containers() {
        let yaml = workload(
            "Pod",
            "resources:\n  requests: {cpu: 1, memory: 1Gi}\ncontainers:\n  - name: web\n    image: a:1\n",
        );
        assert!(messages(&object_findings(&RULE, &yaml)).is_empty());
    }

    #[test]
    fn finding_points_at_the_container() {
        let yaml = workload("Deployment", "containers:\n  - name: web\n    image: a:1\n");
        let findings = object_findings(&RULE, &yaml);
        assert_eq!(findings.len(), 1);
        // The `- name: web` line: resources and requests are missing, so the container is the nearest.
        assert_eq!(findings[0].line, 10);
    }
}
