//! `keda-trigger-too-fine`: PLACEHOLDER — to be written.

use super::{Check, Emitter, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "keda-trigger-too-fine",
    section: "TODO",
    severity: Severity::Warning,
    summary: "TODO",
    why: "TODO",
    fix: "TODO",
    secret: false,
    options: &[],
    bad: Example { dir: "keda-trigger-too-fine/bad", files: &[] },
    good: Example { dir: "keda-trigger-too-fine/good", files: &[] },
    check: Check::Loader,
};

#[allow(dead_code)]
fn unused(_: &mut Emitter<'_>) {}
