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

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{ACCEPT, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Request, Uri};
use octocrab::auth::AppAuth;
use octocrab::models::{AppId, InstallationId};
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::{AuthState, EncodingKey, OctoBody, Octocrab, OctocrabBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::review::plan::{Annotation, Conclusion, FINGERPRINT_MARKER, InlineComment};

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

const MEDIA_TYPE: &str = "application/vnd.github+json";
const API_VERSION: &str = "2022-11-28";
const AGENT: &str = concat!("kpath/", env!("CARGO_PKG_VERSION"));
const PER_PAGE: usize = 100;
/// Lists are read up to this many pages (10,000 items).
const MAX_PAGES: u32 = 100;
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
    pub fingerprint: String,
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
    /// A client for `installation` of App `app_id` at `api` (`https://api.github.com`, a GitHub Enterprise
    /// Server's `https://HOST/api/v3`), with the default retries. Gets an installation token at once, so a
    /// wrong key, App id or installation fails here.
    pub async fn for_installation(
        api: &str,
        app_id: u64,
        private_key_pem: &SecretString,
        installation: u64,
    ) -> Result<GitHub, GitHubError> {
        GitHub::for_installation_with_retry(api, app_id, private_key_pem, installation, RetryPolicy::default()).await
    }

    /// [`GitHub::for_installation`] with `retry` instead of the default policy.
    pub async fn for_installation_with_retry(
        api: &str,
        app_id: u64,
        private_key_pem: &SecretString,
        installation: u64,
        retry: RetryPolicy,
    ) -> Result<GitHub, GitHubError> {
        let operation = format!("connecting to GitHub as installation {installation} of App {app_id}");
        let invalid = |message: String| GitHubError::Other { operation: operation.clone(), status: None, message };
        let (base, https) = parse_api(api).map_err(invalid)?;
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
            .map_err(|_| invalid("the App's private key is not a PEM-encoded RSA key".to_string()))?;
        let tls = tls_config(https).map_err(invalid)?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, OctoBody>(connector);
        let service = tower::ServiceBuilder::new()
            .layer(BaseUriLayer::new(base))
            .map_request(graphql_on_enterprise)
            // Every answer is counted by status, and the rate limit left is kept as a gauge.
            .map_response(|response: http::Response<hyper::body::Incoming>| {
                super::metrics::github_request(response.status().as_u16());
                let remaining = response.headers().get("x-ratelimit-remaining").and_then(|v| v.to_str().ok());
                if let Some(remaining) = remaining.and_then(|v| v.parse::<u64>().ok()) {
                    super::metrics::github_rate_limit_remaining(remaining);
                }
                response
            })
            .map_request(|mut request: Request<OctoBody>| {
                let headers = request.headers_mut();
                headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
                headers.insert(HeaderName::from_static("x-github-api-version"), HeaderValue::from_static(API_VERSION));
                headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
                request
            })
            .service(client);
        let Ok(app) = OctocrabBuilder::new_empty()
            .with_service(service)
            .with_auth(AuthState::App(AppAuth { app_id: AppId(app_id), key }))
            .build();
        let crab = app
            .installation(InstallationId(installation))
            .map_err(|e| invalid(format!("octocrab refused the installation: {e}")))?;
        let github = GitHub { crab, retry, api: api.to_string(), installation, budget: None };
        github.installation_token().await?;
        Ok(github)
    }

    /// Every content-creating request waits for `budget` first.
    pub fn with_budget(mut self, budget: Arc<dyn PostingBudget>) -> GitHub {
        self.budget = Some(budget);
        self
    }

    async fn spend(&self) {
        if let Some(budget) = &self.budget {
            budget.take(self.installation).await;
        }
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
                Some(KpathComment {
                    id: c.id,
                    fingerprint: fingerprint_in(&c.body)?,
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

    /// Resolves the review threads that start with the comments `comment_ids` (GraphQL: GitHub's REST API
    /// cannot), reading the pull request's threads once. Returns how many were found; a thread already
    /// resolved is left as it is.
    pub async fn resolve_threads(&self, repo: &str, number: u64, comment_ids: &[u64]) -> Result<usize, GitHubError> {
        let operation = format!("resolving {} review thread(s) on {repo}#{number}", comment_ids.len());
        let mut wanted: std::collections::HashSet<u64> = comment_ids.iter().copied().collect();
        let mut found = 0;
        let (owner, name) = repo_route(repo, &operation).map(|_| repo.split_once('/').unwrap_or_default())?;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            if wanted.is_empty() {
                break;
            }
            let query = json!({
                "query": THREADS_QUERY,
                "variables": { "owner": owner, "name": name, "number": number, "cursor": cursor },
            });
            let query = &query;
            let page: RawThreadsData = self.retrying(&operation, |_| async move { self.graphql(query).await }).await?;
            let threads = page.repository.and_then(|r| r.pull_request).map(|p| p.review_threads);
            let Some(threads) = threads else { break };
            for thread in &threads.nodes {
                let first = thread.comments.nodes.first().and_then(|c| c.full_database_id);
                if !first.is_some_and(|id| wanted.remove(&id)) {
                    continue;
                }
                found += 1;
                if !thread.is_resolved {
                    let mutation = json!({ "query": RESOLVE_MUTATION, "variables": { "id": thread.id } });
                    let mutation = &mutation;
                    let _: Value = self.retrying(&operation, |_| async move { self.graphql(mutation).await }).await?;
                }
            }
            if !threads.page_info.has_next_page {
                break;
            }
            cursor = threads.page_info.end_cursor;
        }
        Ok(found)
    }

    /// Posts `comments` as one review (event `COMMENT`) on `commit`, leaving out those whose fingerprint
    /// already has a kpath comment on the pull request (as many times as it has one). Nothing is posted
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
            for (_, fingerprint) in fingerprints(&existing) {
                *posted.entry(fingerprint).or_default() += 1;
            }
            let fresh: Vec<Value> = comments
                .iter()
                .filter(|c| match posted.get_mut(&c.fingerprint) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        false
                    }
                    _ => true,
                })
                .map(|c| {
                    json!({
                        "path": c.path,
                        "line": c.line,
                        "side": c.side,
                        "body": fit_keeping_fingerprint(&c.body, &c.fingerprint),
                    })
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

    // -----------------------------------------------------------------------------------------
    // Requests and retries
    // -----------------------------------------------------------------------------------------

    /// Runs `attempt` (given the number of failed attempts so far) until it succeeds, fails in a way not
    /// worth retrying, or the policy's attempts are spent.
    async fn retrying<T, F, Fut>(&self, operation: &str, mut attempt: F) -> Result<T, GitHubError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut failed = 0;
        loop {
            let failure = match attempt(failed).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            failed += 1;
            match failure.wait(failed, &self.retry) {
                Some(wait) if wait <= self.retry.max_wait && failed < self.retry.attempts => {
                    tracing::warn!(
                        operation,
                        attempt = failed,
                        wait_ms = wait.as_millis() as u64,
                        "GitHub: {failure}; retrying"
                    );
                    (self.retry.sleep)(wait).await;
                }
                Some(wait) if wait > self.retry.max_wait => {
                    let last = format!("{failure}; asked to wait {}s, longer than kpath waits", wait.as_secs());
                    return Err(GitHubError::Unavailable { operation: operation.to_string(), attempts: failed, last });
                }
                Some(_) => {
                    let last = failure.to_string();
                    return Err(GitHubError::Unavailable { operation: operation.to_string(), attempts: failed, last });
                }
                None => return Err(failure.into_error(operation)),
            }
        }
    }

    async fn timed<T>(&self, request: impl Future<Output = octocrab::Result<T>>) -> Result<T, Failure> {
        let answer = match tokio::time::timeout(self.retry.request_timeout, request).await {
            Ok(result) => result.map_err(Failure::from),
            Err(_) => Err(Failure::Timeout(self.retry.request_timeout)),
        };
        if let Err(Failure::Transport(_) | Failure::Timeout(_)) = &answer {
            // No answer to count by status.
            super::metrics::github_request(0);
        }
        answer
    }

    async fn get<T: DeserializeOwned>(&self, route: &str, query: &[(&str, String)]) -> Result<T, Failure> {
        if query.is_empty() {
            self.timed(self.crab.get(route, None::<&()>)).await
        } else {
            self.timed(self.crab.get(route, Some(query))).await
        }
    }

    // Every body kpath sends leaves through `post` or `patch` (GraphQL too): the one place where the
    // secrets of the reviews in flight are removed from what GitHub receives (see `crate::redact`).

    async fn post<T: DeserializeOwned>(&self, route: &str, body: &Value) -> Result<T, Failure> {
        self.spend().await;
        let body = crate::redact::redact_registered_json(body);
        self.timed(self.crab.post(route, Some(&*body))).await
    }

    async fn patch<T: DeserializeOwned>(&self, route: &str, body: &Value) -> Result<T, Failure> {
        self.spend().await;
        let body = crate::redact::redact_registered_json(body);
        self.timed(self.crab.patch(route, Some(&*body))).await
    }

    /// A GraphQL request; errors GitHub reports in the answer's `errors` are failures not worth retrying.
    async fn graphql<T: DeserializeOwned>(&self, body: &Value) -> Result<T, Failure> {
        let answer: RawGraphql<T> = self.post(GRAPHQL_ROUTE, body).await?;
        match (answer.data, answer.errors) {
            (Some(data), None) => Ok(data),
            (_, Some(errors)) => {
                let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
                Err(Failure::Other(format!("GraphQL: {}", messages.join("; "))))
            }
            (None, None) => Err(Failure::Other("GraphQL: an answer without data".to_string())),
        }
    }

    /// Every page of a list (up to [`MAX_PAGES`]), [`PER_PAGE`] items at a time.
    async fn get_pages<T: DeserializeOwned>(&self, route: &str, query: &[(&str, String)]) -> Result<Vec<T>, Failure> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut query = query.to_vec();
            query.push(("per_page", PER_PAGE.to_string()));
            query.push(("page", page.to_string()));
            let items: Vec<T> = self.get(route, &query).await?;
            let full = items.len() >= PER_PAGE;
            all.extend(items);
            if !full {
                return Ok(all);
            }
        }
        tracing::warn!(route, pages = MAX_PAGES, "GitHub: list longer than kpath reads; the rest is ignored");
        Ok(all)
    }
}

/// One failed attempt.
#[derive(Debug)]
enum Failure {
    /// GitHub answered with an error status.
    Status {
        status: u16,
        message: String,
        headers: HeaderMap,
    },
    /// No answer: the connection failed or broke.
    Transport(String),
    Timeout(Duration),
    /// Anything else (an answer that does not parse, a JWT that cannot be signed).
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { status, message, .. } => write!(f, "{status}: {message}"),
            Failure::Transport(message) => write!(f, "no answer: {message}"),
            Failure::Timeout(after) => write!(f, "no answer within {}s", after.as_secs()),
            Failure::Other(message) => f.write_str(message),
        }
    }
}

impl From<octocrab::Error> for Failure {
    fn from(error: octocrab::Error) -> Failure {
        match error {
            octocrab::Error::GitHub { source, .. } => Failure::Status {
                status: source.status_code.as_u16(),
                message: source.to_string(),
                headers: source.headers.clone().unwrap_or_default(),
            },
            octocrab::Error::Hyper { source, .. } => Failure::Transport(source.to_string()),
            octocrab::Error::Service { source, .. } => Failure::Transport(source.to_string()),
            octocrab::Error::JWT { .. } => {
                Failure::Other("the App's JWT could not be signed with its private key".into())
            }
            octocrab::Error::Json { source, .. } => Failure::Other(format!("GitHub's answer does not parse: {source}")),
            octocrab::Error::Serde { source, .. } => {
                Failure::Other(format!("GitHub's answer does not parse: {source}"))
            }
            other => Failure::Other(other.to_string()),
        }
    }
}

impl Failure {
    /// How long to wait before the next attempt, after `failed` attempts; `None` when retrying cannot help.
    fn wait(&self, failed: u32, policy: &RetryPolicy) -> Option<Duration> {
        let backoff = policy.first_backoff.saturating_mul(2u32.saturating_pow(failed.saturating_sub(1)));
        match self {
            Failure::Transport(_) | Failure::Timeout(_) => Some(backoff),
            Failure::Other(_) => None,
            Failure::Status { status, headers, .. } => {
                let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
                let retry_after = number("retry-after").map(Duration::from_secs);
                let exhausted = number("x-ratelimit-remaining") == Some(0);
                let until_reset = number("x-ratelimit-reset").map(|reset| {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    Duration::from_secs(reset.saturating_sub(now).max(1))
                });
                match status {
                    500..=599 => Some(retry_after.unwrap_or(backoff)),
                    403 | 429 => match (retry_after, exhausted) {
                        (Some(wait), _) => Some(wait),
                        (None, true) => Some(until_reset.unwrap_or(Duration::from_secs(60))),
                        // A secondary rate limit without headers: GitHub asks for at least a minute.
                        (None, false) if *status == 429 => Some(Duration::from_secs(60).max(backoff)),
                        (None, false) => None,
                    },
                    _ => None,
                }
            }
        }
    }

    fn into_error(self, operation: &str) -> GitHubError {
        let operation = operation.to_string();
        match self {
            Failure::Status { status: 401, message, .. } => GitHubError::Unauthorized { operation, message },
            Failure::Status { status: 404, message, .. } => GitHubError::NotFound { operation, message },
            Failure::Status { status: 422, message, .. } => GitHubError::Unprocessable { operation, message },
            Failure::Status { status, message, .. } => GitHubError::Other { operation, status: Some(status), message },
            failure @ (Failure::Transport(_) | Failure::Timeout(_)) => {
                GitHubError::Unavailable { operation, attempts: 1, last: failure.to_string() }
            }
            Failure::Other(message) => GitHubError::Other { operation, status: None, message },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What is read of GitHub's answers
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawPull {
    number: u64,
    state: PullState,
    #[serde(default)]
    draft: Option<bool>,
    head: RawBranch,
    base: RawBranch,
}

#[derive(Deserialize)]
struct RawBranch {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
    repo: Option<RawRepo>,
}

#[derive(Deserialize)]
struct RawRepo {
    full_name: String,
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
struct RawCompare {
    merge_base_commit: RawCommit,
}

#[derive(Deserialize)]
struct RawCommit {
    sha: String,
}

#[derive(Deserialize)]
struct RawCheckRuns {
    check_runs: Vec<RawCheckRun>,
}

#[derive(Deserialize)]
struct RawCheckRun {
    id: u64,
    status: String,
    output: RawCheckRunOutput,
}

#[derive(Deserialize)]
struct RawCheckRunOutput {
    annotations_count: usize,
}

#[derive(Deserialize)]
struct RawUser {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawIssueComment {
    id: u64,
    body: Option<String>,
    user: Option<RawUser>,
}

#[derive(Deserialize)]
struct RawReviewComment {
    id: u64,
    body: String,
    #[serde(default)]
    path: String,
    line: Option<u64>,
    user: Option<RawUser>,
    in_reply_to_id: Option<u64>,
}

#[derive(Deserialize)]
struct RawPullFile {
    filename: String,
    patch: Option<String>,
}

#[derive(Deserialize)]
struct RawGraphql<T> {
    data: Option<T>,
    errors: Option<Vec<RawGraphqlError>>,
}

#[derive(Deserialize)]
struct RawGraphqlError {
    message: String,
}

#[derive(Deserialize)]
struct RawThreadsData {
    repository: Option<RawThreadsRepo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreadsRepo {
    pull_request: Option<RawThreadsPull>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreadsPull {
    review_threads: RawThreads,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreads {
    page_info: RawPageInfo,
    nodes: Vec<RawThread>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThread {
    id: String,
    is_resolved: bool,
    comments: RawThreadComments,
}

#[derive(Deserialize)]
struct RawThreadComments {
    nodes: Vec<RawThreadComment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThreadComment {
    /// The comment's REST id. A `BigInt`, which GitHub's GraphQL encodes as a string
    /// (<https://docs.github.com/en/graphql/reference/scalars#bigint>); a number is read too.
    #[serde(default, deserialize_with = "big_int")]
    full_database_id: Option<u64>,
}

/// A GraphQL `BigInt`: a decimal string (as GitHub sends it) or a JSON number; null or anything else is `None`.
fn big_int<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BigInt {
        Text(String),
        Number(u64),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<BigInt>::deserialize(deserializer)? {
        Some(BigInt::Text(text)) => text.trim().parse().ok(),
        Some(BigInt::Number(n)) => Some(n),
        Some(BigInt::Other(_)) | None => None,
    })
}

/// GitHub's GraphQL endpoint, relative to the REST base (`/api/graphql` on GitHub Enterprise Server, which
/// the request layer rewrites).
const GRAPHQL_ROUTE: &str = "/graphql";

/// A pull request's review threads, each with its first comment's REST id. `fullDatabaseId`, not
/// `databaseId`: the latter is a 32-bit `Int` that GitHub's schema deprecates, and review comment ids
/// passed 2^31 long ago, so GitHub answers it with null and an error.
const THREADS_QUERY: &str = "query($owner: String!, $name: String!, $number: Int!, $cursor: String) { \
repository(owner: $owner, name: $name) { pullRequest(number: $number) { \
reviewThreads(first: 100, after: $cursor) { pageInfo { hasNextPage endCursor } \
nodes { id isResolved comments(first: 1) { nodes { fullDatabaseId } } } } } } }";

const RESOLVE_MUTATION: &str =
    "mutation($id: ID!) { resolveReviewThread(input: { threadId: $id }) { thread { id isResolved } } }";

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

/// (id, fingerprint) of the comments that are kpath's.
fn fingerprints(comments: &[RawReviewComment]) -> Vec<(u64, String)> {
    comments.iter().filter(|c| is_bot(&c.user)).filter_map(|c| Some((c.id, fingerprint_in(&c.body)?))).collect()
}

/// The fingerprint of the last `<!-- kpath:fingerprint=… -->` marker in a comment body.
fn fingerprint_in(body: &str) -> Option<String> {
    let start = body.rfind(FINGERPRINT_MARKER)? + FINGERPRINT_MARKER.len();
    let rest = &body[start..];
    let end = rest.find(" -->")?;
    let fingerprint = &rest[..end];
    let valid =
        !fingerprint.is_empty() && fingerprint.len() <= 64 && fingerprint.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| fingerprint.to_string())
}

// ---------------------------------------------------------------------------------------------
// GitHub's limits on the text kpath sends
// ---------------------------------------------------------------------------------------------

/// A text field kpath sends to GitHub. [`Field::limit`] is GitHub's documented limit, which [`fit`]
/// enforces and the fake GitHub checks (422 above it, as GitHub answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A check run's `name`.
    CheckRunName,
    /// A check run's `output.title`.
    CheckRunTitle,
    /// A check run's `output.summary` (Markdown).
    CheckRunSummary,
    /// A check run's `output.text`, the details under the summary (Markdown).
    CheckRunText,
    /// An annotation's `title`.
    AnnotationTitle,
    /// An annotation's `message` (plain text).
    AnnotationMessage,
    /// A check-run button's `label`.
    ActionLabel,
    /// A check-run button's `description`.
    ActionDescription,
    /// A check-run button's `identifier`.
    ActionIdentifier,
    /// An issue comment's `body` (the summary, replies to commands; Markdown).
    CommentBody,
    /// A review's `body` (Markdown).
    ReviewBody,
    /// A review comment's or a reply's `body` (Markdown).
    ReviewCommentBody,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::CheckRunName,
        Field::CheckRunTitle,
        Field::CheckRunSummary,
        Field::CheckRunText,
        Field::AnnotationTitle,
        Field::AnnotationMessage,
        Field::ActionLabel,
        Field::ActionDescription,
        Field::ActionIdentifier,
        Field::CommentBody,
        Field::ReviewBody,
        Field::ReviewCommentBody,
    ];

    /// The most bytes GitHub takes in this field. Sources: the check-run endpoints
    /// (<https://docs.github.com/rest/checks/runs#update-a-check-run>: summary 65,535, annotation message
    /// and raw details "64 KB", annotation title 255 characters, action label 20, description 40,
    /// identifier 20; GitHub counts the summary in bytes, github/docs#35252) and the 65,536-character body
    /// GitHub's 422 names for comments, reviews and review comments. "64 KB" is read as 64,000, the
    /// smaller reading. GitHub documents no limit for a check run's name and title: kpath keeps them to
    /// an annotation title's 255.
    pub const fn limit(self) -> usize {
        match self {
            Field::CheckRunName | Field::CheckRunTitle | Field::AnnotationTitle => 255,
            Field::CheckRunSummary | Field::CheckRunText => 65_535,
            Field::AnnotationMessage => 64_000,
            Field::ActionLabel | Field::ActionIdentifier => 20,
            Field::ActionDescription => 40,
            Field::CommentBody | Field::ReviewBody | Field::ReviewCommentBody => 65_536,
        }
    }

    fn is_markdown(self) -> bool {
        matches!(
            self,
            Field::CheckRunSummary
                | Field::CheckRunText
                | Field::CommentBody
                | Field::ReviewBody
                | Field::ReviewCommentBody
        )
    }
}

/// Ends a short field kpath cut.
pub const TRUNCATED: &str = "…(truncated)";
/// Ends a body kpath cut, on a line of its own.
pub const TRUNCATED_NOTE: &str = "\n\n…(truncated: longer than GitHub allows)";
/// How far back from the limit a cut looks for a line's end.
const LINE_SEARCH: usize = 4096;

/// `text` as GitHub takes it in `field`: itself when it fits, else cut (see the module documentation).
pub fn fit(field: Field, text: &str) -> Cow<'_, str> {
    fit_within(field, text, field.limit())
}

/// [`fit`] into `max` bytes (at most the field's limit), for a body that shares its field with a marker.
fn fit_within(field: Field, text: &str, max: usize) -> Cow<'_, str> {
    let max = max.min(field.limit());
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    if !field.is_markdown() {
        let multiline = text.contains('\n') && max > LINE_SEARCH;
        let room = max.saturating_sub(TRUNCATED.len() + usize::from(multiline));
        let mut end = floor_char_boundary(text, room);
        if multiline && let Some(newline) = text[..end].rfind('\n').filter(|n| end - n <= LINE_SEARCH) {
            end = newline;
        }
        let newline = if multiline { "\n" } else { "" };
        return Cow::Owned(format!("{}{newline}{TRUNCATED}", &text[..end]));
    }
    let mut room = max.saturating_sub(TRUNCATED_NOTE.len());
    // What the cut leaves open is closed after it; its closing takes room too, so the cut moves back
    // until both fit (a few rounds at most: the closing only shrinks as the text does).
    for _ in 0..8 {
        let end = markdown_cut(text, room);
        let closing = markdown_closing(&text[..end]);
        if end + closing.len() + TRUNCATED_NOTE.len() <= max {
            return Cow::Owned(format!("{}{closing}{TRUNCATED_NOTE}", &text[..end]));
        }
        room = room.saturating_sub(closing.len());
    }
    let end = floor_char_boundary(text, max.saturating_sub(TRUNCATED_NOTE.len()));
    Cow::Owned(format!("{}{TRUNCATED_NOTE}", &text[..end]))
}

/// Where to cut Markdown to keep at most `room` bytes: at the end of a line when one is within
/// [`LINE_SEARCH`] (so no link, emphasis or code span is cut in two), and before an HTML comment the cut
/// would fall inside (its rest would show as text).
fn markdown_cut(text: &str, room: usize) -> usize {
    let mut end = floor_char_boundary(text, room);
    if let Some(newline) = text[..end].rfind('\n').filter(|n| end - n <= LINE_SEARCH) {
        end = newline;
    }
    if let Some(open) = text[..end].rfind("<!--")
        && !text[open..end].contains("-->")
    {
        end = open;
    }
    end
}

/// What closes the constructs `kept` leaves open: a fenced code block (CommonMark: a line of three or more
/// backticks or tildes indented at most three spaces, closed by a line of the same character at least as
/// long) and `<details>` blocks, which the summary uses for diffs.
fn markdown_closing(kept: &str) -> String {
    let mut fence: Option<(char, usize)> = None;
    let mut details = 0usize;
    for line in kept.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let marker = rest.chars().next().filter(|c| matches!(c, '`' | '~') && indent <= 3);
        if let Some(c) = marker {
            let run = rest.len() - rest.trim_start_matches(c).len();
            if run >= 3 {
                match fence {
                    Some((open, length)) if open == c && run >= length && rest[run..].trim().is_empty() => {
                        fence = None;
                        continue;
                    }
                    // A backtick fence's info string cannot hold a backtick.
                    None if !(c == '`' && rest[run..].contains('`')) => {
                        fence = Some((c, run));
                        continue;
                    }
                    _ => {}
                }
            }
        }
        if fence.is_none() {
            details += line.matches("<details").count();
            details = details.saturating_sub(line.matches("</details>").count());
        }
    }
    let mut closing = String::new();
    if let Some((c, length)) = fence {
        closing.push('\n');
        closing.extend(std::iter::repeat_n(c, length));
    }
    for _ in 0..details {
        closing.push_str("\n\n</details>");
    }
    closing
}

/// The largest character boundary of `text` at or before `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A review comment's body fitted, its fingerprint marker kept at the end.
fn fit_keeping_fingerprint<'a>(body: &'a str, fingerprint: &str) -> Cow<'a, str> {
    let field = Field::ReviewCommentBody;
    if body.len() <= field.limit() {
        return Cow::Borrowed(body);
    }
    let marker = format!("{FINGERPRINT_MARKER}{fingerprint} -->");
    let text = body.strip_suffix(marker.as_str()).unwrap_or(body);
    let room = field.limit().saturating_sub(marker.len() + 1);
    Cow::Owned(format!("{}\n{marker}", fit_within(field, text, room)))
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

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The API base: https anywhere, http only on a loopback address.
pub(crate) fn parse_api(api: &str) -> Result<(Uri, bool), String> {
    if api.contains('@') {
        // Not repeated: it may hold a password.
        return Err("the API URL must not contain credentials".to_string());
    }
    let uri: Uri = api.trim_end_matches('/').parse().map_err(|_| format!("{api:?} is not a URL"))?;
    let host = uri.host().unwrap_or("");
    if uri.query().is_some() {
        return Err(format!("{api:?}: the API URL takes no query"));
    }
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok((uri, true)),
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok((uri, false)),
        Some("http") => Err(format!("{api:?}: plain http is only allowed on a loopback address")),
        _ => Err(format!("{api:?} is not an https:// URL")),
    }
}

/// GitHub Enterprise Server answers GraphQL at `/api/graphql`, beside (not under) the REST base `/api/v3`.
fn graphql_on_enterprise(mut request: Request<OctoBody>) -> Request<OctoBody> {
    if request.uri().path() == "/api/v3/graphql" {
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/api/graphql"));
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// rustls with the system's root certificates (GitHub Enterprise Servers often have a private CA). Over
/// plain http (a local fake) no roots are needed. Also `kpath setup`'s.
pub(crate) fn tls_config(https: bool) -> Result<rustls::ClientConfig, String> {
    use hyper_rustls::ConfigBuilderExt;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if https {
        builder.with_native_roots().map_err(|e| format!("TLS: cannot load the system's root certificates: {e}"))?
    } else {
        builder.with_root_certificates(rustls::RootCertStore::empty())
    };
    Ok(builder.with_no_client_auth())
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;

    use super::*;
    use crate::app::testing::fake_github::{
        AuthKind, FakeGitHub, Fault, Pull, TEST_APP_ID, TEST_INSTALLATION, TEST_ONLY_APP_PRIVATE_KEY, TEST_REPO, User,
    };

    const HEAD: &str = "1111111111111111111111111111111111111111";
    const BASE: &str = "2222222222222222222222222222222222222222";
    const MERGE_BASE: &str = "3333333333333333333333333333333333333333";
    const PR: u64 = 7;

    type Waits = Arc<Mutex<Vec<Duration>>>;

    /// Retries that record their waits instead of sleeping.
    fn no_sleep(waits: &Waits) -> RetryPolicy {
        let waits = waits.clone();
        RetryPolicy::default().with_sleep(move |wait| {
            waits.lock().unwrap().push(wait);
            Box::pin(async {})
        })
    }

    fn key() -> SecretString {
        SecretString::from(TEST_ONLY_APP_PRIVATE_KEY.to_string())
    }

    async fn connect(api: &str, app_id: u64, installation: u64, waits: &Waits) -> Result<GitHub, GitHubError> {
        GitHub::for_installation_with_retry(api, app_id, &key(), installation, no_sleep(waits)).await
    }

    struct Setup {
        fake: FakeGitHub,
        github: GitHub,
        waits: Waits,
    }

    impl Setup {
        fn waits(&self) -> Vec<Duration> {
            self.waits.lock().unwrap().clone()
        }

        fn route(&self, rest: &str) -> String {
            format!("/repos/{TEST_REPO}{rest}")
        }
    }

    /// A fake with pull request #7 (HEAD on BASE) and a client connected to it.
    async fn setup() -> Setup {
        let fake = FakeGitHub::start().await;
        let mut pull = Pull::new(PR, HEAD, BASE);
        pull.merge_base = MERGE_BASE.to_string();
        fake.add_pull(TEST_REPO, pull);
        let waits = Waits::default();
        let github = connect(fake.url(), TEST_APP_ID, TEST_INSTALLATION, &waits).await.expect("connects to the fake");
        Setup { fake, github, waits }
    }

    fn inline(path: &str, line: u32, fingerprint: &str) -> InlineComment {
        InlineComment {
            path: path.to_string(),
            line,
            side: "RIGHT",
            body: format!("**error** `some-rule`: something\n\n<!-- kpath:fingerprint={fingerprint} -->"),
            rule: "some-rule",
            fingerprint: fingerprint.to_string(),
        }
    }

    fn annotations(n: usize) -> Vec<Annotation> {
        (0..n)
            .map(|i| Annotation {
                path: format!("apps/app{i}/deployment.yaml"),
                start_line: 3,
                end_line: 4,
                annotation_level: if i % 2 == 0 { "failure" } else { "warning" },
                title: format!("rule-{i}"),
                message: format!("finding {i}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn installation_token_is_exchanged_once_and_sent_on_every_request() {
        let s = setup().await;
        let token = s.github.installation_token().await.unwrap();
        assert!(token.expose_secret().starts_with("ghs_fake"), "a token the fake issued");
        s.github.pull(TEST_REPO, PR).await.unwrap();
        s.github.pull(TEST_REPO, PR).await.unwrap();
        let requests = s.fake.requests();
        let exchanges: Vec<_> = requests.iter().filter(|r| r.route().starts_with("/app/")).collect();
        assert_eq!(exchanges.len(), 1, "the token is cached: {requests:#?}");
        assert_eq!(exchanges[0].route(), format!("/app/installations/{TEST_INSTALLATION}/access_tokens"));
        assert_eq!((exchanges[0].auth_scheme.as_deref(), exchanges[0].auth), (Some("Bearer"), AuthKind::AppJwt));
        assert_eq!(exchanges[0].status, 201);
        let api: Vec<_> = requests.iter().filter(|r| r.route().starts_with("/repos/")).collect();
        assert_eq!(api.len(), 2);
        for r in api {
            assert_eq!(r.auth, AuthKind::InstallationToken, "{r:?}");
            assert!(matches!(r.auth_scheme.as_deref(), Some("Bearer" | "token")), "{r:?}");
            assert_eq!(r.status, 200);
        }
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn a_failed_token_exchange_is_retried() {
        let fake = FakeGitHub::start().await;
        fake.fail_next("POST", "/app/installations/", 503, 1);
        let waits = Waits::default();
        let github = connect(fake.url(), TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap();
        assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(1)]);
        assert_eq!(fake.requests_to("POST", "/app/").len(), 2);
        let token = github.installation_token().await.unwrap();
        assert!(token.expose_secret().starts_with("ghs_fake"));
        assert!(!format!("{github:?}").contains(token.expose_secret()), "the token is not in Debug output");
        fake.assert_no_violations();
    }

    #[tokio::test]
    async fn pull_requests_of_forks_are_found_by_head_commit() {
        let s = setup().await;
        let fork_head = "4444444444444444444444444444444444444444";
        let mut fork = Pull::new(8, fork_head, BASE);
        fork.head_repo = Some("someone/gitops".to_string());
        fork.head_ref = "patch-1".to_string();
        fork.draft = true;
        s.fake.add_pull(TEST_REPO, fork);
        let mut closed = Pull::new(9, fork_head, BASE);
        closed.state = "closed";
        s.fake.add_pull(TEST_REPO, closed);

        let info = s.github.pull(TEST_REPO, 8).await.unwrap();
        assert_eq!(
            info,
            PullInfo {
                number: 8,
                state: PullState::Open,
                draft: true,
                head_sha: fork_head.to_string(),
                head_ref: "patch-1".to_string(),
                head_repo: Some("someone/gitops".to_string()),
                base_ref: "main".to_string(),
                base_sha: BASE.to_string(),
            }
        );
        assert_eq!(s.github.pull(TEST_REPO, 9).await.unwrap().state, PullState::Closed);
        assert_eq!(s.github.pulls_for_commit(TEST_REPO, fork_head).await.unwrap(), vec![8]);
        assert_eq!(s.github.pulls_for_commit(TEST_REPO, HEAD).await.unwrap(), vec![PR]);
        assert_eq!(s.github.pulls_for_commit(TEST_REPO, BASE).await.unwrap(), Vec::<u64>::new());
        assert_eq!(s.github.merge_base(TEST_REPO, BASE, HEAD).await.unwrap(), MERGE_BASE);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn check_run_completed_with_120_annotations_takes_three_patches() {
        let s = setup().await;
        let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
        {
            let world = s.fake.world();
            let run = world.check_runs.iter().find(|r| r.id == id).unwrap();
            assert_eq!((run.name.as_str(), run.status.as_str(), run.head_sha.as_str()), ("kpath", "in_progress", HEAD));
        }
        let all = annotations(120);
        s.github
            .complete_check_run(TEST_REPO, id, &Conclusion::Failure, "3 new errors", "### kpath", None, &all)
            .await
            .unwrap();

        let patches = s.fake.requests_to("PATCH", &s.route(&format!("/check-runs/{id}")));
        let sizes: Vec<usize> = patches
            .iter()
            .map(|p| p.body.as_ref().and_then(|b| b["output"]["annotations"].as_array()).map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [50, 50, 20]);
        let completing: Vec<bool> =
            patches.iter().map(|p| p.body.as_ref().is_some_and(|b| b.get("conclusion").is_some())).collect();
        assert_eq!(completing, [false, false, true], "the conclusion comes with the last batch");
        let world = s.fake.world();
        let run = world.check_runs.iter().find(|r| r.id == id).unwrap();
        assert_eq!((run.status.as_str(), run.conclusion.as_deref()), ("completed", Some("failure")));
        assert_eq!(run.title.as_deref(), Some("3 new errors"));
        assert_eq!(run.annotations.len(), 120);
        assert_eq!(run.annotations[119]["title"], "rule-119");
        assert_eq!(
            run.actions,
            vec![json!({"label": "Re-run", "description": "Review this commit again", "identifier": "rerun"})]
        );
        drop(world);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn check_run_without_annotations_is_one_patch() {
        let s = setup().await;
        let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
        s.github
            .complete_check_run(TEST_REPO, id, &Conclusion::Neutral, "Nothing to review", "", None, &[])
            .await
            .unwrap();
        assert_eq!(s.fake.requests_to("PATCH", &s.route("/check-runs/")).len(), 1);
        assert_eq!(s.fake.world().check_runs[0].conclusion.as_deref(), Some("neutral"));
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn check_run_summary_over_the_limit_is_cut() {
        let s = setup().await;
        let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
        // Two bytes per character: the cut must land on a character boundary.
        let summary = "é".repeat(40_000);
        s.github.complete_check_run(TEST_REPO, id, &Conclusion::Success, "ok", &summary, None, &[]).await.unwrap();
        let stored = s.fake.world().check_runs[0].summary.clone().unwrap();
        assert!(stored.len() <= MAX_CHECK_SUMMARY && stored.chars().count() <= MAX_CHECK_SUMMARY);
        assert!(stored.starts_with("éé") && stored.ends_with(TRUNCATED_NOTE), "{}", &stored[stored.len() - 80..]);

        let id = s.github.start_check_run(TEST_REPO, BASE).await.unwrap();
        let summary = "x".repeat(MAX_CHECK_SUMMARY);
        s.github.complete_check_run(TEST_REPO, id, &Conclusion::Success, "ok", &summary, None, &[]).await.unwrap();
        assert_eq!(s.fake.world().check_runs[1].summary.as_deref(), Some(summary.as_str()), "at the limit: kept whole");
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn retried_check_run_creation_and_annotations_are_not_duplicated() {
        let s = setup().await;
        s.fake.inject(Fault::new("POST", &s.route("/check-runs"), 502, 1).after_applying());
        let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
        assert_eq!(s.fake.world().check_runs.len(), 1, "the run the failed attempt made is reused");
        assert_eq!(s.fake.world().check_runs[0].id, id);

        s.fake.inject(Fault::new("PATCH", &s.route("/check-runs/"), 502, 2).after_applying());
        s.github
            .complete_check_run(TEST_REPO, id, &Conclusion::Failure, "t", "s", None, &annotations(60))
            .await
            .unwrap();
        let world = s.fake.world();
        assert_eq!(world.check_runs[0].annotations.len(), 60);
        assert_eq!(world.check_runs[0].status, "completed");
        drop(world);
        assert_eq!(s.fake.requests_to("PATCH", &s.route("/check-runs/")).len(), 2, "both batches landed at once");
        assert_eq!(s.waits(), [Duration::from_secs(1); 3], "one retry for the creation and each batch");
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn sticky_summary_is_created_once_then_edited_in_place() {
        let s = setup().await;
        // Someone quoting the marker does not make their comment ours.
        s.fake.add_issue_comment(TEST_REPO, PR, User::human("alice"), &format!("{SUMMARY_MARKER}\nquoted"));
        s.github.upsert_summary(TEST_REPO, PR, "### ❌ kpath: 1 new error").await.unwrap();
        s.github.upsert_summary(TEST_REPO, PR, "### ✅ kpath: no new findings").await.unwrap();
        s.github.upsert_summary(TEST_REPO, PR, "### ✅ kpath: no new findings").await.unwrap();
        let world = s.fake.world();
        let ours: Vec<_> = world.issue_comments.iter().filter(|c| c.user == User::bot()).collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].body, format!("{SUMMARY_MARKER}\n### ✅ kpath: no new findings"));
        assert_eq!(
            world.issue_comments.iter().find(|c| c.user.login == "alice").unwrap().body,
            format!("{SUMMARY_MARKER}\nquoted")
        );
        drop(world);
        let comments = s.route(&format!("/issues/{PR}/comments"));
        assert_eq!(s.fake.requests_to("POST", &comments).len(), 1);
        assert_eq!(s.fake.requests_to("PATCH", &s.route("/issues/comments/")).len(), 1, "unchanged: not edited again");
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn review_is_posted_with_line_and_side_and_its_fingerprints_read_back() {
        let s = setup().await;
        // A human comment carrying a marker is not one of ours.
        s.fake.add_review_comment(
            TEST_REPO,
            PR,
            User::human("bob"),
            "a.yaml",
            1,
            "<!-- kpath:fingerprint=feedfeedfeedfeed -->",
        );
        let comments = [
            inline("apps/a/deployment.yaml", 9, "0123456789abcdef"),
            inline("apps/b/values.yaml", 3, "fedcba9876543210"),
        ];
        s.github.post_review(TEST_REPO, PR, HEAD, &comments).await.unwrap();

        let ids: Vec<u64> = {
            let world = s.fake.world();
            assert_eq!(world.reviews.len(), 1);
            let review = &world.reviews[0];
            assert_eq!((review.repo.as_str(), review.pull), (TEST_REPO, PR));
            assert_eq!((review.event.as_str(), review.commit_id.as_deref()), ("COMMENT", Some(HEAD)));
            assert!(review.body.len() < 200, "the review's own body is short: {}", review.body);
            let posted: Vec<(&str, Option<u64>, &str)> = world
                .review_comments
                .iter()
                .filter(|c| c.review_id == Some(review.id))
                .map(|c| (c.path.as_str(), c.line, c.side.as_str()))
                .collect();
            assert_eq!(
                posted,
                [("apps/a/deployment.yaml", Some(9), "RIGHT"), ("apps/b/values.yaml", Some(3), "RIGHT")]
            );
            world.review_comments.iter().filter(|c| c.review_id.is_some()).map(|c| c.id).collect()
        };

        let fingerprints: Vec<(u64, String)> =
            s.github.kpath_comments(TEST_REPO, PR).await.unwrap().into_iter().map(|c| (c.id, c.fingerprint)).collect();
        assert_eq!(fingerprints, [(ids[0], "0123456789abcdef".to_string()), (ids[1], "fedcba9876543210".to_string())]);
        // Posting the same findings again (the next push) adds nothing; a new one is posted alone.
        s.github.post_review(TEST_REPO, PR, HEAD, &comments).await.unwrap();
        assert_eq!(s.fake.world().reviews.len(), 1);
        let more = [comments[0].clone(), inline("apps/c/hpa.yaml", 5, "aaaaaaaaaaaaaaaa")];
        s.github.post_review(TEST_REPO, PR, HEAD, &more).await.unwrap();
        let world = s.fake.world();
        assert_eq!(world.reviews.len(), 2);
        assert_eq!(world.review_comments.iter().filter(|c| c.review_id == Some(world.reviews[1].id)).count(), 1);
        drop(world);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn review_answered_502_after_it_was_stored_is_not_duplicated() {
        let s = setup().await;
        s.fake.inject(Fault::new("POST", &s.route(&format!("/pulls/{PR}/reviews")), 502, 1).after_applying());
        let comments = [inline("a.yaml", 1, "0123456789abcdef"), inline("b.yaml", 2, "1123456789abcdef")];
        s.github.post_review(TEST_REPO, PR, HEAD, &comments).await.unwrap();
        let world = s.fake.world();
        assert_eq!((world.reviews.len(), world.review_comments.len()), (1, 2));
        drop(world);
        assert_eq!(s.fake.requests_to("POST", &s.route("/pulls/")).len(), 1, "the retry found the comments posted");
        assert_eq!(s.waits(), [Duration::from_secs(1)]);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn review_refused_with_422_is_unprocessable_and_not_retried() {
        let s = setup().await;
        s.fake.fail_next("POST", &s.route(&format!("/pulls/{PR}/reviews")), 422, 1);
        let error =
            s.github.post_review(TEST_REPO, PR, HEAD, &[inline("a.yaml", 1, "0123456789abcdef")]).await.unwrap_err();
        assert!(matches!(error, GitHubError::Unprocessable { .. }), "{error:?}");

        // GitHub's own reason: a line that is not part of the diff.
        let mut pull = Pull::new(8, HEAD, BASE);
        pull.commentable = Some(BTreeMap::from([("a.yaml".to_string(), BTreeSet::from([3]))]));
        s.fake.add_pull(TEST_REPO, pull);
        let error =
            s.github.post_review(TEST_REPO, 8, HEAD, &[inline("a.yaml", 9, "0123456789abcdef")]).await.unwrap_err();
        assert!(
            matches!(&error, GitHubError::Unprocessable { message, .. } if message.contains("part of the diff")),
            "{error}"
        );
        s.github.post_review(TEST_REPO, 8, HEAD, &[inline("a.yaml", 3, "0123456789abcdef")]).await.unwrap();
        assert!(s.waits().is_empty());
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn comment_after_a_502_is_posted_exactly_once() {
        let s = setup().await;
        let route = s.route(&format!("/issues/{PR}/comments"));
        s.fake.fail_next("POST", &route, 502, 1);
        s.github.comment(TEST_REPO, PR, "first").await.unwrap();
        // The answer lost after GitHub stored the comment.
        s.fake.inject(Fault::new("POST", &route, 502, 1).after_applying());
        s.github.comment(TEST_REPO, PR, "second").await.unwrap();
        let bodies: Vec<String> = s.fake.world().issue_comments.iter().map(|c| c.body.clone()).collect();
        assert_eq!(bodies, ["first", "second"]);
        assert_eq!(s.fake.requests_to("POST", &route).len(), 3);
        assert_eq!(s.waits(), [Duration::from_secs(1), Duration::from_secs(1)]);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn replies_and_reactions() {
        let s = setup().await;
        let thread = s.fake.add_review_comment(TEST_REPO, PR, User::human("carol"), "a.yaml", 4, "/kpath explain");
        s.fake.inject(Fault::new("POST", &s.route("/pulls/"), 502, 1).after_applying());
        s.github.reply_to_review_comment(TEST_REPO, PR, thread, "Here is why.").await.unwrap();
        {
            let world = s.fake.world();
            let replies: Vec<_> = world.review_comments.iter().filter(|c| c.in_reply_to_id == Some(thread)).collect();
            assert_eq!(replies.len(), 1, "retried once, posted once");
            assert_eq!((replies[0].body.as_str(), replies[0].user.clone()), ("Here is why.", User::bot()));
        }

        let comment = s.fake.add_issue_comment(TEST_REPO, PR, User::human("carol"), "/kpath recheck");
        s.github.react(TEST_REPO, comment, "eyes").await.unwrap();
        s.github.react(TEST_REPO, comment, "eyes").await.unwrap();
        let world = s.fake.world();
        assert_eq!(world.reactions.len(), 1);
        assert_eq!((world.reactions[0].comment_id, world.reactions[0].content.as_str()), (comment, "eyes"));
        drop(world);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn rate_limits_are_waited_out_as_github_asks() {
        let s = setup().await;
        let pull = s.route(&format!("/pulls/{PR}"));
        s.fake.inject(Fault::new("GET", &pull, 403, 1).header("retry-after", "7"));
        s.github.pull(TEST_REPO, PR).await.unwrap();
        s.fake.inject(Fault::new("GET", &pull, 429, 1));
        s.github.pull(TEST_REPO, PR).await.unwrap();
        let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 30;
        s.fake.inject(
            Fault::new("GET", &pull, 403, 1)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", &reset.to_string()),
        );
        s.github.pull(TEST_REPO, PR).await.unwrap();
        let waits = s.waits();
        assert_eq!(waits[..2], [Duration::from_secs(7), Duration::from_secs(60)]);
        assert!((Duration::from_secs(25)..=Duration::from_secs(30)).contains(&waits[2]), "{waits:?}");

        // Longer than kpath waits: given up at once, not retried early.
        s.fake.inject(Fault::new("GET", &pull, 429, 1).header("retry-after", "3600"));
        let error = s.github.pull(TEST_REPO, PR).await.unwrap_err();
        assert!(matches!(error, GitHubError::Unavailable { attempts: 1, .. }), "{error:?}");
        // A plain 403 is a permission problem, not a rate limit.
        s.fake.fail_next("GET", &pull, 403, 1);
        let error = s.github.pull(TEST_REPO, PR).await.unwrap_err();
        assert!(matches!(error, GitHubError::Other { status: Some(403), .. }), "{error:?}");
        assert_eq!(s.waits().len(), 3);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn server_errors_are_retried_with_backoff_then_unavailable() {
        let s = setup().await;
        let pull = s.route(&format!("/pulls/{PR}"));
        s.fake.fail_next("GET", &pull, 502, 10);
        let error = s.github.pull(TEST_REPO, PR).await.unwrap_err();
        assert!(matches!(error, GitHubError::Unavailable { attempts: 4, .. }), "{error:?}");
        assert_eq!(s.waits(), [1, 2, 4].map(Duration::from_secs));
        assert_eq!(s.fake.requests_to("GET", &pull).len(), 4);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn credentials_and_missing_things_are_told_apart() {
        let fake = FakeGitHub::start().await;
        let waits = Waits::default();
        let error = connect(fake.url(), TEST_APP_ID + 1, TEST_INSTALLATION, &waits).await.unwrap_err();
        assert!(matches!(error, GitHubError::Unauthorized { .. }), "wrong App id: {error:?}");
        let error = connect(fake.url(), TEST_APP_ID, 12345, &waits).await.unwrap_err();
        assert!(matches!(error, GitHubError::NotFound { .. }), "unknown installation: {error:?}");
        let not_a_key = SecretString::from("not a key".to_string());
        let error = GitHub::for_installation(fake.url(), TEST_APP_ID, &not_a_key, TEST_INSTALLATION).await.unwrap_err();
        assert!(matches!(error, GitHubError::Other { .. }), "{error:?}");
        assert!(!error.to_string().contains("not a key"), "the key is not repeated: {error}");

        let github = connect(fake.url(), TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap();
        let error = github.pull(TEST_REPO, 404).await.unwrap_err();
        assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
        let error = github.pull("someone/else", 1).await.unwrap_err();
        assert!(matches!(error, GitHubError::NotFound { .. }), "not in the installation: {error:?}");
        assert!(waits.lock().unwrap().is_empty());
        fake.assert_no_violations();
    }

    #[tokio::test]
    async fn enterprise_server_base_path_is_kept() {
        let fake = FakeGitHub::start().await;
        fake.add_pull(TEST_REPO, Pull::new(PR, HEAD, BASE));
        let waits = Waits::default();
        let github = connect(&format!("{}/api/v3/", fake.url()), TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap();
        github.comment(TEST_REPO, PR, "hello").await.unwrap();
        let paths: Vec<String> = fake.requests().iter().map(|r| r.route().to_string()).collect();
        assert_eq!(
            paths,
            [
                format!("/api/v3/app/installations/{TEST_INSTALLATION}/access_tokens"),
                format!("/api/v3/repos/{TEST_REPO}/issues/{PR}/comments"),
            ]
        );
        fake.assert_no_violations();
    }

    #[tokio::test]
    async fn bad_arguments_fail_before_any_request() {
        let s = setup().await;
        let before = s.fake.requests().len();
        for repo in ["noslash", "a/b/c", "../x", "o/", "o/r?x=1", "o/r#1"] {
            let error = s.github.pull(repo, 1).await.unwrap_err();
            assert!(matches!(error, GitHubError::Other { status: None, .. }), "{repo}: {error:?}");
        }
        assert_eq!(s.fake.requests().len(), before);
        let waits = Waits::default();
        for api in ["http://example.com", "ftp://127.0.0.1", "not a url", "https://", "https://u:secret@example.com"] {
            let error = connect(api, TEST_APP_ID, TEST_INSTALLATION, &waits).await.unwrap_err();
            assert!(matches!(error, GitHubError::Other { status: None, .. }), "{api}: {error:?}");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn calls_can_run_on_spawned_tasks() {
        let s = setup().await;
        let github = Arc::new(s.github);
        let task = tokio::spawn({
            let github = github.clone();
            async move { github.upsert_summary(TEST_REPO, PR, "summary").await }
        });
        task.await.unwrap().unwrap();
        s.fake.assert_no_violations();
    }

    /// Every call's future is `Send`, so jobs can run them on the multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(github: &GitHub, comments: &[InlineComment], annotations: &[Annotation]) {
        fn send<T: Send>(_: T) {}
        send(GitHub::for_installation("", 1, &key(), 1));
        send(github.installation_token());
        send(github.pull("", 1));
        send(github.pulls_for_commit("", ""));
        send(github.merge_base("", "", ""));
        send(github.start_check_run("", ""));
        send(github.complete_check_run("", 1, &Conclusion::Success, "", "", None, annotations));
        send(github.kpath_comments("", 1));
        send(github.commentable_lines("", 1));
        send(github.resolve_threads("", 1, &[]));
        send(github.post_review("", 1, "", comments));
        send(github.upsert_summary("", 1, ""));
        send(github.reply_to_review_comment("", 1, 1, ""));
        send(github.react("", 1, ""));
        send(github.comment("", 1, ""));
    }

    #[test]
    fn fingerprints_are_read_from_the_marker_only() {
        assert_eq!(
            fingerprint_in("x\n<!-- kpath:fingerprint=0123456789abcdef -->").as_deref(),
            Some("0123456789abcdef")
        );
        // The last marker counts (the plan puts it at the end).
        assert_eq!(
            fingerprint_in("<!-- kpath:fingerprint=aaaa --> y <!-- kpath:fingerprint=bbbb -->").as_deref(),
            Some("bbbb")
        );
        // Escaped by the plan when it came from the repository: not a marker.
        assert_eq!(fingerprint_in("&lt;!-- kpath:fingerprint=ffff --&gt;"), None);
        assert_eq!(fingerprint_in("<!-- kpath:fingerprint= -->"), None);
        assert_eq!(fingerprint_in("<!-- kpath:fingerprint=a b -->"), None);
        assert_eq!(fingerprint_in("<!-- kpath:fingerprint=abc"), None);
    }

    #[test]
    fn cutting_keeps_characters_whole_and_the_fingerprint() {
        assert_eq!(fit(Field::ActionLabel, "Re-run"), "Re-run");
        let title = "é".repeat(200);
        let cut = fit(Field::AnnotationTitle, &title);
        assert!(cut.len() <= 255 && cut.ends_with(TRUNCATED) && cut.starts_with("éé"), "{cut}");
        let marker = "<!-- kpath:fingerprint=0123456789abcdef -->";
        let body = format!("{}\n\n{marker}", "y".repeat(MAX_COMMENT));
        let cut = fit_keeping_fingerprint(&body, "0123456789abcdef");
        assert!(cut.len() <= MAX_COMMENT && cut.ends_with(&format!("{TRUNCATED_NOTE}\n{marker}")));
        assert_eq!(fingerprint_in(&cut).as_deref(), Some("0123456789abcdef"));
    }

    /// Every field, given three times its limit in two-, three- and four-byte characters, comes out within
    /// the limit, on a character boundary, marked; text within the limit is sent as it is.
    #[test]
    fn every_field_is_cut_to_githubs_limit() {
        for field in Field::ALL {
            let limit = field.limit();
            for unit in ["x", "é", "✓", "🦀", "line\n"] {
                let text = unit.repeat(3 * limit / unit.len() + 1);
                let cut = fit(field, &text);
                assert!(cut.len() <= limit, "{field:?} with {unit:?}: {} bytes", cut.len());
                assert!(cut.ends_with(TRUNCATED) || cut.ends_with(TRUNCATED_NOTE), "{field:?}: marked");
                let within = unit.repeat(limit / unit.len());
                assert!(matches!(fit(field, &within), Cow::Borrowed(_)), "{field:?}: kept whole at the limit");
            }
        }
        // What kpath itself sends always fits whole.
        for (field, text) in [
            (Field::CheckRunName, CHECK_NAME),
            (Field::ActionLabel, "Re-run"),
            (Field::ActionDescription, "Review this commit again"),
            (Field::ActionIdentifier, RERUN_ACTION),
        ] {
            assert!(matches!(fit(field, text), Cow::Borrowed(_)), "{field:?}");
        }
    }

    /// Markdown is cut at a line's end, never inside an HTML comment, and a fence or `<details>` it leaves
    /// open is closed.
    #[test]
    fn markdown_is_cut_between_its_constructs() {
        let limit = Field::CheckRunSummary.limit();
        let diff: String = (0..10_000).map(|i| format!("+line {i} with `code` and [a link](https://x)\n")).collect();
        let summary =
            format!("### kpath\n\n<details><summary>a (changed)</summary>\n\n````diff\n{diff}````\n\n</details>\n");
        let cut = fit(Field::CheckRunSummary, &summary);
        assert!(cut.len() <= limit);
        let body = cut.strip_suffix(TRUNCATED_NOTE).expect("marked");
        assert!(body.ends_with("\n````\n\n</details>"), "{}", &body[body.len() - 100..]);
        let before = body.strip_suffix("\n````\n\n</details>").expect("closed");
        assert!(before.ends_with("(https://x)"), "cut at a line's end: {}", &before[before.len() - 60..]);
        assert_eq!(markdown_closing(body), "", "nothing left open");
        // A tilde fence, and a backtick line that is not a fence (it has a backtick in its info string).
        assert_eq!(markdown_closing("~~~~yaml\na: 1\n```\n"), "\n~~~~");
        assert_eq!(markdown_closing("```not `a fence\ntext"), "");
        assert_eq!(markdown_closing("```\na\n```\n<details>\n"), "\n\n</details>");

        // A cut that would fall inside an HTML comment goes before it.
        let text = format!("{}<!-- {} -->", "a ".repeat(30_000), "hidden ".repeat(2_000));
        let cut = fit(Field::CommentBody, &text);
        assert!(!cut.contains("<!--") && cut.len() <= MAX_COMMENT, "{}", &cut[cut.len() - 60..]);
    }

    /// Oversized findings and comments go through the client to the fake GitHub (which answers 422 above
    /// any limit, as GitHub does) and what it stored is within every limit.
    #[tokio::test]
    async fn oversized_findings_and_comments_are_stored_within_githubs_limits() {
        let s = setup().await;
        let id = s.github.start_check_run(TEST_REPO, HEAD).await.unwrap();
        let mut huge = annotations(3);
        // The issue's example: an annotation message of 92,375 characters.
        huge[0].message = format!("{}\n", "value: é\n".repeat(10_000)).chars().take(92_375).collect();
        huge[1].title = "t".repeat(10_000);
        huge[2].message = "🦀".repeat(50_000);
        let summary = format!("```yaml\n{}", "key: value\n".repeat(20_000));
        let title = "a title from a hostile file name ".repeat(100);
        s.github.complete_check_run(TEST_REPO, id, &Conclusion::Failure, &title, &summary, None, &huge).await.unwrap();

        let mut comment = inline("apps/a/deployment.yaml", 9, "0123456789abcdef");
        comment.body = format!("{}\n\n<!-- kpath:fingerprint=0123456789abcdef -->", "**error** ".repeat(20_000));
        s.github.post_review(TEST_REPO, PR, HEAD, &[comment]).await.unwrap();
        s.github.upsert_summary(TEST_REPO, PR, &"| a | b |\n".repeat(20_000)).await.unwrap();
        s.github.comment(TEST_REPO, PR, &"é".repeat(70_000)).await.unwrap();
        let thread = s.fake.add_review_comment(TEST_REPO, PR, User::human("carol"), "a.yaml", 4, "/kpath explain");
        s.github.reply_to_review_comment(TEST_REPO, PR, thread, &"✓".repeat(70_000)).await.unwrap();

        let world = s.fake.world();
        let run = &world.check_runs[0];
        assert!(run.title.as_deref().is_some_and(|t| t.len() <= 255 && t.ends_with(TRUNCATED)));
        let stored_summary = run.summary.as_deref().unwrap();
        assert!(stored_summary.len() <= 65_535 && stored_summary.ends_with(&format!("\n```{TRUNCATED_NOTE}")));
        assert_eq!(run.annotations.len(), 3);
        for annotation in &run.annotations {
            let (message, title) = (annotation["message"].as_str().unwrap(), annotation["title"].as_str().unwrap());
            assert!(message.len() <= 64_000 && title.len() <= 255, "{} / {}", message.len(), title.len());
        }
        assert!(run.annotations[0]["message"].as_str().unwrap().ends_with(&format!("\n{TRUNCATED}")));
        let review_comment = world.review_comments.iter().find(|c| c.review_id.is_some()).unwrap();
        assert!(review_comment.body.len() <= MAX_COMMENT);
        assert_eq!(fingerprint_in(&review_comment.body).as_deref(), Some("0123456789abcdef"));
        for c in &world.issue_comments {
            assert!(c.body.len() <= MAX_COMMENT && c.body.ends_with(TRUNCATED_NOTE), "{}", c.body.len());
        }
        assert!(world.issue_comments[0].body.starts_with(SUMMARY_MARKER));
        let reply = world.review_comments.iter().find(|c| c.in_reply_to_id == Some(thread)).unwrap();
        assert!(reply.body.len() <= MAX_COMMENT && reply.body.ends_with(TRUNCATED_NOTE));
        drop(world);
        s.fake.assert_no_violations();
    }

    #[tokio::test]
    async fn threads_are_found_by_ids_above_32_bits() {
        let s = setup().await;
        let first = s.fake.add_review_comment(TEST_REPO, PR, User::bot(), "a.yaml", 3, "first");
        let second = s.fake.add_review_comment(TEST_REPO, PR, User::bot(), "b.yaml", 4, "second");
        assert!(first > i32::MAX as u64 && second > i32::MAX as u64, "ids as large as github.com's: {first}");
        assert_eq!(s.github.resolve_threads(TEST_REPO, PR, &[second]).await.unwrap(), 1);
        let resolved: Vec<(u64, bool)> = s.fake.world().review_comments.iter().map(|c| (c.id, c.resolved)).collect();
        assert_eq!(resolved, [(first, false), (second, true)]);
        // The deprecated 32-bit field is answered as github.com answers it: null, with an error.
        let (owner, name) = TEST_REPO.split_once('/').unwrap();
        let old = json!({ "query": THREADS_QUERY.replace("fullDatabaseId", "databaseId"),
            "variables": { "owner": owner, "name": name, "number": PR, "cursor": null } });
        let error = s.github.graphql::<Value>(&old).await.unwrap_err();
        assert!(format!("{error:?}").contains("32-bit"), "{error:?}");
        s.fake.assert_no_violations();
    }

    #[test]
    fn graphql_goes_beside_the_rest_base_on_enterprise() {
        let rewrite = |uri: &str| {
            let request = Request::builder().uri(uri).body(OctoBody::empty()).expect("request");
            graphql_on_enterprise(request).uri().to_string()
        };
        assert_eq!(rewrite("https://ghe.example.com/api/v3/graphql"), "https://ghe.example.com/api/graphql");
        assert_eq!(rewrite("https://api.github.com/graphql"), "https://api.github.com/graphql");
        assert_eq!(
            rewrite("https://ghe.example.com/api/v3/repos/o/r/pulls"),
            "https://ghe.example.com/api/v3/repos/o/r/pulls"
        );
    }

    #[test]
    fn commentable_lines_are_read_from_patches() {
        let patch =
            "@@ -1,3 +1,4 @@\n a\n-b\n+c\n+d\n e\n@@ -20,2 +21,2 @@ spec:\n x\n\\ No newline at end of file\n+y";
        assert_eq!(right_side_lines(patch).into_iter().collect::<Vec<_>>(), [1, 2, 3, 4, 21, 22]);
        assert!(right_side_lines("Binary files differ").is_empty());
    }

    #[test]
    fn refs_are_encoded_for_the_path() {
        assert_eq!(encode_ref("feature/x-1.2"), "feature/x-1.2");
        assert_eq!(encode_ref("a b#?%"), "a%20b%23%3F%25");
    }
}
