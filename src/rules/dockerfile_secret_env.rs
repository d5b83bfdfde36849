//! `dockerfile-secret-env`: a Dockerfile `ENV` or `ARG` that writes a secret into the image.

use super::{Check, DockerfileCx, Emitter, Example, Rule};
use crate::dockerfile::{Dockerfile, Instruction};
use crate::finding::Severity;
use crate::secrets;

pub static RULE: Rule = Rule {
    id: "dockerfile-secret-env",
    section: "Environment Variables and Secrets",
    severity: Severity::Error,
    summary: "Dockerfile `ENV` or `ARG` sets a secret to a literal value",
    why: "An `ENV` value becomes part of the image's configuration: every container started from it has the \
variable, and anyone who can pull the image reads it with `docker inspect`, in every registry and cache the \
image is copied to. A build argument's default is no better: it is written in the Dockerfile, and the value \
a build used is recorded in the image's history whenever a `RUN` step sees it. Removing the line later does \
not help, because the old layers and the repository's history keep it. A variable named like a password, \
token or key, or a value shaped like a credential, therefore does not belong in a Dockerfile.",
    fix: "Remove the literal value and give the secret to the build or the container at the time it is \
needed. For a build step, declare the argument without a default and pass the secret with BuildKit \
(`docker build --secret id=…` and `RUN --mount=type=secret,id=…`), which never stores it in a layer. For \
the running container, read it from a mounted Secret (set `*_FILE` to its path) or from an environment \
variable the orchestrator sets from a Secret, and rotate any value that was committed.",
    secret: true,
    options: &[],
    suggest: None,
    bad: Example {
        dir: "dockerfile-secret-env/bad",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-secret-env/bad/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-secret-env/bad/Dockerfile")),
        ],
    },
    good: Example {
        dir: "dockerfile-secret-env/good",
        files: &[
            (".dockerignore", include_str!("../../fixtures/rules/dockerfile-secret-env/good/.dockerignore")),
            ("Dockerfile", include_str!("../../fixtures/rules/dockerfile-secret-env/good/Dockerfile")),
        ],
    },
    check: Check::Dockerfile(check),
};

/// One `NAME=value` of an `ENV` or `ARG` whose value is a literal secret.
pub(crate) struct SecretAssignment<'d> {
    pub instruction: &'d Instruction,
    pub name: String,
    pub value: String,
    /// Why it is a secret: its name, or the credential its value looks like.
    pub reason: Reason,
}

pub(crate) enum Reason {
    Name,
    Looks(&'static str),
}

/// Every literal secret set by `ENV` or `ARG` (the engine treats the values as secrets everywhere).
pub(crate) fn secret_assignments(dockerfile: &Dockerfile) -> Vec<SecretAssignment<'_>> {
    let mut out = Vec::new();
    for instruction in &dockerfile.instructions {
        if !matches!(instruction.keyword.as_str(), "ENV" | "ARG") {
            continue;
        }
        for (name, value) in assignments(instruction) {
            let Some(value) = value else { continue };
            // `$VAR`, `${VAR}` and `prefix-$VAR` are expanded by the builder: not a literal.
            if value.contains('$') {
                continue;
            }
            let reason = if secrets::is_sensitive_assignment(&name, &value) {
                Reason::Name
            } else if let Some(kind) = secrets::credential_kind(&value) {
                Reason::Looks(kind)
            } else {
                continue;
            };
            out.push(SecretAssignment { instruction, name, value, reason });
        }
    }
    out
}

fn check(cx: &DockerfileCx<'_>, out: &mut Emitter<'_>) {
    for found in secret_assignments(cx.dockerfile) {
        let keyword = found.instruction.keyword.as_str();
        let name = &found.name;
        let message = match (keyword, found.reason) {
            ("ARG", Reason::Name) => format!(
                "build argument `{name}` has a literal default, and its name says it is sensitive: it is kept in \
                 the Dockerfile and the image's history"
            ),
            ("ARG", Reason::Looks(kind)) => {
                format!("build argument `{name}` has a literal default that looks like {kind}")
            }
            (_, Reason::Name) => format!(
                "`ENV {name}` sets a literal value, and its name says it is sensitive: it is stored in the image \
                 for anyone who can pull it"
            ),
            (_, Reason::Looks(kind)) => format!("`ENV {name}` sets a literal value that looks like {kind}"),
        };
        out.at_pos(found.instruction.pos(), message);
    }
}

/// `NAME[=value]` pairs of an `ENV` or `ARG`, values unquoted. `ENV NAME value with spaces` (the legacy
/// form, one variable) is read too. See <https://docs.docker.com/reference/dockerfile/#env>.
fn assignments(instruction: &Instruction) -> Vec<(String, Option<String>)> {
    let words = split_words(&instruction.args);
    let legacy = instruction.keyword == "ENV" && words.first().is_some_and(|(w, _)| !w.contains('='));
    if legacy {
        let mut parts = instruction.args.trim().splitn(2, char::is_whitespace);
        let name = parts.next().unwrap_or("").to_string();
        let value = parts.next().map(|v| unquote(v.trim()));
        return vec![(name, value)];
    }
    words
        .into_iter()
        .map(|(word, _)| match word.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (word, None),
        })
        .collect()
}

/// Words of an instruction's arguments, with quotes removed and backslash escapes applied; the flag is
/// whether the word had quotes.
fn split_words(args: &str) -> Vec<(String, bool)> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push((std::mem::take(&mut current), quoted));
                    quoted = false;
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                quoted = true;
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                in_word = true;
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            (_, c) => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push((current, quoted));
    }
    words
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    let quoted =
        v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    if quoted { v[1..v.len() - 1].to_string() } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::dockerfile_findings;

    #[test]
    fn env_and_arg_with_literal_secrets_are_reported_by_name_never_by_value() {
        let found = dockerfile_findings(
            &RULE,
            "FROM alpine:3.20\nARG NPM_TOKEN=npm-literal-token\nENV DB_HOST=db \\\n    DB_PASSWORD=\"hunter2 prod\"\n\
             ENV API_KEY k-123 with spaces\nENV UPSTREAM=\"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig\"\n",
        );
        let lines: Vec<u32> = found.iter().map(|f| f.line).collect();
        assert_eq!(lines, [2, 3, 5, 6], "{found:?}");
        assert!(found[0].message.contains("build argument `NPM_TOKEN`"), "{}", found[0].message);
        assert!(found[1].message.contains("`ENV DB_PASSWORD`"), "{}", found[1].message);
        assert!(found[2].message.contains("`ENV API_KEY`"), "{}", found[2].message);
        assert!(found[3].message.contains("a JSON Web Token"), "{}", found[3].message);
        for f in &found {
            for value in ["npm-literal-token", "hunter2", "k-123", "eyJ"] {
                assert!(!f.message.contains(value), "{}", f.message);
            }
        }
    }

    #[test]
    fn declarations_references_and_paths_are_fine() {
        let found = dockerfile_findings(
            &RULE,
            "FROM alpine:3.20\nARG GITHUB_TOKEN\nARG NPM_TOKEN=\"\"\nENV API_TOKEN=$API_TOKEN DB_PASSWORD=${DB_PASSWORD}\n\
             ENV DB_PASSWORD_FILE=/run/secrets/db TOKEN_TTL=3600\nENV SECRET_KEY_BASE=prefix-$BASE\nLABEL password=x\n",
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn secret_values_are_given_to_the_engine() {
        let df = crate::dockerfile::parse("FROM a\nENV A=1 TOKEN='tok en' B\nARG PASSWORD=pw-literal\n");
        let values: Vec<(String, String)> = secret_assignments(&df).into_iter().map(|s| (s.name, s.value)).collect();
        assert_eq!(values, [("TOKEN".into(), "tok en".into()), ("PASSWORD".into(), "pw-literal".into())]);
    }
}
