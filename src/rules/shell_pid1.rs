//! `shell-pid1`: a long-running container starts its app through `sh -c` without `exec`, so the shell,
//! not the app, receives SIGTERM.

use super::{Check, Emitter, Example, ObjectCx, Rule};
use crate::finding::Severity;
use crate::model::Container;
use crate::shell;
use crate::yaml::{Node, Route};

pub static RULE: Rule = Rule {
    id: "shell-pid1",
    section: "Graceful Shutdowns",
    severity: Severity::Warning,
    summary: "Container runs its app through `sh -c` without `exec`: the shell gets SIGTERM, not the app",
    why: "With `command: [\"sh\", \"-c\", \"./migrate && ./server\"]` the shell is the container's PID 1 and \
the server is its child. On a rollout or scale-down the kubelet signals PID 1; the shell neither handles \
SIGTERM nor forwards it, so the server keeps running as if nothing happened until the grace period ends \
and SIGKILL stops it mid-request. `exec` replaces the shell with the app for the last step, so the signal \
reaches the process that can shut down cleanly. bash is the exception for a script of one simple command \
without redirections (`bash -c \"./server --port 80\"`): it replaces itself with that command, so it is not \
reported; `sh` is not, because on Debian and Ubuntu images it is dash, which forks and waits even then.",
    fix: "Start the last command of the script with `exec` (`./migrate && exec ./server`), or drop the shell \
and list the program and its arguments directly in `command`/`args`. If the script must keep running after \
the app starts, trap TERM and forward it to the child (`trap 'kill -TERM $pid' TERM; ./server & pid=$!; \
wait $pid`), or run a small init such as `tini` as PID 1.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "shell-pid1/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/shell-pid1/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "shell-pid1/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/shell-pid1/good/deployment.yaml"))],
    },
    check: Check::Object(check),
};

/// The words of a `command` or `args` list (a lone string counts as one word).
pub(crate) fn words(node: Option<&Node>) -> Vec<String> {
    match node {
        Some(n) if n.is_seq() => n.items().iter().map(|i| i.as_text().unwrap_or("").to_string()).collect(),
        Some(n) => n.as_text().filter(|t| !t.is_empty()).map(|t| vec![t.to_string()]).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// A container's `command` and `args` joined, with the route of each word.
pub(crate) fn argv_with_routes(c: &Container<'_>) -> Vec<(String, Route)> {
    let mut out = Vec::new();
    for field in ["command", "args"] {
        let node = c.get(field);
        let list_route = c.route.key(field);
        let is_seq = node.is_some_and(Node::is_seq);
        for (i, w) in words(node).into_iter().enumerate() {
            let route = if is_seq { list_route.index(i) } else { list_route.clone() };
            out.push((w, route));
        }
    }
    out
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for c in pod.containers() {
        if !c.is_long_running(pod) {
            continue;
        }
        let command_len = words(c.get("command")).len();
        let argv: Vec<String> = argv_with_routes(c).into_iter().map(|(w, _)| w).collect();
        let Some(inv) = shell::shell_invocation(&argv) else { continue };
        let commands = shell::parse(inv.script);
        if commands.is_empty() || shell::ends_in_exec(&commands) || shell::traps_term(&commands) {
            continue;
        }
        let shell_name = shell::basename(&argv[inv.shell_index]);
        let lone = shell::lone_command(inv.script);
        // bash (and busybox ash) replace themselves with a script's only command: the app is PID 1.
        if lone
            .as_ref()
            .is_some_and(|c| shell::execs_lone_command(shell_name, &argv[inv.shell_index + 1..inv.script_index], c))
        {
            continue;
        }
        let program = shell::last_command(&commands)
            .and_then(|cmd| cmd.effective_argv().first())
            .map(|w| shell::basename(w))
            .filter(|w| !w.is_empty() && !w.contains('$'))
            .map(|w| format!("`{w}`"))
            .unwrap_or_else(|| "the app".to_string());
        let field = if inv.script_index < command_len { "command" } else { "args" };
        let message = format!(
            "container `{}` runs `{shell_name} -c` and the script's last command is not `exec`-ed, so the shell is \
             PID 1 and {program} never receives SIGTERM",
            c.name,
        );
        match (&lone, shell_name) {
            // A lone command: which shell `sh` is decides, and on Debian and Ubuntu images it is dash, which forks.
            (Some(_), "sh" | "dash") => out.at_with_help(
                c.route.key(field),
                message,
                format!(
                    "Write `exec` before the command, or list the program and its arguments in `command`/`args` \
                     directly: `{shell_name}` is dash on Debian and Ubuntu images, and dash forks and waits even \
                     for a script of one command (bash and busybox would not)."
                ),
            ),
            _ => out.at(c.route.key(field), message),
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
    fn shell_without_exec() {
        let f = findings("command: [\"/bin/sh\", \"-c\"]\nargs: [\"./migrate && ./server --port 80\"]");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("spec.template.spec.containers[0].args "), "{f:?}");
        assert!(f[0].contains("`server`"));
        let f = findings("command: [\"bash\", \"-ec\", \"./migrate; nginx -g 'daemon off;'\"]");
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("spec.template.spec.containers[0].command "), "{f:?}");
        let f = findings("command:\n  - sh\n  - -c\n  - |\n    set -e\n    ./server &\n    wait\n");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn exec_or_no_shell_passes() {
        for container in [
            "command: [\"sh\", \"-c\", \"exec ./server\"]",
            "command: [\"sh\", \"-c\"]\nargs: [\"./migrate && exec ./server\"]",
            "command: [\"./server\", \"--port\", \"80\"]",
            "command: [\"tini\", \"--\", \"sh\", \"-c\", \"./server\"]",
            "command: [\"sh\", \"-c\", \"trap 'kill -TERM $p' TERM; ./server & p=$!; wait $p\"]",
            "command: [\"sh\", \"script.sh\"]",
            "command: [\"sh\", \"-c\"]",
            "command: [\"sh\", \"-c\", \"\"]",
            "command: []",
            "command: sh",
        ] {
            assert!(findings(container).is_empty(), "{container}: {:?}", findings(container));
        }
    }

    #[test]
    fn shells_that_exec_a_lone_command() {
        // bash and busybox ash replace themselves with a script's only command: the app is PID 1.
        for container in [
            "command: [\"bash\", \"-c\", \"./server --port 80\"]",
            "command: [\"/bin/bash\", \"-ec\"]\nargs: [\"FOO=1 nginx -g 'daemon off;'\"]",
            "command: [\"bash\", \"-c\", \"./server $(cat /etc/flags) \\\"$@\\\"\\n\"]",
            "command: [\"bash\", \"-o\", \"pipefail\", \"-c\", \"./server # starts the app\"]",
            "command: [\"ash\", \"-c\", \"./server > /tmp/out\"]",
        ] {
            assert!(findings(container).is_empty(), "{container}: {:?}", findings(container));
        }
        // What keeps the shell running: lists, pipelines, background, subshells, redirections (bash),
        // builtins, a login shell, and `sh`/`dash`, which is dash on Debian and forks even for one command.
        for container in [
            "command: [\"bash\", \"-c\", \"./migrate && ./server\"]",
            "command: [\"bash\", \"-c\", \"./server | tee /dev/stderr\"]",
            "command: [\"bash\", \"-c\", \"./server &\"]",
            "command: [\"bash\", \"-c\", \"(./server)\"]",
            "command: [\"bash\", \"-c\", \"{ ./server; }\"]",
            "command: [\"bash\", \"-c\", \"./server 2>&1\"]",
            "command: [\"bash\", \"-c\", \". /etc/profile.d/app.sh\"]",
            "command: [\"bash\", \"-lc\", \"./server\"]",
            "command: [\"bash\", \"--login\", \"-c\", \"./server\"]",
            "command: [\"bash\", \"-c\", \"while true; do ./server; done\"]",
            "command: [\"sh\", \"-c\", \"./server\"]",
            "command: [\"dash\", \"-c\", \"./server\"]",
        ] {
            assert_eq!(findings(container).len(), 1, "{container}");
        }
        let found = object_findings(&RULE, &deployment("command: [\"sh\", \"-c\", \"./server\"]"));
        assert!(found[0].help.contains("dash on Debian"), "{:?}", found[0].help);
    }

    #[test]
    fn jobs_and_init_containers_are_skipped() {
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  namespace: n\nspec:\n  template:\n    spec:\n      containers:\n        - name: j\n          command: [\"sh\", \"-c\", \"./migrate\"]\n";
        assert!(object_findings(&RULE, job).is_empty());
        let init = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: n\nspec:\n  initContainers:\n    - name: i\n      command: [\"sh\", \"-c\", \"./migrate\"]\n  containers:\n    - name: app\n      command: [\"./server\"]\n";
        assert!(object_findings(&RULE, init).is_empty());
    }
}
