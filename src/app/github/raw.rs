//! What is read of GitHub's REST answers: the few fields kpath uses, as serde reads them.

use serde::Deserialize;

use super::{PullInfo, PullState};

#[derive(Deserialize)]
pub(super) struct RawPull {
    pub(super) number: u64,
    pub(super) state: PullState,
    #[serde(default)]
    pub(super) draft: Option<bool>,
    pub(super) head: RawBranch,
    pub(super) base: RawBranch,
}

#[derive(Deserialize)]
pub(super) struct RawBranch {
    #[serde(rename = "ref")]
    pub(super) name: String,
    pub(super) sha: String,
    pub(super) repo: Option<RawRepo>,
}

#[derive(Deserialize)]
pub(super) struct RawRepo {
    pub(super) full_name: String,
}

impl From<RawPull> for PullInfo {
    fn from(raw: RawPull) -> PullInfo {
        PullInfo {
            number: raw.number,
            state: raw.state,
            draft: raw.draft.unwrap_or(false),
            head_sha: raw.head.sha,
            head_ref: raw.head.name,
            head_repo: raw.head.repo.map(|r| r.full_name),
            base_ref: raw.base.name,
            base_sha: raw.base.sha,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RawCompare {
    pub(super) merge_base_commit: RawCommit,
}

#[derive(Deserialize)]
pub(super) struct RawCommit {
    pub(super) sha: String,
}

#[derive(Deserialize)]
pub(super) struct RawCheckRuns {
    pub(super) check_runs: Vec<RawCheckRun>,
}

#[derive(Deserialize)]
pub(super) struct RawCheckRun {
    pub(super) id: u64,
    pub(super) status: String,
    pub(super) output: RawCheckRunOutput,
}

#[derive(Deserialize)]
pub(super) struct RawCheckRunOutput {
    pub(super) annotations_count: usize,
}

#[derive(Deserialize)]
pub(super) struct RawUser {
    #[serde(rename = "type")]
    pub(super) kind: String,
}

#[derive(Deserialize)]
pub(super) struct RawIssueComment {
    pub(super) id: u64,
    pub(super) body: Option<String>,
    pub(super) user: Option<RawUser>,
}

#[derive(Deserialize)]
pub(super) struct RawReviewComment {
    pub(super) id: u64,
    pub(super) body: String,
    #[serde(default)]
    pub(super) path: String,
    pub(super) line: Option<u64>,
    pub(super) user: Option<RawUser>,
    pub(super) in_reply_to_id: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct RawPullFile {
    pub(super) filename: String,
    pub(super) patch: Option<String>,
}
