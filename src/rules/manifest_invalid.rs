//! `manifest-invalid`: PLACEHOLDER — to be written.

use super::{Check, Emitter, Example, Rule};
use crate::finding::Severity;

pub static RULE: Rule = Rule {
    id: "manifest-invalid",
    section: "TODO",
    severity: Severity::Warning,
    summary: "TODO",
    why: "TODO",
    fix: "TODO",
    secret: false,
    options: &[],
    bad: Example { dir: "manifest-invalid/bad", files: &[] },
    good: Example { dir: "manifest-invalid/good", files: &[] },
    check: Check::Loader,
};

#[allow(dead_code)]
fn unused(_: &mut Emitter<'_>) {}

/// Reports a document that lacks apiVersion, kind or metadata.name.
pub(crate) fn missing_identity(root: &crate::yaml::Node, out: &mut Emitter<'_>) {
    let _ = root;
    out.at(crate::yaml::Route::root(), "document has no apiVersion, kind or metadata.name");
}
