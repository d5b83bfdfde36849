//! `dockerfile-shell-form-cmd`: the image's start command runs under `/bin/sh -c`, so the app is not
//! PID 1 and does not receive SIGTERM.

use super::dockerfile_base_not_minimal::final_chain;
use super::{Check, DockerfileCx, Emitter, Example, Rule};
use crate::dockerfile::Instruction;
use crate::finding::Severity;
use crate::shell;

pub static RULE: Rule = Rule {
    id: "dockerfile-shell-form-cmd",
    section: "Graceful Shutdowns",
    severity: Severity::Warning,
    summary: "`CMD`/`ENTRYPOINT` in shell form: the app is not PID 1 and never sees SIGTERM",
    why: "Written without brackets (`CMD node server.js`), the start command is wrapped in `/bin/sh -c`, so \
the shell becomes PID 1 and the app runs as its child. When Kubernetes stops the pod it sends SIGTERM to \
PID 1 only; `sh` does not pass it on, so the app never learns it should stop, keeps taking requests, and is \
killed with SIGKILL when the grace period runs out. In-flight requests fail and nothing is cleaned up, on \
every rollout and every scale-down.",
    fix: "Use the exec form, a JSON array, so the app itself is PID 1: `CMD [\"node\", \"server.js\"]`. If \
you need shell features (variables, `&&`), put them in an entrypoint script that ends with `exec \"$@\"` or \
`exec <app>`, or prefix the last command with `exec` (`CMD exec node server.js`). Then make sure the app \
handles SIGTERM by finishing in-flight work and exiting.",
    secret: false,
    options: &[],
    suggest: Some(suggest),
    bad: Example {
        dir: "dockerfile-shell-form-cmd/bad",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-shell-form-cmd/bad/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-shell-form-cmd/bad/Dockerfile")),
        ],
    },
    good: Example {
        dir: "dockerfile-shell-form-cmd/good",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-shell-form-cmd/good/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-shell-form-cmd/good/Dockerfile")),
        ],
    },
    check: Check::Dockerfile(check),
};

/// The program a script ends up running last, by base name, for messages.
fn last_program(commands: &[shell::SimpleCommand]) -> String {
    shell::last_command(commands)
        .and_then(|c| c.effective_argv().first())
        .map(|w| shell::basename(w).to_string())
        .filter(|w| !w.is_empty() && !w.contains('$'))
        .map(|w| format!("`{w}`"))
        .unwrap_or_else(|| "the app".to_string())
}

/// The exec-form rewrite of a shell-form command, when it is one plain command without shell features.
fn exec_form_rewrite(keyword: &str, text: &str, commands: &[shell::SimpleCommand]) -> Option<String> {
    let [only] = commands else { return None };
    if !only.redirects.is_empty()
        || !only.assignments().is_empty()
        || only.sep.is_some()
        || text.contains(['$', '`', '*', '?', '~', '{'])
        || text.len() > 120
        || shell::mentions_secret(text)
    {
        return None;
    }
    let json = serde_json::to_string(only.argv()).ok()?;
    Some(format!("{keyword} {}", json.replace("\",\"", "\", \"")))
}

/// Why this start command keeps the app from being PID 1, if it does.
fn judge(inst: &Instruction) -> Option<String> {
    let keyword = inst.keyword.as_str();
    match &inst.exec {
        Some(argv) => {
            let inv = shell::shell_invocation(argv)?;
            let commands = shell::parse(inv.script);
            if commands.is_empty() || shell::ends_in_exec(&commands) || shell::traps_term(&commands) {
                return None;
            }
            Some(format!(
                "`{keyword}` runs its command through `{} -c`, so the shell is PID 1 and {} never receives SIGTERM; \
                 start the last command with `exec` or drop the shell",
                shell::basename(&argv[inv.shell_index]),
                last_program(&commands)
            ))
        }
        None => {
            let text = inst.args.trim();
            let commands = shell::parse(text);
            if commands.is_empty() || shell::ends_in_exec(&commands) {
                return None;
            }
            let rewrite = match exec_form_rewrite(keyword, text, &commands) {
                Some(r) => format!("write it as `{r}`"),
                None => "use the JSON exec form, or a script that ends with `exec`".to_string(),
            };
            Some(format!(
                "`{keyword}` is in shell form, so `/bin/sh -c` is PID 1 and {} never receives SIGTERM; {rewrite}",
                last_program(&commands)
            ))
        }
    }
}

fn check(cx: &DockerfileCx<'_>, out: &mut Emitter<'_>) {
    let df = cx.dockerfile;
    let instructions: Vec<&Instruction> = final_chain(df).into_iter().flat_map(|s| df.stage_instructions(s)).collect();
    let last = |keyword: &str| instructions.iter().rev().find(|i| i.keyword == keyword).copied();
    // `ENTRYPOINT []` clears the entrypoint: the `CMD` is then what runs.
    let entrypoint =
        last("ENTRYPOINT").filter(|e| e.exec.as_ref().map_or(!e.args.trim().is_empty(), |v| !v.is_empty()));
    match (entrypoint, last("CMD")) {
        (Some(entrypoint), cmd) => {
            if let Some(message) = judge(entrypoint) {
                out.at_pos(entrypoint.pos(), message);
            } else if entrypoint.exec.is_some()
                && let Some(cmd) = cmd
                && cmd.exec.is_none()
                && !cmd.args.trim().is_empty()
            {
                out.at_pos(
                    cmd.pos(),
                    "`CMD` is in shell form, so the `ENTRYPOINT` receives `/bin/sh -c …` as its arguments and the \
                     app runs under a shell that never forwards SIGTERM; write `CMD` as a JSON array",
                );
            }
        }
        (None, Some(cmd)) => {
            if let Some(message) = judge(cmd) {
                out.at_pos(cmd.pos(), message);
            }
        }
        (None, None) => {}
    }
}

/// The fix: a one-line shell-form `CMD`/`ENTRYPOINT` of one plain command, written in exec form.
fn suggest(cx: &super::fix::FixCx<'_>) -> Option<super::fix::Suggestion> {
    let line = cx.text()?;
    let indent = &line[..line.len() - line.trim_start().len()];
    let (keyword, args) = line.trim().split_once(char::is_whitespace)?;
    let keyword = keyword.to_ascii_uppercase();
    let args = args.trim();
    if !matches!(keyword.as_str(), "CMD" | "ENTRYPOINT") || args.starts_with('[') || args.ends_with('\\') {
        return None;
    }
    let commands = shell::parse(args);
    Some(cx.replace_line(format!("{indent}{}", exec_form_rewrite(&keyword, args, &commands)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{dockerfile_findings, numbered};

    fn findings(text: &str) -> Vec<String> {
        numbered(&dockerfile_findings(&RULE, text))
    }

    #[test]
    fn shell_form_is_flagged_with_a_rewrite() {
        let f = findings("FROM alpine:3.20\nCMD node server.js --port 8080\n");
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("2: "));
        assert!(f[0].contains(r#"`CMD ["node", "server.js", "--port", "8080"]`"#), "{f:?}");
        let f = findings("FROM alpine:3.20\nENTRYPOINT /app/server\n");
        assert!(f[0].contains(r#"`ENTRYPOINT ["/app/server"]`"#), "{f:?}");
    }

    #[test]
    fn shell_features_get_generic_advice() {
        let f = findings("FROM alpine:3.20\nCMD ./migrate && ./server --port $PORT\n");
        assert_eq!(f.len(), 1);
        assert!(
            f[0].contains("`server` never receives SIGTERM") && f[0].contains("script that ends with `exec`"),
            "{f:?}"
        );
    }

    #[test]
    fn secrets_are_not_quoted() {
        let f = findings("FROM alpine:3.20\nCMD app --password hunter2\n");
        assert_eq!(f.len(), 1);
        assert!(!f[0].contains("hunter2"), "{f:?}");
    }

    #[test]
    fn only_the_last_start_command_counts() {
        assert!(findings("FROM alpine:3.20\nCMD app\nCMD [\"app\"]\n").is_empty());
        assert_eq!(findings("FROM alpine:3.20\nCMD [\"app\"]\nCMD app\n").len(), 1);
        // Earlier stages do not ship.
        assert!(findings("FROM alpine:3.20 AS a\nCMD app\nFROM scratch\nCMD [\"/app\"]\n").is_empty());
        // The final stage inherits from the stage it is built on.
        assert_eq!(findings("FROM alpine:3.20 AS base\nCMD app\nFROM base\nRUN true\n").len(), 1);
    }

    #[test]
    fn exec_and_exec_form_pass() {
        for text in [
            "FROM alpine:3.20\nCMD [\"node\", \"server.js\"]\n",
            "FROM alpine:3.20\nCMD exec node server.js\n",
            "FROM alpine:3.20\nCMD ./migrate && exec ./server\n",
            "FROM alpine:3.20\nCMD [\"/bin/sh\", \"-c\", \"./migrate && exec ./server\"]\n",
            "FROM alpine:3.20\nENTRYPOINT [\"/entrypoint.sh\"]\nCMD [\"server\"]\n",
            "FROM alpine:3.20\nCMD []\n",
            "FROM alpine:3.20\nCMD\n",
            "",
        ] {
            assert!(findings(text).is_empty(), "{text}: {:?}", findings(text));
        }
    }

    #[test]
    fn sh_c_in_exec_form() {
        let f = findings("FROM alpine:3.20\nCMD [\"/bin/sh\", \"-c\", \"./migrate && ./server\"]\n");
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("`sh -c`") && f[0].contains("`server`"), "{f:?}");
    }

    #[test]
    fn odd_dockerfiles_do_not_panic() {
        let alphabet = [
            "FROM ",
            "CMD ",
            "ENTRYPOINT ",
            "RUN ",
            "COPY ",
            "ENV ",
            "ARG ",
            " AS b",
            "b",
            "node:20",
            "\\\n",
            "\n",
            "[",
            "]",
            "\"",
            "'",
            "sh -c ",
            "exec ",
            "$",
            "=",
            ". ",
            "--from=b ",
            "--mount=type=cache,target=/x ",
            "apt-get install ",
            "<<EOF\n",
            "EOF\n",
            "> /var/log/a.log",
            "é",
        ];
        let rules = [
            &RULE,
            &super::super::dockerfile_base_not_minimal::RULE,
            &super::super::dockerfile_single_stage_build::RULE,
            &super::super::dockerfile_package_cache::RULE,
            &super::super::dockerfile_no_dockerignore::RULE,
        ];
        for text in crate::shell::tests::odd_strings(5_000, &alphabet) {
            for rule in rules {
                let _ = dockerfile_findings(rule, &text);
            }
            let _ = super::super::log_to_file::dockerfile_log_files(&crate::dockerfile::parse(&text));
        }
    }

    #[test]
    fn empty_entrypoint_leaves_the_cmd() {
        assert_eq!(findings("FROM alpine:3.20\nENTRYPOINT []\nCMD app\n").len(), 1);
    }

    #[test]
    fn shell_form_cmd_after_exec_entrypoint() {
        let f = findings("FROM alpine:3.20\nENTRYPOINT [\"/entrypoint.sh\"]\nCMD server --port 80\n");
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("3: "));
    }
}
