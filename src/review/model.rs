//! Data shared by the review layers: rendered objects to diff, object changes, classified findings,
//! and the review plan a GitHub App would post.

use serde::Serialize;

use crate::finding::{Finding, ObjectId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
    Unchanged,
}

/// How one object differs between base and head.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    pub object: ObjectId,
    pub unit: String,
    pub environment: Option<String>,
    pub kind: ChangeKind,
    /// Unified diff of the object's YAML (base → head), noise removed and secrets redacted; empty
    /// for unchanged objects.
    pub diff: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Introduced by this pull request.
    New,
    /// Present before; not blocking.
    Existing,
    /// Present at base, gone at head.
    Fixed,
}

/// A finding with its place in the ratchet.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub status: Status,
    /// Stable across line moves and message wording: rule + object identity + route + environment
    /// (for findings without an object: rule + file + the source line's text).
    pub fingerprint: String,
}

/// Lines of the pull request's diff, per file, on the right (head) side.
#[derive(Debug, Clone, Default)]
pub struct DiffLines {
    /// Lines the pull request added or changed.
    pub added: std::collections::HashMap<String, std::collections::BTreeSet<u32>>,
    /// Unchanged lines GitHub shows around them (the hunks' context, 3 lines as in `git diff`): a review
    /// comment may go on these too.
    pub context: std::collections::HashMap<String, std::collections::BTreeSet<u32>>,
}

impl DiffLines {
    /// Did the pull request add or change this line?
    pub fn contains(&self, path: &str, line: u32) -> bool {
        self.added.get(path).is_some_and(|lines| lines.contains(&line))
    }

    /// Is this line in one of the diff's hunks (added, or context GitHub shows)?
    pub fn in_hunk(&self, path: &str, line: u32) -> bool {
        self.contains(path, line) || self.context.get(path).is_some_and(|lines| lines.contains(&line))
    }
}
