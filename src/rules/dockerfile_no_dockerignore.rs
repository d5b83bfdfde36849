//! `dockerfile-no-dockerignore`: the whole build context is copied and no `.dockerignore` filters it.

use super::{Check, DockerfileCx, Emitter, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "dockerfile-no-dockerignore",
    section: "Principle of Least Bloat (PoLB)",
    severity: Severity::Warning,
    summary: "Whole build context is copied without a `.dockerignore`",
    why: "`COPY . .` takes everything in the build context: the `.git` directory, local `.env` files, test \
data, editor folders, `node_modules` or `target` from the last local build. Without a `.dockerignore` all \
of it is sent to the builder and written into the image, which makes images bigger, invalidates the layer \
cache on every unrelated change, and can ship credentials and source history to anyone who pulls the \
image. A strict `.dockerignore` keeps the context down to what the build actually uses.",
    fix: "Add a `.dockerignore` next to the Dockerfile that excludes everything except what the build needs. \
A deny-by-default file is the strictest: start with `*`, then re-include paths with `!src/`, `!go.mod`, \
and so on. Alternatively copy named files and directories instead of `.`. For `Dockerfile.<name>`, BuildKit \
also reads `Dockerfile.<name>.dockerignore`.",
    secret: false,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "dockerfile-no-dockerignore/bad",
        files: &[("Dockerfile", include_str!("../../fixtures/rules/dockerfile-no-dockerignore/bad/Dockerfile"))],
    },
    good: Example {
        dir: "dockerfile-no-dockerignore/good",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-no-dockerignore/good/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-no-dockerignore/good/Dockerfile")),
        ],
    },
    check: Check::Dockerfile(check),
};

/// A source that means "the whole build context".
fn is_whole_context(source: &str) -> bool {
    matches!(source.trim(), "." | "./" | "./." | "*" | "./*")
}

/// Does this `.dockerignore` exclude anything (not just blank lines and comments)?
fn has_patterns(dockerignore: &str) -> bool {
    dockerignore.lines().map(str::trim).any(|l| !l.is_empty() && !l.starts_with('#'))
}

fn check(cx: &DockerfileCx<'_>, out: &mut Emitter<'_>) {
    let empty = match cx.dockerignore {
        None => false,
        Some(text) if has_patterns(text) => return,
        Some(_) => true,
    };
    for inst in &cx.dockerfile.instructions {
        if !matches!(inst.keyword.as_str(), "COPY" | "ADD") || inst.flag("from").is_some() {
            continue;
        }
        let words: Vec<&str> = match &inst.exec {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => inst.args.split_whitespace().collect(),
        };
        // The last word is the destination; heredoc sources (`<<EOF`) are inline text.
        let Some((_, sources)) = words.split_last() else { continue };
        if sources.iter().any(|s| is_whole_context(s)) {
            let what =
                if empty { "the `.dockerignore` beside it excludes nothing" } else { "there is no `.dockerignore`" };
            out.at_pos(
                inst.pos(),
                format!(
                    "`{}` copies the whole build context and {what}, so `.git`, local secrets and build output can \
                     end up in the image",
                    inst.keyword
                ),
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::testing::{dockerfile_findings_with, numbered};

    fn findings(text: &str, dockerignore: Option<&str>) -> Vec<String> {
        numbered(&dockerfile_findings_with(&RULE, text, dockerignore, &Config::default()))
    }

    #[test]
    fn whole_context_without_dockerignore() {
        for copy in ["COPY . .", "COPY ./ /app/", "ADD . /src", "COPY --chown=app:app . /app", "COPY [\".\", \"/app\"]"]
        {
            let f = findings(&format!("FROM alpine:3.20\nWORKDIR /app\n{copy}\n"), None);
            assert_eq!(f.len(), 1, "{copy}: {f:?}");
            assert!(f[0].starts_with("3: "));
        }
    }

    #[test]
    fn one_finding_per_dockerfile() {
        let f = findings("FROM alpine:3.20\nCOPY . /a\nCOPY . /b\n", None);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn empty_dockerignore_counts_as_missing() {
        let f = findings("FROM alpine:3.20\nCOPY . .\n", Some("# nothing yet\n\n"));
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("excludes nothing"));
    }

    #[test]
    fn passes() {
        assert!(findings("FROM alpine:3.20\nCOPY . .\n", Some(".git\n")).is_empty());
        assert!(findings("FROM alpine:3.20\nCOPY src/ /app/src/\nCOPY go.mod go.sum ./\n", None).is_empty());
        assert!(findings("FROM alpine:3.20 AS a\nFROM scratch\nCOPY --from=a . /\n", None).is_empty());
        assert!(findings("FROM alpine:3.20\nCOPY <<EOF /etc/x\nhello\nEOF\nCOPY\nCOPY []\nADD .\n", None).is_empty());
    }
}
