//! `dockerfile-no-dockerignore`: PLACEHOLDER — to be written.

use super::{Check, Emitter, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "dockerfile-no-dockerignore",
    section: "TODO",
    severity: Severity::Warning,
    summary: "TODO",
    why: "TODO",
    fix: "TODO",
    secret: false,
    options: &[],
    bad: Example { dir: "dockerfile-no-dockerignore/bad", files: &[] },
    good: Example { dir: "dockerfile-no-dockerignore/good", files: &[] },
    check: Check::Loader,
};

#[allow(dead_code)]
fn unused(_: &mut Emitter<'_>) {}
