//! `dockerfile-single-stage-build`: a single-stage Dockerfile that compiles the app in the image it ships.

use super::{Check, DockerfileCx, Emitter, Example, Rule};
use crate::dockerfile::Instruction;
use crate::finding::Severity;
use crate::shell;

pub static RULE: Rule = Rule {
    id: "dockerfile-single-stage-build",
    section: "Principle of Least Bloat (PoLB)",
    severity: Severity::Warning,
    summary: "Single-stage Dockerfile builds the app in the image it ships",
    why: "When the build runs in the only stage, everything the build needed stays in the image: the \
compiler or SDK, the source tree, downloaded dependencies and intermediate objects. That is often ten \
times the size of the app itself, it is slower to push and pull on every rollout and scale-out, and it \
hands anyone who gets into the container a full toolchain to work with. A multi-stage build keeps the \
toolchain in a throwaway stage and ships only the result.",
    fix: "Split the Dockerfile into a build stage and a minimal final stage that copies only the artefact \
with `COPY --from=build`. Name the first stage (`FROM golang:1.22 AS build`), run the build there, then \
start a second `FROM` on a minimal base (distroless, Chainguard, Alpine, `scratch`) and copy the binary, \
bundle or jar plus any runtime files it needs.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "dockerfile-single-stage-build/bad",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-single-stage-build/bad/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-single-stage-build/bad/Dockerfile")),
        ],
    },
    good: Example {
        dir: "dockerfile-single-stage-build/good",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-single-stage-build/good/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-single-stage-build/good/Dockerfile")),
        ],
    },
    check: Check::Dockerfile(check),
};

/// The commands a `RUN` executes, as argvs (exec form is one command).
pub(crate) fn run_commands(inst: &Instruction) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    if let Some(exec) = &inst.exec {
        match shell::shell_invocation(exec) {
            Some(inv) => out.extend(shell::parse(inv.script).iter().map(|c| c.effective_argv().to_vec())),
            None => out.push(exec.clone()),
        }
    }
    for script in shell::dockerfile_scripts(inst) {
        out.extend(shell::parse(script).iter().map(|c| c.effective_argv().to_vec()));
    }
    out
}

/// The build tool an argv runs, named as a person would say it (`go build`, `npm run build`).
fn build_tool(argv: &[String]) -> Option<String> {
    let mut argv = argv;
    while argv.first().is_some_and(|w| matches!(shell::basename(w), "sudo" | "time" | "nice" | "env")) {
        argv = &argv[1..];
        while argv.first().is_some_and(|w| w.starts_with('-') || shell::is_assignment(w)) {
            argv = &argv[1..];
        }
    }
    let program = shell::basename(argv.first()?);
    // The first word after the program that is not an option.
    let sub = argv.iter().skip(1).find(|w| !w.starts_with('-')).map(String::as_str).unwrap_or("");
    let script_after_run = || {
        let mut words = argv.iter().skip(1).filter(|w| !w.starts_with('-'));
        match words.next().map(String::as_str) {
            Some("run" | "run-script") => words.next().filter(|s| s.starts_with("build")).cloned(),
            _ => None,
        }
    };
    match program {
        "go" if matches!(sub, "build" | "install") => Some(format!("go {sub}")),
        "cargo" if matches!(sub, "build" | "b" | "install") => Some(format!("cargo {sub}")),
        "npm" => script_after_run().map(|s| format!("npm run {s}")),
        "yarn" | "pnpm" | "bun" => {
            if sub.starts_with("build") {
                Some(format!("{program} {sub}"))
            } else {
                script_after_run().map(|s| format!("{program} run {s}"))
            }
        }
        "mvn" | "mvnw" | "gradle" | "gradlew" | "ant" | "sbt" | "lein" | "bazel" | "bazelisk" => {
            Some(program.to_string())
        }
        "gcc" | "g++" | "cc" | "c++" | "clang" | "clang++" | "make" | "gmake" | "cmake" | "ninja" | "meson" => {
            Some(program.to_string())
        }
        "javac" | "rustc" | "tsc" | "webpack" => Some(program.to_string()),
        "dotnet" if matches!(sub, "publish" | "build") => Some(format!("dotnet {sub}")),
        "swift" | "zig" if sub == "build" => Some(format!("{program} build")),
        "mix" if matches!(sub, "release" | "compile") => Some(format!("mix {sub}")),
        _ => None,
    }
}

fn check(cx: &DockerfileCx<'_>, out: &mut Emitter<'_>) {
    let df = cx.dockerfile;
    if df.stages.len() != 1 {
        return;
    }
    for inst in df.final_instructions().filter(|i| i.keyword == "RUN") {
        if let Some(tool) = run_commands(inst).iter().find_map(|argv| build_tool(argv)) {
            out.at_pos(
                inst.pos(),
                format!(
                    "this single-stage Dockerfile runs `{tool}`, so the toolchain, sources and build caches ship in \
                     the final image; build in a separate stage and copy only the result"
                ),
            );
            return;
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

    #[test]
    fn build_tools_in_a_single_stage() {
        for run in [
            "RUN CGO_ENABLED=0 go build -o /app .",
            "RUN cargo build --release",
            "RUN npm ci && npm run build",
            "RUN yarn build",
            "RUN pnpm run build:prod",
            "RUN ./mvnw -B package",
            "RUN ./gradlew bootJar",
            "RUN make -j4",
            "RUN dotnet publish -c Release -o /out",
            "RUN [\"go\", \"build\", \"-o\", \"/app\", \".\"]",
            "RUN <<EOF\nset -e\ngo build -o /app .\nEOF",
        ] {
            let f = findings(&format!("FROM golang:1.22-alpine\nWORKDIR /src\n{run}\nCMD [\"/app\"]\n"));
            assert_eq!(f.len(), 1, "{run}: {f:?}");
            assert!(f[0].starts_with("3: "), "{f:?}");
        }
    }

    #[test]
    fn one_finding_per_dockerfile() {
        let f = findings("FROM node:20-alpine\nRUN npm run build\nRUN npm run build:docs\n");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn multi_stage_or_no_build_passes() {
        assert!(
            findings("FROM golang:1.22 AS build\nRUN go build -o /app .\nFROM scratch\nCOPY --from=build /app /app\n")
                .is_empty()
        );
        assert!(findings("FROM python:3.12-slim\nRUN pip install --no-cache-dir -r requirements.txt\n").is_empty());
        assert!(findings("FROM node:20-alpine\nRUN npm run test\nRUN echo 'go build'\n").is_empty());
        assert!(findings("").is_empty());
        assert!(findings("FROM alpine:3.20\nRUN\nRUN []\n").is_empty());
    }
}
