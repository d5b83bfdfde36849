//! `probe-liveness-missing`: a long-running container without a liveness probe.

use super::probe_readiness_missing::missing_probe;
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "probe-liveness-missing",
    section: "Healthchecks",
    severity: Severity::Error,
    summary: "Long-running container has no livenessProbe",
    why: "Kubernetes restarts a container on its own only when the process exits. An app that deadlocks, \
exhausts a thread pool or wedges its event loop keeps running, so without a liveness probe it stays in \
place, holding its share of the capacity and never recovering until someone notices and deletes the pod. \
A liveness probe turns that silent hang into an automatic restart. Kept cheap and free of dependency \
checks, it restarts only the container that is actually broken.",
    fix: "Add a `livenessProbe` to every long-running container that calls a cheap endpoint (conventionally \
`/healthz`) which answers as long as the process can still handle a request. Do not check databases or \
other services there: that belongs in the readiness probe. Give it a generous `initialDelaySeconds` or a \
`startupProbe` so slow starts are not killed, and a `failureThreshold` above 1.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "probe-liveness-missing/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/probe-liveness-missing/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "probe-liveness-missing/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/probe-liveness-missing/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    missing_probe(cx, out, "livenessProbe", "so a hung or deadlocked process is never restarted");
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, workload};

    const NO_PROBES: &str = "containers:\n  - name: web\n    image: a:1\n";

    #[test]
    fn long_running_workloads_need_it() {
        assert_eq!(
            messages(&object_findings(&RULE, &workload("Deployment", NO_PROBES))),
            vec!["container `web` has no livenessProbe, so a hung or deadlocked process is never restarted"]
        );
    }

    #[test]
    fn jobs_cronjobs_and_init_containers_are_exempt() {
        for kind in ["Job", "CronJob"] {
            assert!(messages(&object_findings(&RULE, &workload(kind, NO_PROBES))).is_empty(), "{kind}");
        }
        let yaml = workload(
            "Deployment",
            "containers:\n  - name: web\n    image: a:1\n    livenessProbe: {httpGet: {path: /healthz, port: 80}}\n\
             initContainers:\n  - name: migrate\n    image: a:1\n  - name: proxy\n    image: a:1\n    \
             restartPolicy: Always\n",
        );
        let msgs = messages(&object_findings(&RULE, &yaml));
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].starts_with("sidecar container `proxy` has no livenessProbe"), "{msgs:?}");
    }
}
