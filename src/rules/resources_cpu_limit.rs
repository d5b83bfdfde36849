//! `resources-cpu-limit`: a CPU limit is set, so the container is throttled instead of bursting.

use super::resources_requests_missing::{container_label, quantity, resource};
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "resources-cpu-limit",
    section: "Resource Limits and Requests",
    severity: Severity::Notice,
    summary: "CPU limit is set; the golden path lets CPU burst",
    why: "A CPU limit is enforced by the kernel's CFS bandwidth control as a time quota: in every 100ms \
period the container may run for at most its limit's worth of CPU time, summed over all its threads. A \
multi-threaded app, or one that starts up, garbage-collects or serves a burst of requests, can use that \
quota in the first few milliseconds and then sit paused for the rest of the period even though the node \
has idle cores, which shows up as latency spikes and failed probes rather than as high CPU. CPU, unlike \
memory, is shared by time and can always be taken back, so the request already guarantees the container \
its share and letting it burst above that costs neighbours nothing they were promised.",
    fix: "Remove `resources.limits.cpu` and keep a realistic `resources.requests.cpu`. The request \
reserves the container's share and weights it under contention; without a limit it may use idle CPU on the \
node. Keep the limit only where you must cap usage on purpose (a noisy batch job, a licence counted in \
cores), and then silence this notice there.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "resources-cpu-limit/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/resources-cpu-limit/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "resources-cpu-limit/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/resources-cpu-limit/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    if let Some(limit) = resource(pod.get("resources"), "limits", "cpu").filter(|n| quantity(n).is_some()) {
        out.at(
            pod.route.key("resources").key("limits").key("cpu"),
            format!(
                "the pod-level `resources` sets a CPU limit of {}; its containers are throttled at that quota",
                limit.as_text().unwrap_or_default()
            ),
        );
    }
    for c in pod.containers() {
        let Some(limit) = resource(c.get("resources"), "limits", "cpu") else { continue };
        if quantity(limit).is_none() {
            continue;
        }
        out.at(
            c.route.key("resources").key("limits").key("cpu"),
            format!(
                "{} sets a CPU limit of {}: it is throttled at that quota even when the node has idle CPU",
                container_label(c),
                limit.as_text().unwrap_or_default()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, routes, workload};

    #[test]
    fn cpu_limit_is_a_notice_at_the_limit() {
        let yaml = workload(
            "Deployment",
            "containers:\n  - name: web\n    image: a:1\n    resources:\n      limits: {cpu: 500m, memory: 1Gi}\n",
        );
        let found = object_findings(&RULE, &yaml);
        assert_eq!(
            messages(&found),
            vec![
                "container `web` sets a CPU limit of 500m: it is throttled at that quota even when the node has idle CPU"
            ]
        );
        assert_eq!(routes(&found), vec!["spec.template.spec.containers[0].resources.limits.cpu"]);
    }

    #[test]
    fn no_cpu_limit_null_or_unparseable_is_quiet() {
        for limits in ["{memory: 1Gi}", "{cpu: ~, memory: 1Gi}", "{cpu: fast}"] {
            let yaml = workload(
                "Deployment",
                &format!("containers:\n  - name: web\n    image: a:1\n    resources:\n      limits: {limits}\n"),
            );
            assert!(messages(&object_findings(&RULE, &yaml)).is_empty(), "{limits}");
        }
    }

    #[test]
    fn init_containers_too() {
        let yaml = workload(
            "Job",
            "containers:\n  - name: a\n    image: a:1\ninitContainers:\n  - name: setup\n    image: a:1\n    \
             resources:\n      limits: {cpu: 1}\n",
        );
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("init container `setup` sets a CPU limit of 1"), "{msgs:?}");
    }
}
