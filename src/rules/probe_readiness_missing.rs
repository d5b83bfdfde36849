//! `probe-readiness-missing`: a long-running container without a readiness probe.

use super::resources_requests_missing::container_label;
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "probe-readiness-missing",
    section: "Healthchecks",
    severity: Severity::Error,
    summary: "Long-running container has no readinessProbe",
    why: "Without a readiness probe Kubernetes considers a container ready the moment its process starts, \
so Services send it requests while it is still loading configuration, warming caches or connecting to its \
database, and those requests fail. During a rolling update the old pods are removed as soon as the new ones \
\"start\", so a release that cannot serve at all still replaces every healthy pod. The readiness probe is \
also how a pod steps out of the load balancer on its own while a dependency is unavailable, instead of \
returning errors to users.",
    fix: "Add a `readinessProbe` to every long-running container, pointing at an endpoint that answers \
only when the app can serve traffic (conventionally `/readyz`). That endpoint may check the dependencies \
the app cannot work without; keep the liveness probe separate and cheaper. Jobs, CronJobs and plain init \
containers run to completion and need no probe.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "probe-readiness-missing/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/probe-readiness-missing/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "probe-readiness-missing/good",
        files: &[(
            "deployment.yaml",
            include_str!("../../fixtures/rules/probe-readiness-missing/good/deployment.yaml"),
        )],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    missing_probe(cx, out, "readinessProbe", "so it receives traffic before it can serve it");
}

/// Reports each long-running container (main containers and native sidecars of pods that do not run to
/// completion) that has no `field` probe, at the container.
pub(super) fn missing_probe(cx: &ObjectCx<'_>, out: &mut Emitter<'_>, field: &str, consequence: &str) {
    let Some(pod) = cx.pod_spec() else { return };
    for c in pod.containers() {
        if !c.is_long_running(pod) || c.get(field).is_some_and(|p| !p.is_null()) {
            continue;
        }
        out.at(c.route.clone(), format!("{} has no {field}, {consequence}", container_label(c)));
    }
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, routes, workload};

    const NO_PROBES: &str = "containers:\n  - name: web\n    image: a:1\n";

    #[test]
    fn long_running_workloads_need_it() {
        for kind in ["Deployment", "StatefulSet", "DaemonSet", "Pod"] {
            let msgs = messages(&object_findings(&RULE, &workload(kind, NO_PROBES)));
            assert_eq!(
                msgs,
                vec!["container `web` has no readinessProbe, so it receives traffic before it can serve it"],
                "{kind}"
            );
        }
        assert_eq!(
            routes(&object_findings(&RULE, &workload("Deployment", NO_PROBES))),
            vec!["spec.template.spec.containers[0]"]
        );
    }

    #[test]
    fn run_to_completion_is_exempt() {
        for kind in ["Job", "CronJob"] {
            assert!(messages(&object_findings(&RULE, &workload(kind, NO_PROBES))).is_empty(), "{kind}");
        }
        let pod = workload("Pod", &format!("restartPolicy: Never\n{NO_PROBES}"));
        assert!(messages(&object_findings(&RULE, &pod)).is_empty());
    }

    #[test]
    fn native_sidecar_needs_it_plain_init_does_not() {
        let yaml = workload(
            "Deployment",
            "containers:\n  - name: web\n    image: a:1\n    readinessProbe: {httpGet: {path: /readyz, port: 80}}\n\
             initContainers:\n  - name: migrate\n    image: a:1\n  - name: proxy\n    image: a:1\n    \
             restartPolicy: Always\n",
        );
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].starts_with("sidecar container `proxy` has no readinessProbe"), "{msgs:?}");
    }

    #[test]
    fn null_probe_is_missing() {
        let yaml = workload("Deployment", "containers:\n  - name: web\n    image: a:1\n    readinessProbe: null\n");
        assert_eq!(messages(&object_findings(&RULE, &yaml)).len(), 1);
    }
}
