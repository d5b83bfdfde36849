//! `dockerfile-base-not-minimal`: the image that ships starts from a full OS or language image.

use globset::Glob;

use super::{Check, DockerfileCx, Emitter, Example, OptionKind, Rule, RuleOption};
use crate::dockerfile::Dockerfile;
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "dockerfile-base-not-minimal",
    section: "Principle of Least Bloat (PoLB)",
    severity: Severity::Warning,
    summary: "Final image is built on a full OS or language image instead of a minimal base",
    why: "Everything in the base image ships with your app: a package manager, a shell, compilers and \
hundreds of libraries the service never calls. Each of them is something a scanner will flag, an attacker \
can use once inside, and bytes every node has to pull before a pod can start or scale out. Full images \
such as `ubuntu`, `debian` or `node:20` are convenient for building, but the image you run only needs the \
app and its runtime. A minimal base (scratch, distroless, Chainguard, Alpine or a `-slim` variant) keeps \
the attack surface, the pull time and the storage bill small.",
    fix: "Build in an earlier stage and start the final stage from a minimal image such as `scratch`, \
`gcr.io/distroless/static-debian12`, a `cgr.dev/chainguard/*` image, `alpine` or a `-slim` variant. \
Copy only the built artefact into it with `COPY --from=<build stage>`. Statically linked binaries (Go, \
Rust with musl) can run on `scratch` or `distroless/static`; JVM, Node and Python apps have distroless or \
Chainguard runtime images. If your organisation maintains its own hardened base image, add it to the \
`allow` option.",
    secret: false,
    options: &[RuleOption {
        name: "allow",
        kind: OptionKind::Strings,
        default: "[]",
        doc: "Base images accepted as minimal, as exact references or globs (`registry.example.com/base/*`).",
    }],
    suggest: None,
    bad: Example {
        dir: "dockerfile-base-not-minimal/bad",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-base-not-minimal/bad/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-base-not-minimal/bad/Dockerfile")),
        ],
    },
    good: Example {
        dir: "dockerfile-base-not-minimal/good",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-base-not-minimal/good/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-base-not-minimal/good/Dockerfile")),
        ],
    },
    check: Check::Dockerfile(check),
};

/// Stage indices the shipped image is made of (see [`Dockerfile::final_chain`]).
pub(crate) fn final_chain(df: &Dockerfile) -> Vec<usize> {
    df.final_chain()
}

/// An image reference split into its parts, lower-cased, digest dropped.
struct ImageRef {
    /// `repo:tag` (or `repo` when untagged).
    full: String,
    /// Registry and path without tag (`gcr.io/distroless/static-debian12`).
    repo: String,
    /// Last path component of `repo` (`static-debian12`).
    name: String,
    tag: String,
}

fn parse_image(reference: &str) -> ImageRef {
    let lower = reference.trim().to_ascii_lowercase();
    let no_digest = lower.split('@').next().unwrap_or("");
    let (repo, tag) = match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => (&no_digest[..i], &no_digest[i + 1..]),
        _ => (no_digest, ""),
    };
    let name = repo.rsplit('/').next().unwrap_or(repo);
    ImageRef { full: no_digest.to_string(), repo: repo.to_string(), name: name.to_string(), tag: tag.to_string() }
}

fn is_minimal(image: &ImageRef) -> bool {
    let repo = image.repo.as_str();
    let name = image.name.as_str();
    let tag = image.tag.as_str();
    repo == "scratch"
        || repo.contains("distroless")
        || repo.starts_with("cgr.dev/")
        || repo.starts_with("chainguard/")
        || repo.contains("/chainguard/")
        || matches!(name, "alpine" | "busybox" | "wolfi-base")
        || name.contains("minimal")
        || name.contains("micro")
        || ["alpine", "slim", "chiseled", "distroless", "minimal", "micro"].iter().any(|m| tag.contains(m))
}

/// What kind of full image this is, for images we know to be full distributions or language images.
fn full_image_kind(image: &ImageRef) -> Option<&'static str> {
    const OS: &[&str] = &[
        "ubuntu",
        "debian",
        "centos",
        "fedora",
        "rockylinux",
        "almalinux",
        "amazonlinux",
        "oraclelinux",
        "leap",
        "tumbleweed",
        "archlinux",
        "ubi",
        "ubi7",
        "ubi8",
        "ubi9",
        "ubi10",
        "buildpack-deps",
    ];
    const LANGUAGE: &[&str] = &[
        "node",
        "python",
        "pypy",
        "golang",
        "openjdk",
        "eclipse-temurin",
        "amazoncorretto",
        "ibm-semeru-runtimes",
        "sapmachine",
        "maven",
        "gradle",
        "ruby",
        "php",
        "perl",
        "rust",
        "gcc",
        "elixir",
        "erlang",
        "haskell",
        "swift",
        "clojure",
        "dart",
        "julia",
        "mono",
    ];
    let name = image.name.as_str();
    let dotnet = image.repo.contains("dotnet/") && matches!(name, "sdk" | "aspnet" | "runtime" | "runtime-deps");
    if OS.contains(&name) {
        Some("a full operating-system image")
    } else if LANGUAGE.contains(&name) || dotnet {
        Some("a full language image (toolchain and OS packages included)")
    } else {
        None
    }
}

fn allowed(image: &ImageRef, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim().to_ascii_lowercase();
        match Glob::new(&p) {
            Ok(glob) => {
                let m = glob.compile_matcher();
                m.is_match(&image.full) || m.is_match(&image.repo)
            }
            Err(_) => p == image.full || p == image.repo,
        }
    })
}

/// Replaces `$NAME` / `${NAME}` with the defaults of `ARG`s declared before the first `FROM`; an
/// expansion too long to be an image reference comes back empty (nothing to judge).
fn substitute_global_args(df: &Dockerfile, base: &str) -> String {
    if !base.contains('$') {
        return base.to_string();
    }
    crate::dockerfile::substitute(base, &df.global_args()).unwrap_or_default()
}

fn check(cx: &DockerfileCx<'_>, out: &mut Emitter<'_>) {
    let df = cx.dockerfile;
    let Some(&root) = final_chain(df).first() else { return };
    let Some(stage) = df.stages.get(root) else { return };
    let base = substitute_global_args(df, &stage.base);
    if base.is_empty() || base.contains('$') {
        return;
    }
    let image = parse_image(&base);
    if is_minimal(&image) || allowed(&image, &cx.options.list("allow")) {
        return;
    }
    let Some(kind) = full_image_kind(&image) else { return };
    let via =
        if root + 1 == df.stages.len() { String::new() } else { " (the final stage builds on this stage)".into() };
    out.at_pos(
        crate::yaml::Pos { line: stage.line, col: 1 },
        format!("the shipped image is based on `{base}`, {kind}{via}; use a minimal base such as distroless, Chainguard, Alpine or a `-slim` variant"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::testing::{dockerfile_findings, dockerfile_findings_with, numbered};

    fn findings(text: &str) -> Vec<String> {
        numbered(&dockerfile_findings(&RULE, text))
    }

    #[test]
    fn full_images_are_flagged() {
        for base in
            ["node:20", "ubuntu:24.04", "debian:bookworm", "python:3.12", "golang:1.22", "openjdk:21", "centos:7"]
        {
            let f = findings(&format!("FROM {base}\nCMD [\"app\"]\n"));
            assert_eq!(f.len(), 1, "{base}: {f:?}");
            assert!(f[0].starts_with("1: "));
        }
        let f = findings("FROM mcr.microsoft.com/dotnet/aspnet:8.0\n");
        assert_eq!(f.len(), 1);
        let f = findings("FROM docker.io/library/node:20.11.1@sha256:abcdef\n");
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn minimal_images_pass() {
        for base in [
            "scratch",
            "gcr.io/distroless/static-debian12:nonroot",
            "cgr.dev/chainguard/node:latest",
            "alpine:3.20",
            "python:3.12-slim",
            "node:20-alpine",
            "debian:bookworm-slim",
            "registry.access.redhat.com/ubi9/ubi-minimal:9.4",
            "redhat/ubi9-micro:9.4",
            "mcr.microsoft.com/dotnet/runtime-deps:8.0-jammy-chiseled",
            "registry.example.com/team/base:1.0",
        ] {
            assert!(findings(&format!("FROM {base}\n")).is_empty(), "{base}");
        }
    }

    #[test]
    fn stage_references_resolve_to_their_base() {
        let f = findings("FROM node:20 AS base\nRUN npm ci\nFROM base AS release\nCMD [\"node\", \"app.js\"]\n");
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("1: ") && f[0].contains("final stage builds on"), "{f:?}");
        assert!(
            findings("FROM node:20 AS build\nRUN npm run build\nFROM gcr.io/distroless/nodejs20-debian12\n").is_empty()
        );
        // A builder that is not part of the final image is not judged.
        assert!(findings("FROM ubuntu:24.04 AS tools\nFROM alpine:3.20\nCOPY --from=tools /x /x\n").is_empty());
    }

    #[test]
    fn global_args_are_substituted() {
        assert_eq!(findings("ARG BASE=node:20\nFROM ${BASE}\n").len(), 1);
        assert!(findings("ARG BASE=node:20-alpine\nFROM $BASE\n").is_empty());
        assert!(findings("FROM ${UNKNOWN}\n").is_empty());
    }

    #[test]
    fn allow_list() {
        let config = Config::parse(
            "rules:\n  dockerfile-base-not-minimal:\n    allow: [\"ubuntu:24.04\", \"registry.example.com/node\"]\n",
            ".kpath.yml",
        )
        .expect("valid config");
        let run = |t: &str| dockerfile_findings_with(&RULE, t, None, &config);
        assert!(run("FROM ubuntu:24.04\n").is_empty());
        assert_eq!(run("FROM ubuntu:22.04\n").len(), 1);
        assert!(run("FROM registry.example.com/node:20\n").is_empty());
    }

    #[test]
    fn odd_input() {
        assert!(findings("").is_empty());
        assert!(findings("FROM\n").is_empty());
        assert!(findings("RUN echo hi\n").is_empty());
    }
}
