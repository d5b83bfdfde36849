//! `resources-request-above-limit`: a resource request greater than its limit, which the API server rejects.

use super::resources_requests_missing::{container_label, quantity};
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "resources-request-above-limit",
    section: "Resource Limits and Requests",
    severity: Severity::Error,
    summary: "A resource request is greater than its limit",
    why: "A request is the amount reserved for a container and a limit is the most it may ever use, so a \
reservation larger than the ceiling is a contradiction. The API server refuses such a pod outright: the \
Deployment or StatefulSet is accepted, but its ReplicaSet cannot create a single pod, and the rollout \
stalls with the error visible only in the controller's events. It usually comes from editing one value and \
forgetting the other, and it is cheaper to catch in review than in a stuck deploy.",
    fix: "Make every request less than or equal to its limit for the same resource. For memory, set the \
limit equal to the request; for CPU, consider removing the limit altogether; for ephemeral storage and \
extended resources, raise the limit or lower the request to what the container really needs.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "resources-request-above-limit/bad",
        files: &[(
            "deployment.yaml",
            include_str!("../../fixtures/rules/resources-request-above-limit/bad/deployment.yaml"),
        )],
    },
    good: Example {
        dir: "resources-request-above-limit/good",
        files: &[(
            "deployment.yaml",
            include_str!("../../fixtures/rules/resources-request-above-limit/good/deployment.yaml"),
        )],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    if let Some(resources) = pod.get("resources") {
        compare(resources, &pod.route.key("resources"), "the pod-level `resources`", out);
    }
    for c in pod.containers() {
        if let Some(resources) = c.get("resources") {
            compare(resources, &c.route.key("resources"), &container_label(c), out);
        }
    }
}

/// Reports each `requests.<name>` that exceeds `limits.<name>`, whatever the resource.
fn compare(resources: &Node, route: &Route, who: &str, out: &mut Emitter<'_>) {
    let Some(limits) = resources.get("limits") else { return };
    for entry in resources.get("requests").map(Node::entries).unwrap_or_default() {
        let Some(name) = entry.key.as_key() else { continue };
        let Some(limit) = limits.get(name) else { continue };
        let (Some(req), Some(lim)) = (quantity(&entry.value), quantity(limit)) else { continue };
        if req > lim {
            out.at(
                route.key("requests").key(name),
                format!(
                    "{who} requests {} of `{name}` but its limit is {}: the API server rejects a request above its limit",
                    entry.value.as_text().unwrap_or_default(),
                    limit.as_text().unwrap_or_default()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, routes, workload};

    #[test]
    fn any_resource_name() {
        let yaml = workload(
            "Deployment",
            "containers:\n  - name: web\n    image: a:1\n    resources:\n      \
             requests: {cpu: '2', memory: 1Gi, ephemeral-storage: 2Gi, hugepages-2Mi: 4Mi, nvidia.com/gpu: 2}\n      \
             limits: {cpu: 1500m, memory: 1024Mi, ephemeral-storage: 1Gi, hugepages-2Mi: 2Mi, nvidia.com/gpu: 1}\n",
        );
        let found = object_findings(&RULE, &yaml);
        let msgs = messages(&found);
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs[0].starts_with("container `web` requests 2 of `cpu` but its limit is 1500m"), "{msgs:?}");
        assert!(msgs.iter().all(|m| !m.contains("`memory`")), "1Gi == 1024Mi: {msgs:?}");
        assert_eq!(
            routes(&found)[3],
            "spec.template.spec.containers[0].resources.requests[\"nvidia.com/gpu\"]".to_string()
        );
    }

    #[test]
    fn request_without_limit_or_unparseable_is_fine() {
        let yaml = workload(
            "Pod",
            "containers:\n  - name: web\n    image: a:1\n    resources:\n      \
             requests: {cpu: 4, memory: huge}\n      limits: {memory: 1Gi}\n",
        );
        assert!(messages(&object_findings(&RULE, &yaml)).is_empty());
    }

    #[test]
    fn init_containers_and_pod_level() {
        let yaml = workload(
            "CronJob",
            "resources:\n  requests: {memory: 2Gi}\n  limits: {memory: 1Gi}\ninitContainers:\n  - name: setup\n    \
             image: a:1\n    resources:\n      requests: {cpu: 1}\n      limits: {cpu: 500m}\n",
        );
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("the pod-level `resources` requests 2Gi of `memory`"), "{msgs:?}");
        assert!(msgs[1].starts_with("init container `setup` requests 1 of `cpu`"), "{msgs:?}");
    }
}
