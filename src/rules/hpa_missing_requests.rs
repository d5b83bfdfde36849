//! `hpa-missing-requests`: PLACEHOLDER — to be written.

use super::{Check, Emitter, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "hpa-missing-requests",
    section: "TODO",
    severity: Severity::Warning,
    summary: "TODO",
    why: "TODO",
    fix: "TODO",
    secret: false,
    options: &[],
    bad: Example { dir: "hpa-missing-requests/bad", files: &[] },
    good: Example { dir: "hpa-missing-requests/good", files: &[] },
    check: Check::Loader,
};

#[allow(dead_code)]
fn unused(_: &mut Emitter<'_>) {}
