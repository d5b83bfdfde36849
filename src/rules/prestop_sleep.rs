//! `prestop-sleep`: a `preStop` hook that does nothing but sleep.

use super::shell_pid1::words;
use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::shell;
use crate::yaml::Node;

pub static RULE: Rule = Rule {
    id: "prestop-sleep",
    section: "Graceful Shutdowns",
    severity: Severity::Warning,
    summary: "`preStop` hook only sleeps instead of the app handling SIGTERM",
    why: "A `preStop` that only runs `sleep` delays SIGTERM by a fixed amount and does nothing else: the app \
still shuts down however it happens to shut down, just later, and every rollout and scale-down gets that \
much slower. The guess is wrong in both directions, too short under load and pure waiting when idle, and \
it eats into `terminationGracePeriodSeconds`, which leaves the app less time for its real cleanup. A short \
sleep is sometimes used on purpose, to give load balancers and kube-proxy time to drop the pod's endpoint \
before the app stops accepting connections; that is why this is a warning that a team can waive with its \
reason, rather than an error.",
    fix: "Remove the sleep and make the app handle SIGTERM: stop accepting new work, finish in-flight \
requests, close connections and exit within the grace period. If you need to wait for endpoint removal, \
do it in the app's SIGTERM handler (keep serving for a few seconds while readiness fails) or document the \
reason with a waiver (`# kpath:ignore prestop-sleep <reason>`). Use `preStop` for real work, such as \
telling a proxy to drain (`nginx -s quit`).",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "prestop-sleep/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/prestop-sleep/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "prestop-sleep/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/prestop-sleep/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

/// If every command of an exec hook is `sleep`, the duration(s) it sleeps (`10`, `5s`).
fn only_sleeps(argv: &[String]) -> Option<String> {
    let commands: Vec<Vec<String>> = match shell::shell_invocation(argv) {
        Some(inv) => shell::parse(inv.script).iter().map(|c| c.effective_argv().to_vec()).collect(),
        None => vec![argv.to_vec()],
    };
    let mut durations = Vec::new();
    for argv in &commands {
        if argv.is_empty() {
            continue;
        }
        if shell::basename(&argv[0]) != "sleep" {
            return None;
        }
        durations.extend(argv.iter().skip(1).filter(|w| !w.starts_with('-')).cloned());
    }
    if commands.iter().all(Vec::is_empty) {
        return None;
    }
    Some(durations.join(" "))
}

fn describe(duration: &str) -> String {
    let d = duration.trim();
    if d.is_empty() || d.len() > 20 || d.contains('$') {
        String::new()
    } else if d.bytes().all(|b| b.is_ascii_digit()) {
        format!(" for {d}s")
    } else {
        format!(" for {d}")
    }
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for c in pod.containers() {
        let Some(hook) = c.node.get_path(&["lifecycle", "preStop"]) else { continue };
        let route = c.route.key("lifecycle").key("preStop");
        if let Some(sleep) = hook.get("sleep") {
            let seconds = sleep.get("seconds").and_then(Node::as_text).unwrap_or("");
            out.at(
                route.key("sleep"),
                format!("container `{}` has a `preStop` hook that only sleeps{}", c.name, describe(seconds)),
            );
            continue;
        }
        let argv = words(hook.get_path(&["exec", "command"]));
        if let Some(duration) = only_sleeps(&argv) {
            out.at(
                route.key("exec").key("command"),
                format!("container `{}` has a `preStop` hook that only sleeps{}", c.name, describe(&duration)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{deployment, object_findings, routed};

    fn findings(container: &str) -> Vec<String> {
        routed(&object_findings(&RULE, &deployment(container)))
    }

    #[test]
    fn sleeping_hooks() {
        let f = findings("lifecycle:\n  preStop:\n    exec:\n      command: [\"/bin/sh\", \"-c\", \"sleep 10\"]");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("spec.template.spec.containers[0].lifecycle.preStop.exec.command "), "{f:?}");
        assert!(f[0].ends_with("only sleeps for 10s"), "{f:?}");
        let f = findings("lifecycle:\n  preStop:\n    exec:\n      command: [\"sleep\", \"5\"]");
        assert_eq!(f.len(), 1);
        let f = findings("lifecycle:\n  preStop:\n    sleep:\n      seconds: 15");
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("spec.template.spec.containers[0].lifecycle.preStop.sleep "), "{f:?}");
        assert!(f[0].ends_with("for 15s"));
        assert_eq!(
            findings("lifecycle:\n  preStop:\n    exec:\n      command: [\"sh\", \"-c\", \"sleep 5; sleep 5\"]").len(),
            1
        );
    }

    #[test]
    fn real_work_passes() {
        for container in [
            "lifecycle:\n  preStop:\n    exec:\n      command: [\"sh\", \"-c\", \"sleep 5 && nginx -s quit\"]",
            "lifecycle:\n  preStop:\n    exec:\n      command: [\"/app/drain\"]",
            "lifecycle:\n  preStop:\n    httpGet:\n      path: /drain\n      port: 8080",
            "lifecycle:\n  preStop:\n    exec:\n      command: []",
            "lifecycle:\n  preStop:\n    exec:\n      command: [\"sh\", \"-c\", \"\"]",
            "lifecycle:\n  preStop: {}",
            "lifecycle:\n  postStart:\n    exec:\n      command: [\"sleep\", \"1\"]",
        ] {
            assert!(findings(container).is_empty(), "{container}: {:?}", findings(container));
        }
    }
}
