//! The GitHub client of the App: one installation's view of GitHub's REST API, with what a review posts
//! (check runs with annotations, a review of inline comments, the sticky summary comment) and what the
//! commands need (replies, reactions, comments).
//!
//! Choices:
//!
//! - **Authentication is octocrab's.** [`GitHub::for_installation`] signs App JWTs (RS256, issued 60 s in
//!   the past, expiring within ten minutes) with the App's private key and exchanges them for installation
//!   tokens, which octocrab caches and renews before they expire. The key and tokens are only ever held as
//!   [`SecretString`]s and never logged; errors carry the operation and GitHub's message, never a credential.
//! - **The HTTP stack is ours** (hyper + rustls with the system's roots, under octocrab): every request,
//!   the token exchange included, carries `Accept: application/vnd.github+json`, one
//!   `X-GitHub-Api-Version: 2022-11-28` and a `kpath/…` user agent. The base URL is injectable:
//!   `https://api.github.com`, GitHub Enterprise Server's `https://HOST/api/v3`, or a fake GitHub on a
//!   loopback address (plain `http://` is refused anywhere else, so a token never travels in clear text).
//!   octocrab's generic `get`/`post`/`patch` are used throughout: its typed API lacks fields kpath sends
//!   (review comments' `line`/`side`, check-run `actions`).
//! - **Retries are ours**, around whole operations: 5xx, timeouts and broken connections, 429, and 403s
//!   that are rate limits (`retry-after`, or `x-ratelimit-remaining: 0`) are retried, at most
//!   [`RetryPolicy::attempts`] times in all, waiting what `retry-after` / `x-ratelimit-reset` ask (a minute
//!   for a secondary rate limit without either, as GitHub documents) or else an exponential backoff. A wait
//!   longer than [`RetryPolicy::max_wait`] is not shortened (retrying early only prolongs a rate limit):
//!   the operation gives up as [`GitHubError::Unavailable`]. The sleep is injectable, so tests do not wait.
//! - **Posts are idempotent where GitHub allows**, because a 502 can come after GitHub stored the write:
//!   the sticky summary is looked up by its marker before it is created, a review posts only comments
//!   whose fingerprints are not already on the pull request (looked up on every attempt), a retried
//!   comment or reply is first looked for among the comments made since the call began, a retried
//!   check-run creation reuses the in-progress `kpath` run of that commit, and a retried annotations batch
//!   is skipped when the run already counts its annotations. Reactions are idempotent at GitHub.
//! - "Ours" means written by a bot account and carrying kpath's marker (`<!-- kpath:summary -->` at the
//!   start of the summary comment, `<!-- kpath:fingerprint=… -->` in review comments); the plan escapes
//!   repository text, so a marker cannot be forged through a finding.
//! - **Limits are GitHub's, at one place.** Every text field the client sends is cut by [`fit`] to GitHub's
//!   documented limit for that [`Field`] (a check-run summary 65,535, a comment 65,536, an annotation's
//!   message 64 KB and title 255, a button's label 20…), measured in bytes (GitHub counts some limits in
//!   bytes, and bytes are never fewer than characters), on a character boundary, ending with a visible
//!   `…(truncated)`. Markdown is cut at a line's end, never inside an HTML comment, and a code fence or
//!   `<details>` left open is closed; a review comment keeps its fingerprint marker. So one huge finding
//!   can never make GitHub refuse (422) a whole check run or review. Annotations go 50 per request, the
//!   conclusion with the last batch.

mod graphql;
mod limits;
mod raw;
#[cfg(test)]
mod tests;
mod transport;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use octocrab::Octocrab;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

pub use limits::{Field, TRUNCATED, TRUNCATED_NOTE, fit};
use limits::{fit_keeping_fingerprint, fit_within};
use raw::{RawCheckRun, RawCheckRuns, RawCompare, RawIssueComment, RawPull, RawPullFile, RawReviewComment, RawUser};
pub(crate) use transport::{parse_api, tls_config};

use crate::review::plan::{Annotation, Conclusion, InlineComment, fingerprints_in};

/// The check run's name.
pub const CHECK_NAME: &str = "kpath";
/// Starts kpath's sticky summary comment.
pub const SUMMARY_MARKER: &str = "<!-- kpath:summary -->";
/// Ends kpath's "fixed in …" replies, so a thread is told once.
pub const FIXED_MARKER: &str = "<!-- kpath:fixed -->";
/// GitHub's limit on a check run's summary.
pub const MAX_CHECK_SUMMARY: usize = Field::CheckRunSummary.limit();
/// GitHub's limit on a comment's body.
pub const MAX_COMMENT: usize = Field::CommentBody.limit();
/// GitHub's limit on annotations per check-run request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;
/// The identifier of the check run's "Re-run" button, as a `check_run` `requested_action` event names it.
pub const RERUN_ACTION: &str = "rerun";
/// An installation token handed out for git must live at least this long.
const TOKEN_MARGIN_MINUTES: i64 = 5;
/// How far back a retried comment is looked for (GitHub's clock may differ from ours).
const CLOCK_SLACK: Duration = Duration::from_secs(5 * 60);

/// Why a GitHub call failed, as a caller acts on it.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// 422: GitHub understood the request and refused it (a review comment off the diff, a body too
    /// long). Not retried; the review falls back to the summary.
    #[error("{operation}: GitHub refused the request (422): {message}")]
    Unprocessable { operation: String, message: String },
    /// 404: the repository, pull request or comment does not exist, or the installation cannot see it.
    #[error("{operation}: not found on GitHub (404): {message}")]
    NotFound { operation: String, message: String },
    /// 401: the App's JWT or installation token was refused (a wrong key or App id, a removed installation).
    #[error("{operation}: GitHub refused the App's credentials (401): {message}")]
    Unauthorized { operation: String, message: String },
    /// Server errors, timeouts or rate limits that outlasted the retries.
    #[error("{operation}: GitHub unavailable after {attempts} attempt(s): {last}")]
    Unavailable { operation: String, attempts: u32, last: String },
    /// Anything else: another status (403 for a missing permission), an unreadable answer, a bad argument.
    #[error("{operation}: {message}")]
    Other { operation: String, status: Option<u16>, message: String },
}

/// How a check run ends: the review plan's conclusion, or `cancelled` when a newer push made the review stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunConclusion {
    Success,
    Failure,
    Neutral,
    Cancelled,
}

impl From<&Conclusion> for RunConclusion {
    fn from(conclusion: &Conclusion) -> RunConclusion {
        match conclusion {
            Conclusion::Success => RunConclusion::Success,
            Conclusion::Failure => RunConclusion::Failure,
            Conclusion::Neutral => RunConclusion::Neutral,
        }
    }
}

/// One of kpath's inline comments on a pull request (the first comment of its thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpathComment {
    pub id: u64,
    /// The fingerprints of the findings it is about (several when findings share its line).
    pub fingerprints: Vec<String>,
    pub path: String,
    /// `None` when the comment is outdated (its line is gone from the diff).
    pub line: Option<u64>,
    /// kpath already replied that the finding is fixed.
    pub fixed_noted: bool,
}

/// What [`GitHub::pull`] reads of a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullInfo {
    pub number: u64,
    pub state: PullState,
    pub draft: bool,
    pub head_sha: String,
    pub head_ref: String,
    /// `owner/name` of the head repository (differs from the base for forks); `None` when it was deleted.
    pub head_repo: Option<String>,
    pub base_ref: String,
    pub base_sha: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    Open,
    Closed,
}

type SleepFn = dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

/// How failed calls are retried.
#[derive(Clone)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included.
    pub attempts: u32,
    /// The wait after the first failure without a `retry-after`; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest wait; an operation asked to wait longer gives up.
    pub max_wait: Duration,
    /// How long one HTTP request may take.
    pub request_timeout: Duration,
    sleep: Arc<SleepFn>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            sleep: Arc::new(|d| Box::pin(tokio::time::sleep(d))),
        }
    }
}

impl RetryPolicy {
    /// Waits `duration` with the policy's sleep (instant in tests).
    pub async fn pause(&self, duration: Duration) {
        (self.sleep)(duration).await;
    }

    /// Waits with `sleep` instead of `tokio::time::sleep` (tests record the waits and return at once).
    pub fn with_sleep(
        mut self,
        sleep: impl Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static,
    ) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("attempts", &self.attempts)
            .field("first_backoff", &self.first_backoff)
            .field("max_wait", &self.max_wait)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Counts content-creating requests against GitHub's secondary rate limits (about 80 a minute per
/// installation, <https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api>), waiting
/// when the current minute's budget is spent. Shared by every replica when the store is PostgreSQL.
pub trait PostingBudget: Send + Sync {
    fn take(&self, installation: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// GitHub, as one installation of the App sees it.
pub struct GitHub {
    crab: Octocrab,
    retry: RetryPolicy,
    api: String,
    installation: u64,
    budget: Option<Arc<dyn PostingBudget>>,
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHub")
            .field("api", &self.api)
            .field("installation", &self.installation)
            .finish_non_exhaustive()
    }
}
impl GitHub {
    /// Every content-creating request waits for `budget` first.
    pub fn with_budget(mut self, budget: Arc<dyn PostingBudget>) -> GitHub {
        self.budget = Some(budget);
        self
    }

    /// An installation token valid for at least five more minutes, for git over HTTPS
    /// (`x-access-token:TOKEN`). Cached; a new one is made when it runs out.
    pub async fn installation_token(&self) -> Result<SecretString, GitHubError> {
        let operation = format!("getting an access token for installation {}", self.installation);
        self.retrying(&operation, |_| async move {
            let margin = chrono::Duration::minutes(TOKEN_MARGIN_MINUTES);
            self.timed(self.crab.installation_token_with_buffer(margin)).await
        })
        .await
    }

    /// A pull request's heads and state.
    pub async fn pull(&self, repo: &str, number: u64) -> Result<PullInfo, GitHubError> {
        let operation = format!("reading pull request {repo}#{number}");
        let route = format!("{}/pulls/{number}", repo_route(repo, &operation)?);
        let route = &route;
        let raw: RawPull = self.retrying(&operation, |_| async move { self.get(route, &[]).await }).await?;
        Ok(raw.into())
    }

    /// The open pull requests whose head is `sha`. Found among the open pull requests rather than by
    /// GitHub's commit → pulls association, which does not know commits of forks (so a fork's
    /// `check_suite`, whose `pull_requests` is empty, still finds its pull request).
    pub async fn pulls_for_commit(&self, repo: &str, sha: &str) -> Result<Vec<u64>, GitHubError> {
        let operation = format!("finding the open pull requests of {repo} at {sha}");
        let route = format!("{}/pulls", repo_route(repo, &operation)?);
        let query = [("state", "open".to_string())];
        let (route, query) = (&route, &query);
        let pulls: Vec<RawPull> =
            self.retrying(&operation, |_| async move { self.get_pages(route, query).await }).await?;
        Ok(pulls.into_iter().filter(|p| p.head.sha == sha).map(|p| p.number).collect())
    }

    /// The merge base of `base` and `head` (commits or branches), by the compare API.
    pub async fn merge_base(&self, repo: &str, base: &str, head: &str) -> Result<String, GitHubError> {
        let operation = format!("comparing {base}...{head} in {repo}");
        let route = format!("{}/compare/{}...{}", repo_route(repo, &operation)?, encode_ref(base), encode_ref(head));
        let query = [("per_page", "1".to_string())];
        let (route, query) = (&route, &query);
        let compare: RawCompare = self.retrying(&operation, |_| async move { self.get(route, query).await }).await?;
        Ok(compare.merge_base_commit.sha)
    }

    /// The `kpath` check run on `head_sha` still in progress, if any: a replica that took a job over without
    /// a recorded run (its holder died between creating the run and recording it) completes that one.
    pub async fn check_run_in_progress(&self, repo: &str, head_sha: &str) -> Result<Option<u64>, GitHubError> {
        let operation = format!("looking up the check run on {repo}@{head_sha}");
        let existing = format!("{}/commits/{}/check-runs", repo_route(repo, &operation)?, encode_ref(head_sha));
        let query = [("check_name", CHECK_NAME.to_string()), ("filter", "latest".to_string())];
        let (existing, query) = (&existing, &query);
        let runs: RawCheckRuns = self.retrying(&operation, |_| async move { self.get(existing, query).await }).await?;
        Ok(runs.check_runs.iter().find(|r| r.status != "completed").map(|r| r.id))
    }

    /// Creates the `kpath` check run on `head_sha`, in progress. Returns its id.
    pub async fn start_check_run(&self, repo: &str, head_sha: &str) -> Result<u64, GitHubError> {
        let operation = format!("starting the check run on {repo}@{head_sha}");
        let repo_route = repo_route(repo, &operation)?;
        let route = format!("{repo_route}/check-runs");
        let existing = format!("{repo_route}/commits/{}/check-runs", encode_ref(head_sha));
        let body = json!({
            "name": fit(Field::CheckRunName, CHECK_NAME),
            "head_sha": head_sha,
            "status": "in_progress",
            "started_at": timestamp(SystemTime::now()),
        });
        let (route, existing, body) = (&route, &existing, &body);
        self.retrying(&operation, |attempt| async move {
            if attempt > 0 {
                // The failed attempt may have created it.
                let query = [("check_name", CHECK_NAME.to_string()), ("filter", "latest".to_string())];
                let runs: RawCheckRuns = self.get(existing, &query).await?;
                if let Some(run) = runs.check_runs.iter().find(|r| r.status != "completed") {
                    return Ok(run.id);
                }
            }
            let run: RawCheckRun = self.post(route, body).await?;
            Ok(run.id)
        })
        .await
    }

    /// Completes check run `id` with `conclusion`, `title`, `summary` (cut to 65,535 characters) and
    /// `annotations` (50 per request, the conclusion and the "Re-run" button with the last batch). `id`
    /// is a run made by [`GitHub::start_check_run`], without annotations of its own.
    #[allow(clippy::too_many_arguments)] // The check run's own fields, named as GitHub names them.
    pub async fn complete_check_run(
        &self,
        repo: &str,
        id: u64,
        conclusion: impl Into<RunConclusion>,
        title: &str,
        summary: &str,
        text: Option<&str>,
        annotations: &[Annotation],
    ) -> Result<(), GitHubError> {
        let operation = format!("completing check run {id} on {repo}");
        let text = text.map(|t| fit(Field::CheckRunText, t));
        let conclusion = conclusion.into();
        let route = format!("{}/check-runs/{id}", repo_route(repo, &operation)?);
        let (title, summary) = (fit(Field::CheckRunTitle, title), fit(Field::CheckRunSummary, summary));
        let batches: Vec<&[Annotation]> =
            if annotations.is_empty() { vec![&[]] } else { annotations.chunks(ANNOTATIONS_PER_REQUEST).collect() };
        let mut sent = 0;
        for (i, batch) in batches.iter().enumerate() {
            let last = i + 1 == batches.len();
            let mut output = json!({ "title": title, "summary": summary });
            if let Some(text) = &text {
                output["text"] = json!(text);
            }
            let mut body = if last {
                json!({
                    "status": "completed",
                    "conclusion": conclusion,
                    "completed_at": timestamp(SystemTime::now()),
                    "actions": [{
                        "label": fit(Field::ActionLabel, "Re-run"),
                        "description": fit(Field::ActionDescription, "Review this commit again"),
                        "identifier": fit(Field::ActionIdentifier, RERUN_ACTION),
                    }],
                })
            } else {
                json!({})
            };
            body["output"] = output.clone();
            let without_annotations = body.clone();
            if !batch.is_empty() {
                output["annotations"] = batch.iter().map(annotation_json).collect();
                body["output"] = output;
            }
            let expected = sent + batch.len();
            let (route, body, without_annotations) = (&route, &body, &without_annotations);
            self.retrying(&operation, |attempt| async move {
                let mut body = body;
                if attempt > 0 {
                    // The failed attempt may have been applied: annotations are appended, never replaced.
                    let run: RawCheckRun = self.get(route, &[]).await?;
                    if run.output.annotations_count >= expected {
                        if !last || run.status == "completed" {
                            return Ok(());
                        }
                        body = without_annotations;
                    }
                }
                let _: Value = self.patch(route, body).await?;
                Ok(())
            })
            .await?;
            sent = expected;
        }
        Ok(())
    }

    /// kpath's inline comments on a pull request, each with whether kpath already said it is fixed.
    pub async fn kpath_comments(&self, repo: &str, number: u64) -> Result<Vec<KpathComment>, GitHubError> {
        let operation = format!("reading the review comments of {repo}#{number}");
        let route = &format!("{}/pulls/{number}/comments", repo_route(repo, &operation)?);
        let comments: Vec<RawReviewComment> =
            self.retrying(&operation, |_| async move { self.get_pages(route, &[]).await }).await?;
        let noted: std::collections::HashSet<u64> = comments
            .iter()
            .filter(|c| is_bot(&c.user) && c.body.contains(FIXED_MARKER))
            .filter_map(|c| c.in_reply_to_id)
            .collect();
        Ok(comments
            .iter()
            .filter(|c| is_bot(&c.user) && c.in_reply_to_id.is_none())
            .filter_map(|c| {
                let fingerprints = fingerprints_in(&c.body);
                if fingerprints.is_empty() {
                    return None;
                }
                Some(KpathComment {
                    id: c.id,
                    fingerprints,
                    path: c.path.clone(),
                    line: c.line,
                    fixed_noted: noted.contains(&c.id),
                })
            })
            .collect())
    }

    /// The lines of each file of the pull request that review comments can go on (right side), read from
    /// the hunks GitHub shows: added and context lines. A file GitHub shows no patch for (binary, too
    /// large) has none.
    pub async fn commentable_lines(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<HashMap<String, std::collections::BTreeSet<u32>>, GitHubError> {
        let operation = format!("reading the files of {repo}#{number}");
        let route = &format!("{}/pulls/{number}/files", repo_route(repo, &operation)?);
        let files: Vec<RawPullFile> =
            self.retrying(&operation, |_| async move { self.get_pages(route, &[]).await }).await?;
        Ok(files
            .into_iter()
            .map(|f| {
                let lines = f.patch.as_deref().map(right_side_lines).unwrap_or_default();
                (f.filename, lines)
            })
            .collect())
    }

    /// Posts `comments` as one review (event `COMMENT`) on `commit`, leaving out those whose findings all
    /// already have a kpath comment on the pull request (each fingerprint as many times as it has one). Nothing is posted
    /// when nothing is left. A 422 (a line off the diff) is [`GitHubError::Unprocessable`].
    pub async fn post_review(
        &self,
        repo: &str,
        number: u64,
        commit: &str,
        comments: &[InlineComment],
    ) -> Result<(), GitHubError> {
        let operation = format!("posting the review of {repo}#{number}");
        let repo_route = repo_route(repo, &operation)?;
        let list = format!("{repo_route}/pulls/{number}/comments");
        let reviews = format!("{repo_route}/pulls/{number}/reviews");
        if comments.is_empty() {
            return Ok(());
        }
        let (list, reviews) = (&list, &reviews);
        self.retrying(&operation, |_| async move {
            let existing: Vec<RawReviewComment> = self.get_pages(list, &[]).await?;
            let mut posted: HashMap<String, usize> = HashMap::new();
            for (_, fingerprints) in fingerprints(&existing) {
                for fingerprint in fingerprints {
                    *posted.entry(fingerprint).or_default() += 1;
                }
            }
            let fresh: Vec<Value> = comments
                .iter()
                .filter(|c| {
                    let all_posted = c.fingerprints.iter().all(|f| posted.get(f).is_some_and(|n| *n > 0));
                    if all_posted {
                        for f in &c.fingerprints {
                            if let Some(n) = posted.get_mut(f) {
                                *n -= 1;
                            }
                        }
                    }
                    !all_posted
                })
                .map(|c| {
                    let mut comment = json!({
                        "path": c.path,
                        "line": c.line,
                        "side": c.side,
                        "body": fit_keeping_fingerprint(&c.body, &c.fingerprints),
                    });
                    // A multi-line comment (a suggestion over several lines) starts on the same side.
                    if let Some(start) = c.start_line {
                        comment["start_line"] = json!(start);
                        comment["start_side"] = json!(c.side);
                    }
                    comment
                })
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            let summary = match fresh.len() {
                1 => "kpath: 1 new finding on a changed line. The kpath check run has the full summary.".to_string(),
                n => format!("kpath: {n} new findings on changed lines. The kpath check run has the full summary."),
            };
            let summary = fit(Field::ReviewBody, &summary);
            let body = json!({ "commit_id": commit, "event": "COMMENT", "body": summary, "comments": fresh });
            let _: Value = self.post(reviews, &body).await?;
            Ok(())
        })
        .await
    }

    /// Keeps one kpath summary comment on the pull request: edits the one that starts with
    /// [`SUMMARY_MARKER`], or creates it. `body` is cut to fit a comment.
    pub async fn upsert_summary(&self, repo: &str, number: u64, body: &str) -> Result<(), GitHubError> {
        self.summary(repo, number, body, true).await
    }

    /// Edits kpath's summary comment if the pull request has one; creates none.
    pub async fn update_summary(&self, repo: &str, number: u64, body: &str) -> Result<(), GitHubError> {
        self.summary(repo, number, body, false).await
    }

    /// The body of kpath's summary comment on the pull request, if there is one.
    pub async fn summary_body(&self, repo: &str, number: u64) -> Result<Option<String>, GitHubError> {
        let operation = format!("reading the summary comment of {repo}#{number}");
        let list = &format!("{}/issues/{number}/comments", repo_route(repo, &operation)?);
        let comments: Vec<RawIssueComment> =
            self.retrying(&operation, |_| async move { self.get_pages(list, &[]).await }).await?;
        Ok(comments.into_iter().find(is_summary).and_then(|c| c.body))
    }

    async fn summary(&self, repo: &str, number: u64, body: &str, create: bool) -> Result<(), GitHubError> {
        let operation = format!("updating the summary comment of {repo}#{number}");
        let repo_route = repo_route(repo, &operation)?;
        let list = format!("{repo_route}/issues/{number}/comments");
        let body = body.strip_prefix(SUMMARY_MARKER).unwrap_or(body).trim_start_matches('\n');
        let room = Field::CommentBody.limit() - SUMMARY_MARKER.len() - 1;
        let full = format!("{SUMMARY_MARKER}\n{}", fit_within(Field::CommentBody, body, room));
        let (list, full, repo_route) = (&list, &full, &repo_route);
        self.retrying(&operation, |_| async move {
            let comments: Vec<RawIssueComment> = self.get_pages(list, &[]).await?;
            let ours = comments.iter().find(|c| is_summary(c));
            match ours {
                Some(c) if c.body.as_deref() == Some(full.as_str()) => {}
                Some(c) => {
                    let route = format!("{repo_route}/issues/comments/{}", c.id);
                    let _: Value = self.patch(&route, &json!({ "body": full })).await?;
                }
                None if create => {
                    let _: Value = self.post(list, &json!({ "body": full })).await?;
                }
                None => {}
            }
            Ok(())
        })
        .await
    }

    /// Replies in the thread of review comment `comment_id`.
    pub async fn reply_to_review_comment(
        &self,
        repo: &str,
        number: u64,
        comment_id: u64,
        body: &str,
    ) -> Result<(), GitHubError> {
        let operation = format!("replying to review comment {comment_id} on {repo}#{number}");
        let repo_route = repo_route(repo, &operation)?;
        let list = format!("{repo_route}/pulls/{number}/comments");
        let route = format!("{list}/{comment_id}/replies");
        let body = fit(Field::CommentBody, body);
        let since = timestamp(SystemTime::now().checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH));
        let (list, route, body, since) = (&list, &route, &body, &since);
        self.retrying(&operation, |attempt| async move {
            if attempt > 0 {
                let recent: Vec<RawReviewComment> = self.get_pages(list, &[("since", since.clone())]).await?;
                let done = recent.iter().any(|c| {
                    is_bot(&c.user) && c.body == **body && c.in_reply_to_id.is_some_and(|to| to == comment_id)
                });
                if done {
                    return Ok(());
                }
            }
            let _: Value = self.post(route, &json!({ "body": body })).await?;
            Ok(())
        })
        .await
    }

    /// Reacts to an issue comment (`content`: `+1`, `-1`, `laugh`, `confused`, `heart`, `hooray`,
    /// `rocket`, `eyes`). Reacting twice is one reaction.
    pub async fn react(&self, repo: &str, comment_id: u64, content: &str) -> Result<(), GitHubError> {
        self.react_at(repo, "issues/comments", "comment", comment_id, content).await
    }

    /// Reacts to a review comment (in a thread on a line of the diff), as [`GitHub::react`] does to an issue
    /// comment.
    pub async fn react_to_review_comment(&self, repo: &str, comment_id: u64, content: &str) -> Result<(), GitHubError> {
        self.react_at(repo, "pulls/comments", "review comment", comment_id, content).await
    }

    /// `POST {repo}/{comments}/{id}/reactions`.
    async fn react_at(
        &self,
        repo: &str,
        comments: &str,
        what: &str,
        comment_id: u64,
        content: &str,
    ) -> Result<(), GitHubError> {
        let operation = format!("reacting {content} to {what} {comment_id} on {repo}");
        let route = format!("{}/{comments}/{comment_id}/reactions", repo_route(repo, &operation)?);
        let route = &route;
        self.retrying(&operation, |_| async move {
            let _: Value = self.post(route, &json!({ "content": content })).await?;
            Ok(())
        })
        .await
    }

    /// Comments on the pull request's conversation.
    pub async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<(), GitHubError> {
        let operation = format!("commenting on {repo}#{number}");
        let route = format!("{}/issues/{number}/comments", repo_route(repo, &operation)?);
        let body = fit(Field::CommentBody, body);
        let since = timestamp(SystemTime::now().checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH));
        let (route, body, since) = (&route, &body, &since);
        self.retrying(&operation, |attempt| async move {
            if attempt > 0 {
                let recent: Vec<RawIssueComment> = self.get_pages(route, &[("since", since.clone())]).await?;
                if recent.iter().any(|c| is_bot(&c.user) && c.body.as_deref() == Some(&**body)) {
                    return Ok(());
                }
            }
            let _: Value = self.post(route, &json!({ "body": body })).await?;
            Ok(())
        })
        .await
    }
}

/// The right-side line numbers a unified-diff patch shows (added and context lines).
fn right_side_lines(patch: &str) -> std::collections::BTreeSet<u32> {
    let mut lines = std::collections::BTreeSet::new();
    let mut next: Option<u32> = None;
    for line in patch.lines() {
        if let Some(header) = line.strip_prefix("@@ ") {
            // `@@ -a,b +c,d @@`: the right side starts at c.
            next = header
                .split_whitespace()
                .find_map(|part| part.strip_prefix('+'))
                .and_then(|range| range.split(',').next())
                .and_then(|start| start.parse().ok());
            continue;
        }
        let Some(n) = next else { continue };
        match line.as_bytes().first() {
            Some(b'-') => {}
            Some(b'\\') => {}
            _ => {
                lines.insert(n);
                next = Some(n + 1);
            }
        }
    }
    lines
}

fn is_summary(comment: &RawIssueComment) -> bool {
    is_bot(&comment.user) && comment.body.as_deref().is_some_and(|b| b.starts_with(SUMMARY_MARKER))
}

fn is_bot(user: &Option<RawUser>) -> bool {
    user.as_ref().is_some_and(|u| u.kind == "Bot")
}

/// (id, fingerprints) of the comments that are kpath's.
fn fingerprints(comments: &[RawReviewComment]) -> Vec<(u64, Vec<String>)> {
    comments
        .iter()
        .filter(|c| is_bot(&c.user))
        .map(|c| (c.id, fingerprints_in(&c.body)))
        .filter(|(_, f)| !f.is_empty())
        .collect()
}
/// An annotation as the check-run API takes it, its text fitted.
fn annotation_json(annotation: &Annotation) -> Value {
    json!({
        "path": annotation.path,
        "start_line": annotation.start_line,
        "end_line": annotation.end_line,
        "annotation_level": annotation.annotation_level,
        "title": fit(Field::AnnotationTitle, &annotation.title),
        "message": fit(Field::AnnotationMessage, &annotation.message),
    })
}
/// `/repos/OWNER/NAME` for `OWNER/NAME`.
fn repo_route(repo: &str, operation: &str) -> Result<String, GitHubError> {
    let valid = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid(owner) && valid(name) => Ok(format!("/repos/{owner}/{name}")),
        _ => Err(GitHubError::Other {
            operation: operation.to_string(),
            status: None,
            message: format!("{repo:?} is not an OWNER/NAME repository"),
        }),
    }
}

/// A commit or branch name as a path part (`/` kept: GitHub takes branch names with slashes there).
fn encode_ref(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An ISO 8601 UTC timestamp, as GitHub writes them.
fn timestamp(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
