//! `shell-pid1`: PLACEHOLDER — to be written.

use super::{Check, Emitter, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "shell-pid1",
    section: "TODO",
    severity: Severity::Warning,
    summary: "TODO",
    why: "TODO",
    fix: "TODO",
    secret: false,
    options: &[],
    bad: Example { dir: "shell-pid1/bad", files: &[] },
    good: Example { dir: "shell-pid1/good", files: &[] },
    check: Check::Loader,
};

#[allow(dead_code)]
fn unused(_: &mut Emitter<'_>) {}
