//! `dockerfile-package-cache`: a `RUN` in the shipped image installs packages and leaves the package
//! manager's cache behind.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use super::dockerfile_base_not_minimal::final_chain;
use super::{Check, DockerfileCx, Emitter, Example, Rule};
use crate::dockerfile::Instruction;
use crate::finding::Severity;
use crate::shell;

pub static RULE: Rule = Rule {
    id: "dockerfile-package-cache",
    section: "Principle of Least Bloat (PoLB)",
    severity: Severity::Warning,
    summary: "Package manager cache is left in the final image",
    why: "Package managers keep indexes and downloaded archives around so the next install is faster. \
In an image there is no next install: the apt lists, the apk index, pip's wheel cache or npm's `_cacache` \
just sit in a layer, often adding tens or hundreds of megabytes that every node pulls on every rollout. \
Because each `RUN` is its own layer, deleting the cache in a later `RUN` does not help; it has to be gone \
before the layer that created it is committed.",
    fix: "Clean the cache in the same `RUN` that installs: `rm -rf /var/lib/apt/lists/*` after apt-get, \
`apk add --no-cache`, `pip install --no-cache-dir`, `npm cache clean --force`, `dnf clean all`. With \
BuildKit you can instead mount the cache directory (`RUN --mount=type=cache,target=/root/.cache/pip …`) so \
it never lands in a layer. Better still, install in a build stage and copy only what the app needs into a \
minimal final stage.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "dockerfile-package-cache/bad",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-package-cache/bad/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-package-cache/bad/Dockerfile")),
        ],
    },
    good: Example {
        dir: "dockerfile-package-cache/good",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-package-cache/good/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-package-cache/good/Dockerfile")),
        ],
    },
    check: Check::Dockerfile(check),
};

/// One command of a `RUN`: inline `NAME=value` assignments and its argv (without an `exec` prefix).
struct Cmd {
    env: Vec<(String, String)>,
    argv: Vec<String>,
}

impl Cmd {
    fn program(&self) -> &str {
        self.argv.first().map(|w| shell::basename(w)).unwrap_or("")
    }

    /// Words after the program that are not options (nor option values such as `Dpkg::Options::=…`).
    fn operands(&self) -> impl Iterator<Item = &str> {
        self.argv.iter().skip(1).map(String::as_str).filter(|w| !w.starts_with('-') && !w.contains("::"))
    }

    fn subcommand(&self) -> &str {
        self.operands().next().unwrap_or("")
    }

    fn has_word(&self, word: &str) -> bool {
        self.argv.iter().any(|w| w == word || w.strip_prefix(word).is_some_and(|rest| rest.starts_with('=')))
    }

    /// Paths removed by `rm`.
    fn removes(&self, dir: &str) -> bool {
        self.program() == "rm" && self.operands().any(|p| covers(dir, p))
    }
}

fn commands(inst: &Instruction) -> Vec<Cmd> {
    let mut out = Vec::new();
    let push_script = |script: &str, out: &mut Vec<Cmd>| {
        for c in shell::parse(script) {
            let env = c.assignments().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let argv = c.effective_argv();
            let sudo = argv.iter().take_while(|w| shell::basename(w) == "sudo").count();
            let argv = argv[sudo..].to_vec();
            out.push(Cmd { env, argv });
        }
    };
    if let Some(exec) = &inst.exec {
        match shell::shell_invocation(exec) {
            Some(inv) => push_script(inv.script, &mut out),
            None => out.push(Cmd { env: Vec::new(), argv: exec.clone() }),
        }
    }
    for script in shell::dockerfile_scripts(inst) {
        push_script(script, &mut out);
    }
    out
}

/// Does `path` (a removed path or a mount target, maybe with a trailing `/*`) contain `dir`?
fn covers(dir: &str, path: &str) -> bool {
    let path = path.trim_end_matches('*').trim_end_matches('/');
    let path = path.strip_prefix('~').map(|rest| format!("/root{rest}")).unwrap_or_else(|| path.to_string());
    let dir = dir.trim_end_matches('/');
    !path.is_empty() && (dir == path || dir.strip_prefix(path.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

/// Targets of `--mount=type=cache` and `--mount=type=tmpfs`: nothing written there stays in the layer.
fn cache_mounts(inst: &Instruction) -> Vec<String> {
    let mut out = Vec::new();
    for flag in &inst.flags {
        let Some(spec) = flag.strip_prefix("--mount=") else { continue };
        let mut kind = "bind";
        let mut target = None;
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = v,
                Some(("target" | "dst" | "destination", v)) => target = Some(v.to_string()),
                _ => {}
            }
        }
        if matches!(kind, "cache" | "tmpfs")
            && let Some(t) = target
        {
            out.push(t);
        }
    }
    out
}

fn truthy(value: &str) -> bool {
    !matches!(value.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "off" | "no")
}

/// A package-manager call that leaves a cache, and how to avoid it.
struct Leak {
    manager: String,
    remedy: &'static str,
}

/// `pip_no_cache`: the `PIP_NO_CACHE_DIR` the image's environment sets at this `RUN`, if any.
fn leaks(inst: &Instruction, pip_no_cache: Option<&str>) -> Vec<Leak> {
    let cmds = commands(inst);
    let mounts = cache_mounts(inst);
    // Facts about the whole `RUN` are computed once, not once per command: a `RUN` of thousands of
    // commands would otherwise cost their number squared.
    let cleared_dirs: RefCell<HashMap<&str, bool>> = RefCell::new(HashMap::new());
    let cleared = |dir: &'static str| {
        *cleared_dirs
            .borrow_mut()
            .entry(dir)
            .or_insert_with(|| mounts.iter().any(|m| covers(dir, m)) || cmds.iter().any(|c| c.removes(dir)))
    };
    let yum_cleaned = OnceCell::new();
    let npm_cleaned = OnceCell::new();
    let npm_home_cache = OnceCell::new();
    let pip_purged = OnceCell::new();
    let pip_home_cache = OnceCell::new();
    let mut out: Vec<Leak> = Vec::new();
    let mut push = |manager: &str, remedy: &'static str| {
        if !out.iter().any(|l| l.manager == manager) {
            out.push(Leak { manager: manager.to_string(), remedy });
        }
    };
    for c in &cmds {
        let program = c.program();
        let sub = c.subcommand();
        match program {
            "apt-get" | "apt" | "aptitude"
                if matches!(sub, "update" | "install" | "upgrade" | "dist-upgrade" | "full-upgrade" | "build-dep")
                    && !cleared("/var/lib/apt/lists") =>
            {
                push(program, "remove `/var/lib/apt/lists/*` in the same `RUN`");
            }
            "apk"
                if matches!(sub, "add" | "update" | "upgrade")
                    && !c.has_word("--no-cache")
                    && !cleared("/var/cache/apk") =>
            {
                push("apk", "use `apk add --no-cache`");
            }
            "yum" | "dnf" | "microdnf" | "tdnf"
                if matches!(sub, "install" | "update" | "upgrade" | "groupinstall" | "reinstall" | "makecache") =>
            {
                let cleaned = *yum_cleaned.get_or_init(|| {
                    cmds.iter().any(|o| {
                        matches!(o.program(), "yum" | "dnf" | "microdnf" | "tdnf")
                            && o.subcommand() == "clean"
                            && o.operands().any(|w| w == "all")
                    })
                });
                let dirs = ["/var/cache/yum", "/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/tdnf"];
                if !cleaned && !dirs.iter().any(|d| cleared(d)) {
                    push(program, "run `clean all` in the same `RUN`");
                }
            }
            "npm" if matches!(sub, "install" | "i" | "ci" | "add" | "update") => {
                let cleaned = *npm_cleaned.get_or_init(|| {
                    cmds.iter().any(|o| {
                        o.program() == "npm" && o.subcommand() == "cache" && o.operands().nth(1) == Some("clean")
                    })
                });
                let home_cache = *npm_home_cache.get_or_init(|| {
                    mounts.iter().any(|m| m.trim_end_matches('/').ends_with("/.npm"))
                        || cmds.iter().any(|o| {
                            o.program() == "rm"
                                && o.operands().any(|p| {
                                    p.trim_end_matches(['/', '*']).ends_with("/.npm")
                                        || p.trim_end_matches(['/', '*']).ends_with(".npm/_cacache")
                                })
                        })
                });
                if !cleaned && !home_cache && !cleared("/root/.npm") {
                    push("npm", "run `npm cache clean --force` in the same `RUN`");
                }
            }
            _ => {
                if is_pip(&c.argv) && c.operands().any(|w| w == "install") {
                    // An inline `PIP_NO_CACHE_DIR=…` on the command wins over the image's environment.
                    let inline = c.env.iter().rev().find(|(k, _)| k == "PIP_NO_CACHE_DIR").map(|(_, v)| v.as_str());
                    let disabled = c.has_word("--no-cache-dir") || inline.or(pip_no_cache).is_some_and(truthy);
                    let purged = *pip_purged.get_or_init(|| {
                        cmds.iter().any(|o| {
                            is_pip(&o.argv) && o.operands().any(|w| w == "cache") && o.operands().any(|w| w == "purge")
                        })
                    });
                    let home_cache = *pip_home_cache.get_or_init(|| {
                        mounts
                            .iter()
                            .chain(cmds.iter().filter(|o| o.program() == "rm").flat_map(|o| o.argv.iter().skip(1)))
                            .any(|p| {
                                let p = p.trim_end_matches(['/', '*']);
                                p.ends_with("/.cache/pip") || p.ends_with("/.cache")
                            })
                    });
                    if !disabled && !purged && !home_cache && !cleared("/root/.cache/pip") {
                        push(shell::basename(&c.argv[0]), "add `--no-cache-dir` (or set `PIP_NO_CACHE_DIR=1`)");
                    }
                }
            }
        }
    }
    out
}

/// `pip`, `pip3`, `pip3.12`, or `python3 -m pip`.
fn is_pip(argv: &[String]) -> bool {
    let Some(first) = argv.first() else { return false };
    let program = shell::basename(first);
    let versioned = |name: &str, prefix: &str| {
        name.strip_prefix(prefix).is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    versioned(program, "pip")
        || (versioned(program, "python") && argv.windows(2).any(|w| w[0] == "-m" && w[1] == "pip"))
}

fn check(cx: &DockerfileCx<'_>, out: &mut Emitter<'_>) {
    let df = cx.dockerfile;
    // Only `PIP_NO_CACHE_DIR` matters here: keep its latest value rather than the whole environment, so
    // each `RUN` costs the same however many `ENV` lines came before it.
    let mut pip_no_cache: Option<String> = None;
    for stage in final_chain(df) {
        for inst in df.stage_instructions(stage) {
            match inst.keyword.as_str() {
                "ENV" => {
                    if let Some((_, v)) =
                        shell::env_assignments(&inst.args).into_iter().rev().find(|(k, _)| k == "PIP_NO_CACHE_DIR")
                    {
                        pip_no_cache = Some(v);
                    }
                }
                "ARG" => {
                    if let Some((k, v)) = inst.args.trim().split_once('=')
                        && k == "PIP_NO_CACHE_DIR"
                    {
                        pip_no_cache = Some(v.trim_matches(|c| c == '"' || c == '\'').to_string());
                    }
                }
                "RUN" => {
                    let found = leaks(inst, pip_no_cache.as_deref());
                    if found.is_empty() {
                        continue;
                    }
                    let managers: Vec<String> = found.iter().map(|l| format!("`{}`", l.manager)).collect();
                    let remedies: Vec<&str> = found.iter().map(|l| l.remedy).collect();
                    let noun = if found.len() == 1 { "cache" } else { "caches" };
                    out.at_pos(
                        inst.pos(),
                        format!(
                            "this `RUN` leaves the {} package {noun} in the final image; {}",
                            managers.join(" and "),
                            remedies.join("; ")
                        ),
                    );
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{dockerfile_findings, numbered};

    fn findings(text: &str) -> Vec<String> {
        numbered(&dockerfile_findings(&RULE, text))
    }

    fn run(line: &str) -> Vec<String> {
        findings(&format!("FROM debian:bookworm-slim\n{line}\nCMD [\"app\"]\n"))
    }

    #[test]
    fn leaky_installs() {
        for (line, manager) in [
            ("RUN apt-get update && apt-get install -y curl", "`apt-get`"),
            ("RUN DEBIAN_FRONTEND=noninteractive apt-get install -y curl && apt-get clean", "`apt-get`"),
            ("RUN apk add curl", "`apk`"),
            ("RUN apk update && apk add --no-cache curl", "`apk`"),
            ("RUN pip install -r requirements.txt", "`pip`"),
            ("RUN python3 -m pip install flask", "`python3`"),
            ("RUN npm ci --omit=dev", "`npm`"),
            ("RUN dnf install -y git", "`dnf`"),
            ("RUN yum -y install git && yum clean metadata", "`yum`"),
            ("RUN [\"apk\", \"add\", \"curl\"]", "`apk`"),
            ("RUN <<EOF\napt-get update\napt-get install -y curl\nEOF", "`apt-get`"),
            ("RUN sudo apt-get install -y curl", "`apt-get`"),
        ] {
            let f = run(line);
            assert_eq!(f.len(), 1, "{line}: {f:?}");
            assert!(f[0].starts_with("2: ") && f[0].contains(manager), "{line}: {f:?}");
        }
    }

    #[test]
    fn one_finding_naming_every_manager() {
        let f = run("RUN apt-get install -y python3-pip && pip install flask");
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("`apt-get` and `pip`"), "{f:?}");
    }

    #[test]
    fn clean_installs() {
        for line in [
            "RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*",
            "RUN apt-get update \\\n && apt-get install -y curl \\\n && rm -rf /var/lib/apt/lists",
            "RUN --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y curl",
            "RUN apk add --no-cache curl",
            "RUN apk --no-cache add curl",
            "RUN pip install --no-cache-dir -r requirements.txt",
            "RUN PIP_NO_CACHE_DIR=1 pip install flask",
            "RUN --mount=type=cache,target=/root/.cache/pip pip install flask",
            "RUN pip install flask && rm -rf /root/.cache",
            "RUN npm ci --omit=dev && npm cache clean --force",
            "RUN --mount=type=cache,target=/root/.npm npm ci",
            "RUN dnf install -y git && dnf clean all",
            "RUN microdnf install -y git && microdnf clean all",
            "RUN echo 'apt-get install curl'",
            "RUN",
            "RUN []",
        ] {
            assert!(run(line).is_empty(), "{line}: {:?}", run(line));
        }
    }

    #[test]
    fn pip_env_from_dockerfile() {
        assert!(findings("FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n").is_empty());
        assert!(findings("FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR 1\nRUN pip install flask\n").is_empty());
        assert_eq!(findings("FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=0\nRUN pip install flask\n").len(), 1);
    }

    #[test]
    fn only_the_shipped_image_counts() {
        let text = "FROM node:20 AS build\nRUN npm ci && npm run build\nFROM gcr.io/distroless/nodejs20-debian12\nCOPY --from=build /app /app\n";
        assert!(findings(text).is_empty());
        // A final stage built on an earlier stage inherits its layers.
        let text = "FROM python:3.12-slim AS base\nRUN pip install flask\nFROM base\nCMD [\"python\", \"app.py\"]\n";
        let f = findings(text);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("2: "));
    }
}
