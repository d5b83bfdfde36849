//! `log-to-file`: a container writes its logs to a file instead of stdout/stderr (redirections, `tee`,
//! log-file flags, `LOG_FILE`-style environment variables).
//!
//! The Kubernetes part is this rule's check. The same detection for a Dockerfile's start command and
//! `ENV` is [`dockerfile_log_files`], for the engine to run once a rule can carry both check kinds.

use super::dockerfile_base_not_minimal::final_chain;
use super::shell_pid1::argv_with_routes;
use super::{Check, DockerfileCx, Emitter, Example, ObjectCx, Rule};
use crate::dockerfile::{Dockerfile, Instruction};
use crate::finding::Severity;
use crate::shell;
use crate::yaml::{Node, Pos};

pub static RULE: Rule = Rule {
    id: "log-to-file",
    section: "Logging",
    severity: Severity::Warning,
    summary: "Container writes its logs to a file instead of stdout/stderr",
    why: "Kubernetes collects whatever a container prints to stdout and stderr and hands it to `kubectl logs` \
and the cluster's log shipper; a file inside the container is invisible to both. Someone then has to \
rotate it, or it fills the container's writable layer or an `emptyDir` until the pod is evicted; it \
disappears with the pod, exactly when you need it to debug a crash; and with several replicas there are \
as many scattered files as pods. Log files are also one more place where sensitive data can be read by \
anyone who gets into the container.",
    fix: "Log to stdout and stderr and let the platform collect them. Remove the redirection, `tee` or \
log-file setting (`--log-file`, `logging.file.name`, `LOG_FILE`), or point it at `/dev/stdout` or \
`/dev/stderr`. For software that insists on a file, symlink that file to `/dev/stdout` in the image (as \
the official nginx image does). Structured (JSON) output on stdout keeps logs searchable once shipped.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "log-to-file/bad",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/log-to-file/bad/deployment.yaml"))],
    },
    good: Example {
        dir: "log-to-file/good",
        files: &[("deployment.yaml", include_str!("../../fixtures/rules/log-to-file/good/deployment.yaml"))],
    },
    check: Check::ObjectAndDockerfile(check, check_dockerfile),
};

/// Where an argv sends logs to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogUse {
    /// Index of the argv word responsible (the flag, or the `sh -c` script).
    pub word: usize,
    /// The file or directory written to.
    pub target: String,
    /// What does it, for the message (`` `--log-file` points at `/var/log/app.log` ``).
    pub how: String,
}

/// Flag names (normalised: no leading dashes, lower case, `_` as `-`) that set a log file or directory.
const LOG_FLAGS: &[&str] = &[
    "log-file",
    "logfile",
    "log-dir",
    "logdir",
    "log-path",
    "logpath",
    "log-file-path",
    "log-filename",
    "log-file-name",
    "error-logfile",
    "access-logfile",
    "error-log-file",
    "access-log-file",
    "logging.file.name",
    "logging.file.path",
    "logging.file",
    "log.file",
];

fn is_bool_like(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "0" | "1")
}

/// A flag value that names a file (not a stream, a device or something we cannot resolve).
fn is_file_value(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty() && !shell::is_log_sink(v) && !v.contains('$') && !v.contains('`') && !is_bool_like(v)
}

/// `--log-file=/x`, `--log-file /x`, `-log_dir /x`, `-Dlogging.file.name=/x`: (word index, target, flag).
fn log_flags(words: &[String]) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if !w.starts_with('-') {
            continue;
        }
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (w.as_str(), None),
        };
        let name = match flag.strip_prefix("-D") {
            Some(property) if property.contains('.') => property,
            _ => flag.trim_start_matches('-'),
        };
        let normalised = name.to_ascii_lowercase().replace('_', "-");
        if !LOG_FLAGS.contains(&normalised.as_str()) {
            continue;
        }
        let value = match inline {
            Some(v) => Some(v),
            None => words.get(i + 1).map(String::as_str).filter(|v| !v.starts_with('-') || *v == "-"),
        };
        if let Some(v) = value.filter(|v| is_file_value(v)) {
            out.push((i, v.to_string(), flag.to_string()));
        }
    }
    out
}

/// Does a path look like a log (`app.log`, `access_log`, `server.log.1`, a `log/` or `logs/` directory)?
fn looks_like_log_path(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    let in_log_dir = p.split('/').rev().skip(1).any(|dir| matches!(dir, "log" | "logs"));
    in_log_dir
        || shell::basename(&p)
            .split(['.', '_', '-'])
            .any(|part| matches!(part, "log" | "logs" | "logfile" | "errorlog" | "accesslog" | "stdout" | "stderr"))
}

/// Environment variable names that configure a log file or directory.
pub(crate) fn is_log_env_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    matches!(
        n.as_str(),
        "LOG_FILE"
            | "LOGFILE"
            | "LOG_PATH"
            | "LOG_DIR"
            | "LOGDIR"
            | "LOG_FILE_PATH"
            | "LOG_FILENAME"
            | "LOGGING_FILE"
            | "LOGGING_FILE_NAME"
            | "LOGGING_FILE_PATH"
    ) || ["_LOG_FILE", "_LOGFILE", "_LOG_PATH", "_LOG_DIR", "_LOG_FILE_PATH", "_LOG_FILENAME"]
        .iter()
        .any(|s| n.ends_with(s))
}

/// An environment value that is a file path (starts with `/` or ends in `.log`) and not a stream.
pub(crate) fn is_log_env_value(value: &str) -> bool {
    let v = value.trim();
    (v.starts_with('/') || v.to_ascii_lowercase().ends_with(".log")) && is_file_value(v)
}

/// Finds where an argv writes logs to files. `long_running` says the last command of a `sh -c` script
/// is the app itself, so any redirection of its output is its log.
pub(crate) fn argv_log_files(argv: &[String], long_running: bool) -> Vec<LogUse> {
    let mut out: Vec<LogUse> = Vec::new();
    let mut push = |u: LogUse| {
        if !out.iter().any(|o| o.word == u.word && o.target == u.target) {
            out.push(u);
        }
    };
    for (word, target, flag) in log_flags(argv) {
        push(LogUse { word, how: format!("`{flag}` points at `{target}`"), target });
    }
    let Some(inv) = shell::shell_invocation(argv) else { return out };
    let commands = shell::parse(inv.script);
    let last = shell::last_command(&commands).and_then(|l| commands.iter().position(|c| std::ptr::eq(c, l)));
    for (i, cmd) in commands.iter().enumerate() {
        let main = long_running && Some(i) == last;
        for r in cmd.file_redirects() {
            if main || r.includes_stderr() || looks_like_log_path(&r.target) {
                let stream = match (r.fd, r.op.starts_with('&') || r.op == ">&") {
                    (_, true) => "stdout and stderr",
                    (Some(2), _) => "stderr",
                    _ => "stdout",
                };
                push(LogUse {
                    word: inv.script_index,
                    how: format!("its script redirects {stream} to `{}`", r.target),
                    target: r.target.clone(),
                });
            }
        }
        for file in cmd.tee_files() {
            if main || looks_like_log_path(file) {
                push(LogUse {
                    word: inv.script_index,
                    how: format!("its script copies output to `{file}` with `tee`"),
                    target: file.to_string(),
                });
            }
        }
        for (_, target, flag) in log_flags(cmd.effective_argv()) {
            push(LogUse { word: inv.script_index, how: format!("`{flag}` points at `{target}`"), target });
        }
    }
    out
}

fn check_dockerfile(cx: &DockerfileCx<'_>, out: &mut Emitter<'_>) {
    for (pos, message) in dockerfile_log_files(cx.dockerfile) {
        out.at_pos(pos, message);
    }
}

fn check(cx: &ObjectCx<'_>, out: &mut Emitter<'_>) {
    let Some(pod) = cx.pod_spec() else { return };
    for c in pod.containers() {
        let words = argv_with_routes(c);
        let argv: Vec<String> = words.iter().map(|(w, _)| w.clone()).collect();
        for u in argv_log_files(&argv, c.is_long_running(pod)) {
            let route = words.get(u.word).map(|(_, r)| r.clone()).unwrap_or_else(|| c.route.clone());
            out.at(route, format!("container `{}` writes logs to a file: {}", c.name, u.how));
        }
        for (i, env) in c.get("env").map(Node::items).unwrap_or_default().iter().enumerate() {
            let name = env.get("name").and_then(Node::as_text).unwrap_or("");
            let Some(value) = env.get("value").and_then(Node::as_text) else { continue };
            if is_log_env_name(name) && is_log_env_value(value) {
                out.at(
                    c.route.key("env").index(i).key("value"),
                    format!("container `{}` writes logs to a file: `{name}` is set to `{}`", c.name, value.trim()),
                );
            }
        }
    }
}

/// The Dockerfile side of this rule: the final image's `ENTRYPOINT`/`CMD` and `ENV` sending logs to a
/// file. `RUN` steps are build-time and not judged; a path that a `RUN ln -s /dev/stdout <path>` links to
/// the output stream is fine.
pub(crate) fn dockerfile_log_files(df: &Dockerfile) -> Vec<(Pos, String)> {
    let instructions: Vec<&Instruction> = final_chain(df).into_iter().flat_map(|s| df.stage_instructions(s)).collect();
    let mut linked: std::collections::HashSet<String> = std::collections::HashSet::new();
    for inst in instructions.iter().filter(|i| i.keyword == "RUN") {
        for cmd in shell::dockerfile_scripts(inst).into_iter().flat_map(shell::parse) {
            let argv = cmd.effective_argv();
            let symbolic = argv.iter().skip(1).any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('s'))
                || argv.iter().any(|w| w == "--symbolic");
            if argv.first().map(|w| shell::basename(w)) != Some("ln") || !symbolic {
                continue;
            }
            let operands: Vec<&String> = argv.iter().skip(1).filter(|w| !w.starts_with('-')).collect();
            if let [source, links @ ..] = operands.as_slice()
                && shell::is_log_sink(source)
            {
                linked.extend(links.iter().map(|l| l.to_string()));
            }
        }
    }
    let mut out = Vec::new();
    for inst in instructions.iter().filter(|i| i.keyword == "ENV") {
        for (name, value) in shell::env_assignments(&inst.args) {
            if is_log_env_name(&name) && is_log_env_value(&value) && !linked.contains(&value) {
                out.push((inst.pos(), format!("`ENV {name}` sends logs to the file `{value}`")));
            }
        }
    }
    for keyword in ["ENTRYPOINT", "CMD"] {
        let Some(inst) = instructions.iter().rev().find(|i| i.keyword == keyword) else { continue };
        let argv = match &inst.exec {
            Some(list) => list.clone(),
            None if inst.args.trim().is_empty() => continue,
            None => vec!["/bin/sh".to_string(), "-c".to_string(), inst.args.clone()],
        };
        for u in argv_log_files(&argv, true) {
            if !linked.contains(&u.target) {
                out.push((inst.pos(), format!("`{keyword}` writes logs to a file: {}", u.how)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{deployment, object_findings, routed};

    fn findings(container: &str) -> Vec<String> {
        routed(&object_findings(&RULE, &deployment(container)))
    }

    #[test]
    fn flags() {
        let f = findings("command: [\"/app/server\", \"--log-file=/var/log/app.log\"]");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("spec.template.spec.containers[0].command[1] "), "{f:?}");
        assert!(f[0].contains("`--log-file` points at `/var/log/app.log`"));
        for args in [
            "[\"--log_dir\", \"/tmp/logs\"]",
            "[\"-log_file=/data/app\"]",
            "[\"-Dlogging.file.name=/var/log/app.log\", \"-jar\", \"app.jar\"]",
            "[\"--logging.file.path=/logs\"]",
            "[\"--logfile\", \"server.log\"]",
        ] {
            assert_eq!(findings(&format!("args: {args}")).len(), 1, "{args}");
        }
        for args in [
            "[\"--log-file=/dev/stdout\"]",
            "[\"--log-file\", \"-\"]",
            "[\"--access-logfile\", \"-\", \"--error-logfile\", \"-\"]",
            "[\"--log-file\"]",
            "[\"--log-file\", \"--verbose\"]",
            "[\"--log-level=debug\", \"--log-format=json\"]",
            "[\"--log-file=$(LOG_FILE)\"]",
        ] {
            assert!(findings(&format!("args: {args}")).is_empty(), "{args}");
        }
    }

    #[test]
    fn redirections_and_tee() {
        let f = findings("command: [\"sh\", \"-c\", \"exec ./server >> /var/log/server.out 2>&1\"]");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("spec.template.spec.containers[0].command[2] "), "{f:?}");
        assert!(f[0].contains("redirects stdout to `/var/log/server.out`"));
        let f = findings("command: [\"sh\", \"-c\"]\nargs: [\"./server 2>&1 | tee -a /data/server.txt\"]");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("spec.template.spec.containers[0].args[0] "), "{f:?}");
        assert_eq!(findings("command: [\"sh\", \"-c\", \"exec ./server 2>/tmp/err\"]").len(), 1);
        assert_eq!(findings("command: [\"bash\", \"-c\", \"exec ./server &> /tmp/all\"]").len(), 1);
    }

    #[test]
    fn streams_and_non_log_files_pass() {
        for container in [
            "command: [\"sh\", \"-c\", \"exec ./server 2>&1\"]",
            "command: [\"sh\", \"-c\", \"exec ./server > /dev/stdout 2> /dev/stderr\"]",
            "command: [\"sh\", \"-c\", \"exec ./server >> /proc/1/fd/1\"]",
            "command: [\"sh\", \"-c\", \"exec ./server > /dev/null\"]",
            "command: [\"sh\", \"-c\", \"echo \\\"$CONFIG\\\" > /etc/app/config.yaml && exec ./server\"]",
            "command: [\"sh\", \"-c\", \"exec ./server > \\\"$OUT\\\"\"]",
            "command: [\"./server\", \">\", \"/var/log/x.log\"]",
        ] {
            assert!(findings(container).is_empty(), "{container}: {:?}", findings(container));
        }
    }

    #[test]
    fn log_like_paths() {
        for p in ["/var/log/app.txt", "logs/out", "/tmp/access_log", "/tmp/server.log.1", "app-stderr.txt"] {
            assert!(looks_like_log_path(p), "{p}");
        }
        for p in ["/etc/catalog.json", "/srv/login.html", "/shared/config.yaml", "/tmp/blog"] {
            assert!(!looks_like_log_path(p), "{p}");
        }
    }

    #[test]
    fn environment() {
        let f = findings(
            "env:\n  - name: LOG_FILE\n    value: /var/log/app.log\n  - name: APP_LOG_PATH\n    value: app.log\n  - name: NGINX_LOG_DIR\n    value: /dev/stdout\n  - name: LOG_LEVEL\n    value: /info\n  - name: LOG_FILE_SECRET\n    valueFrom: {secretKeyRef: {name: s, key: k}}",
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].starts_with("spec.template.spec.containers[0].env[0].value "));
        assert!(f[1].contains("`APP_LOG_PATH` is set to `app.log`"));
    }

    #[test]
    fn init_containers_only_count_log_like_files() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: n\nspec:\n  initContainers:\n    - name: init\n      command: [\"sh\", \"-c\", \"render > /shared/config.yaml\"]\n    - name: init2\n      command: [\"sh\", \"-c\", \"migrate > /shared/migrate.log\"]\n  containers:\n    - name: app\n      command: [\"./server\"]\n";
        let f = object_findings(&RULE, pod);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("init2"));
    }

    #[test]
    fn dockerfile_detection() {
        let df = crate::dockerfile::parse(
            "FROM alpine:3.20\nENV LOG_FILE=/var/log/app.log LEVEL=info\nCMD ./server >> /var/log/server.log 2>&1\n",
        );
        let f = dockerfile_log_files(&df);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].0.line, 2);
        assert_eq!(f[1].0.line, 3);
        let df =
            crate::dockerfile::parse("FROM alpine:3.20\nENTRYPOINT [\"/app\", \"--log-file\", \"/logs/app.log\"]\n");
        assert_eq!(dockerfile_log_files(&df).len(), 1);
        let df = crate::dockerfile::parse(
            "FROM nginx:1.27-alpine\nRUN ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log\nENV ACCESS_LOG_FILE=/var/log/nginx/access.log\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
        );
        assert!(dockerfile_log_files(&df).is_empty());
        let df = crate::dockerfile::parse("FROM alpine:3.20\nRUN ./build > /tmp/build.log\nCMD [\"/app\"]\nCMD\n");
        assert!(dockerfile_log_files(&df).is_empty());
        assert!(dockerfile_log_files(&crate::dockerfile::parse("")).is_empty());
    }
}
