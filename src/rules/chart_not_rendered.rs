//! `chart-not-rendered`: PLACEHOLDER — to be written.

use super::{Check, Emitter, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "chart-not-rendered",
    section: "TODO",
    severity: Severity::Warning,
    summary: "TODO",
    why: "TODO",
    fix: "TODO",
    secret: false,
    options: &[],
    bad: Example { dir: "chart-not-rendered/bad", files: &[] },
    good: Example { dir: "chart-not-rendered/good", files: &[] },
    check: Check::Loader,
};

#[allow(dead_code)]
fn unused(_: &mut Emitter<'_>) {}
