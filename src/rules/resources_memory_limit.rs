//! `resources-memory-limit`: a container whose memory limit is missing or differs from its request.

use super::resources_requests_missing::{container_label, quantity, resource};
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "resources-memory-limit",
    section: "Resource Limits and Requests",
    severity: Severity::Warning,
    summary: "Memory limit is missing or not equal to the memory request",
    why: "Memory cannot be throttled or handed back on demand: once a container holds it, the only way to \
reclaim it is to kill something. A container allowed to grow past its request borrows memory the scheduler \
promised to other pods, and when the node runs short the kernel or the kubelet picks a victim, often a \
well-behaved neighbour. Without any limit one leak can take the whole node down with it. Setting the limit \
equal to the request makes the reservation exact: the container gets what it asked for, and if it needs \
more it is the one that is OOM-killed, visibly.",
    fix: "Set `resources.limits.memory` equal to `resources.requests.memory`. Size the request generously \
from observed peak usage, then copy it into the limit; values are compared as quantities, so `1Gi` and \
`1024Mi` are equal. If the app needs more than that under load, raise both together.",
    secret: false,
    options: &[],
    suggest: Some(suggest),
    bad: Example {
        dir: "resources-memory-limit/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/resources-memory-limit/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "resources-memory-limit/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/resources-memory-limit/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    // A pod-level memory limit (`spec.resources.limits.memory`) bounds containers that set none.
    let pod_limit = resource(pod.get("resources"), "limits", "memory").is_some();
    for c in pod.containers() {
        let resources = c.get("resources");
        let route = c.route.key("resources").key("limits").key("memory");
        let request = resource(resources, "requests", "memory");
        match resource(resources, "limits", "memory") {
            None if pod_limit => {}
            None => {
                let message = match request.and_then(Node::as_text) {
                    Some(req) => format!(
                        "{} has no memory limit: set `resources.limits.memory` to its memory request ({req})",
                        container_label(c)
                    ),
                    None => format!("{} has no memory limit (and no memory request)", container_label(c)),
                };
                out.at(route, message);
            }
            Some(limit) => {
                // No request: the API server copies the limit into it, so they are equal.
                let Some(request) = request else { continue };
                let (Some(l), Some(r)) = (quantity(limit), quantity(request)) else { continue };
                if l != r {
                    let relation = if l > r { "above" } else { "below" };
                    out.at(
                        route,
                        format!(
                            "{}: memory limit {} is {relation} its memory request {}; set them equal",
                            container_label(c),
                            limit.as_text().unwrap_or_default(),
                            request.as_text().unwrap_or_default()
                        ),
                    );
                }
            }
        }
    }
}

/// The fix, on a `memory:` line under `limits:`: the value of `memory:` under the sibling `requests:`.
fn suggest(cx: &super::fix::FixCx<'_>) -> Option<super::fix::Suggestion> {
    let line = cx.text()?;
    let request = super::fix::same_key_under_sibling(cx.head_line, cx.file, cx.line, "limits", "requests")?;
    if super::fix::key_value(&line)?.0 != "memory" {
        return None;
    }
    super::fix::replace_value(&line, &request).map(|text| cx.replace_line(text))
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::rules::testing::{messages, object_findings, routes, workload};

    fn with_resources(resources: &str) -> String {
        let indented: String = resources.lines().map(|l| format!("      {l}\n")).collect();
        workload("Deployment", &format!("containers:\n  - name: web\n    image: a:1\n    resources:\n{indented}"))
    }

    /// The suggestion copies the request into the limit line, whichever block comes first; none when the
    /// request is not a plain value nearby.
    #[test]
    fn suggestion_copies_the_request() {
        let suggest = |text: &str, line: u32| {
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            let head_line = |_: &str, l: u32| lines.get(usize::try_from(l).ok()?.checked_sub(1)?).cloned();
            let finding = crate::finding::Finding {
                rule: RULE.id,
                severity: RULE.severity,
                message: String::new(),
                file: "d.yaml".into(),
                line,
                column: 1,
                route: None,
                object: None,
                help: "".into(),
                suppressed: None,
                locations: Vec::new(),
                environments: Vec::new(),
                document: None,
                origin: None,
                part: None,
            };
            let cx = crate::rules::fix::FixCx {
                finding: &finding,
                file: "d.yaml",
                line,
                kind: "manifest",
                head_line: &head_line,
            };
            super::suggest(&cx)
        };
        let after =
            "resources:\n  requests:\n    cpu: 250m\n    memory: 512Mi\n  limits:\n    memory: 1Gi  # too much\n";
        assert_eq!(suggest(after, 6).map(|s| s.text).as_deref(), Some("    memory: 512Mi  # too much"));
        let before = "resources:\n  limits:\n    memory: 384Mi\n  requests:\n    memory: \"512Mi\"\n";
        assert_eq!(suggest(before, 3).map(|s| s.text).as_deref(), Some("    memory: \"512Mi\""));
        let templated = "resources:\n  requests:\n    memory: {{ .Values.mem }}\n  limits:\n    memory: 1Gi\n";
        assert_eq!(suggest(templated, 5), None);
        let elsewhere = "resources:\n  limits:\n    memory: 1Gi\n---\nrequests:\n  memory: 1Mi\n";
        assert_eq!(suggest(elsewhere, 3), None);
        let flow = "resources:\n  requests: {memory: 1Gi}\n  limits:\n    memory: 2Gi\n";
        assert_eq!(suggest(flow, 4), None);
    }

    #[test]
    fn equal_quantities_in_different_units() {
        assert!(
            messages(&object_findings(&RULE, &with_resources("requests: {memory: 1Gi}\nlimits: {memory: 1024Mi}")))
                .is_empty()
        );
        assert!(
            messages(&object_findings(&RULE, &with_resources("requests: {memory: 1Gi}\nlimits: {memory: 1073741824}")))
                .is_empty()
        );
    }

    #[test]
    fn limit_alone_equals_its_defaulted_request() {
        assert!(messages(&object_findings(&RULE, &with_resources("limits: {memory: 512Mi}"))).is_empty());
    }

    #[test]
    fn different_limit_is_reported_at_the_limit() {
        let yaml = with_resources("requests: {memory: 256Mi}\nlimits: {memory: 1Gi}");
        let found = object_findings(&RULE, &yaml);
        assert_eq!(
            messages(&found),
            vec!["container `web`: memory limit 1Gi is above its memory request 256Mi; set them equal".to_string()]
        );
        assert_eq!(routes(&found), vec!["spec.template.spec.containers[0].resources.limits.memory"]);
    }

    #[test]
    fn missing_limit_names_the_request() {
        let msgs = messages(&object_findings(&RULE, &with_resources("requests: {cpu: 100m, memory: 256Mi}")));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("container `web` has no memory limit") && msgs[0].contains("(256Mi)"), "{msgs:?}");
        let yaml = workload("Job", "containers:\n  - name: batch\n    image: a:1\n");
        assert_eq!(
            messages(&object_findings(&RULE, &yaml)),
            vec!["container `batch` has no memory limit (and no memory request)"]
        );
    }

    #[test]
    fn unparseable_quantities_are_skipped() {
        assert!(
            messages(&object_findings(&RULE, &with_resources("requests: {memory: lots}\nlimits: {memory: 1Gi}")))
                .is_empty()
        );
    }

    #[test]
    fn pod_level_limit_covers_containers() {
        let yaml = workload("Pod", "resources:\n  limits: {memory: 1Gi}\ncontainers:\n  - name: web\n    image: a:1\n");
        assert!(messages(&object_findings(&RULE, &yaml)).is_empty());
    }
}
