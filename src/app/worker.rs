//! The work behind each job: review a pull request's head and post the result (check run, inline
//! review, sticky summary, "fixed" replies), or answer a `/kpath` command.
//!
//! A review job's check run is never left `in_progress`: once it is started, every way out completes
//! it — with the plan's conclusion, `cancelled` when a newer push made the result stale, or `failure`
//! with the reason when kpath could not review (a git or GitHub failure, no `helm` for a chart). A
//! failed review fails the gate rather than letting an unreviewed change through; the run's "Re-run"
//! button and `/kpath recheck` try again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use tokio::sync::mpsc;

use super::commands::{self, Command};
use super::events::Event;
use super::fetch::RepoCache;
use super::github::PostingBudget;
use super::github::{FIXED_MARKER, GitHub, GitHubError, KpathComment, PullInfo, PullState, RetryPolicy, RunConclusion};
use super::queue::{Cancel, Control, Processor};
use super::store::Claimed;
use crate::review::model::Status;
use crate::review::plan::{Conclusion, InlineComment, ReviewPlan};
use crate::review::run::{self, Source};

/// When completing a check run fails even after the client's retries (GitHub down), it is tried again
/// this many more times, waiting 30 s, 1, 2, 4 and 8 minutes: a check run must not stay in progress.
const COMPLETION_ROUNDS: u32 = 5;
const FIRST_COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A cached repository larger than this is deleted before the next fetch (shallow fetches make it cheap
/// to start again; otherwise old heads' objects would pile up).
const MAX_REPO_CACHE: u64 = 1 << 30;

/// At most this many inline comments per review; the rest go to the summary.
pub const MAX_INLINE_COMMENTS: usize = 25;
/// Hidden in the summary comment: the rules of the pull request's new findings, for `/kpath explain`.
const RULES_MARKER: &str = "<!-- kpath:rules=";

/// What a worker needs to reach GitHub and review.
pub struct WorkerConfig {
    /// The REST API base (`https://api.github.com`, `https://HOST/api/v3`, a local fake).
    pub api: String,
    pub app_id: u64,
    pub private_key: SecretString,
    /// Where repositories are fetched from (`https://github.com`); `<git_base>/<owner>/<name>.git`.
    pub git_base: String,
    pub cache_dir: PathBuf,
    /// The operator's bounds on what a repository's `.kpath.yml` may ask for.
    pub ceilings: crate::config::Ceilings,
    pub helm: Option<PathBuf>,
    pub kubectl: Option<PathBuf>,
    /// The host repositories live on (`github.com`), for the URLs Argo CD and Flux objects name them by.
    pub github_host: String,
    /// Chart sources the operator allows downloading from.
    pub allowed_chart_sources: Vec<String>,
    pub retry: RetryPolicy,
    /// Content-creating requests wait for this budget (shared by the replicas).
    pub budget: Option<Arc<dyn PostingBudget>>,
}

/// The processor of the job queue.
pub struct Worker {
    config: WorkerConfig,
    repos: RepoCache,
    clients: Mutex<HashMap<u64, Arc<GitHub>>>,
    /// One fetch at a time per repository (they share a bare repository).
    fetch_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Jobs this worker asks for (`/kpath recheck`), fed back into the queue.
    resubmit: mpsc::UnboundedSender<Event>,
}

/// How a check run is completed.
struct Completion {
    conclusion: RunConclusion,
    title: String,
    summary: String,
    /// The check run's details under the summary: every rendered change, in full where it fits.
    text: Option<String>,
    annotations: Vec<crate::review::plan::Annotation>,
}

/// Why a review stopped before posting.
enum Stop {
    /// A newer head is being reviewed; this one's results are stale.
    Superseded(String),
    /// kpath could not review: `public` is shown on the check run (what happened, in the user's terms),
    /// `detail` (internal error text: URLs, git and HTTP errors) goes only to the log, under a correlation id.
    Failed { public: String, detail: String },
}

impl Stop {
    fn failed(public: impl Into<String>, detail: impl Into<String>) -> Stop {
        Stop::Failed { public: public.into(), detail: detail.into() }
    }
}

impl Completion {
    fn without_annotations(conclusion: RunConclusion, title: String, summary: String) -> Completion {
        Completion { conclusion, title, summary, text: None, annotations: Vec::new() }
    }
}

impl From<GitHubError> for Stop {
    fn from(error: GitHubError) -> Stop {
        let public = match &error {
            GitHubError::Unavailable { .. } => {
                "GitHub did not answer kpath in time (it may be down, or limiting kpath's requests)."
            }
            GitHubError::Unauthorized { .. } => "GitHub refused the App's credentials.",
            GitHubError::NotFound { .. } => {
                "GitHub could not find something kpath needed (the repository, pull request or a commit)."
            }
            GitHubError::Unprocessable { .. } | GitHubError::Other { .. } => "GitHub refused a request kpath made.",
        };
        Stop::failed(public, error.to_string())
    }
}

/// A short random id that ties a check run's failure to kpath's log line about it.
fn correlation_id() -> String {
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    format!("{:08x}", u32::from_le_bytes(random))
}

impl Worker {
    pub fn new(config: WorkerConfig, resubmit: mpsc::UnboundedSender<Event>) -> Worker {
        let repos = RepoCache::new(config.cache_dir.join("repos"));
        Worker { config, repos, clients: Mutex::new(HashMap::new()), fetch_locks: Mutex::new(HashMap::new()), resubmit }
    }

    /// The client of an installation, made once and kept (octocrab renews its token).
    async fn client(&self, installation: Option<u64>) -> Result<Arc<GitHub>, String> {
        let Some(installation) = installation else {
            return Err("the event names no installation".to_string());
        };
        if let Some(client) = self.clients.lock().unwrap_or_else(|p| p.into_inner()).get(&installation) {
            return Ok(client.clone());
        }
        // Connected without the lock held, so one slow installation does not hold up the others (two jobs
        // may both connect; the second client is simply dropped).
        let c = &self.config;
        let mut client =
            GitHub::for_installation_with_retry(&c.api, c.app_id, &c.private_key, installation, c.retry.clone())
                .await
                .map_err(|e| e.to_string())?;
        if let Some(budget) = &c.budget {
            client = client.with_budget(budget.clone());
        }
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        Ok(clients.entry(installation).or_insert_with(|| Arc::new(client)).clone())
    }

    async fn review_job(&self, repo: &str, installation: Option<u64>, pull: Option<u64>, head: &str, held: &Held<'_>) {
        let github = match self.client(installation).await {
            Ok(github) => github,
            Err(error) => {
                tracing::error!(repo, head, "cannot act for this installation: {error}");
                return;
            }
        };
        let numbers = match pull {
            Some(n) => vec![n],
            None => match github.pulls_for_commit(repo, head).await {
                Ok(numbers) => numbers,
                Err(error) => {
                    tracing::error!(repo, head, "cannot find the pull request: {error}");
                    return;
                }
            },
        };
        if numbers.is_empty() {
            tracing::info!(repo, head, "no open pull request has this head; nothing to review");
        }
        if numbers.is_empty()
            && let Some(run) = held.check_run
        {
            // Taken over from a replica that had started the run: it must not stay in progress.
            let done = Completion::without_annotations(
                RunConclusion::Cancelled,
                "No open pull request has this commit".to_string(),
                format!("kpath stopped reviewing {head}: no open pull request has it as its head any more."),
            );
            self.complete(&github, repo, run, &done).await;
        }
        for number in numbers {
            self.review_pull(&github, repo, number, head, held).await;
        }
    }

    async fn review_pull(&self, github: &GitHub, repo: &str, number: u64, head: &str, held: &Held<'_>) {
        let cancel = &held.control.cancel;
        let pull = match github.pull(repo, number).await {
            Ok(pull) => pull,
            Err(error) => {
                tracing::error!(repo, number, "cannot read the pull request: {error}");
                return;
            }
        };
        let mut recorded = held.check_run;
        if recorded.is_none() && held.attempt > 1 {
            recorded = github.check_run_in_progress(repo, head).await.ok().flatten();
            if let Some(run) = recorded {
                held.control.record_check_run(run).await;
            }
        }
        let stale = if pull.state == PullState::Closed {
            tracing::info!(repo, number, "closed; not reviewed");
            Some("the pull request was closed".to_string())
        } else if pull.head_sha != head {
            tracing::info!(
                repo,
                number,
                head,
                current = pull.head_sha,
                "stale head; the newer one is reviewed instead"
            );
            Some(format!("the pull request moved on to {}", pull.head_sha))
        } else {
            None
        };
        if let Some(why) = stale {
            // A run a previous holder of this job started is completed, not left in progress.
            if let Some(run) = recorded {
                let done = Completion::without_annotations(
                    RunConclusion::Cancelled,
                    "Superseded".to_string(),
                    format!("kpath stopped reviewing {head}: {why}."),
                );
                self.complete(github, repo, run, &done).await;
            }
            return;
        }
        let run = match recorded {
            Some(run) => {
                tracing::info!(
                    repo,
                    number,
                    head,
                    run,
                    attempt = held.attempt,
                    "taken over; completing the same check run"
                );
                run
            }
            None => match github.start_check_run(repo, head).await {
                Ok(run) => {
                    held.control.record_check_run(run).await;
                    run
                }
                Err(error) => {
                    tracing::error!(repo, number, head, "cannot start the check run: {error}");
                    return;
                }
            },
        };
        if held.attempt > MAX_ATTEMPTS {
            // Every holder so far stopped half-way (killed, out of memory): stop trying.
            let done = Completion::without_annotations(
                RunConclusion::Failure,
                "kpath could not finish reviewing this commit".to_string(),
                gave_up_summary(head, held.attempt - 1),
            );
            self.complete(github, repo, run, &done).await;
            return;
        }
        tracing::info!(repo, number, head, run, "reviewing");
        let started = std::time::Instant::now();
        // The review's secrets stay registered until the check run is completed: everything posted and
        // logged meanwhile is redacted with them.
        let mut secrets = None;
        let completion = match self.review_and_post(github, repo, &pull, cancel, &mut secrets).await {
            Ok(completion) => completion,
            Err(Stop::Superseded(newer)) => Completion::without_annotations(
                RunConclusion::Cancelled,
                "Superseded by a newer push".to_string(),
                superseded_summary(head, &newer),
            ),
            Err(Stop::Failed { public, detail }) => {
                let correlation = correlation_id();
                tracing::error!(repo, number, head, correlation, "review failed: {}", crate::logtext::bounded(&detail));
                Completion::without_annotations(
                    RunConclusion::Failure,
                    "kpath could not review this commit".to_string(),
                    failed_summary(&public, &correlation),
                )
            }
        };
        self.complete(github, repo, run, &completion).await;
        let conclusion = serde_json::to_value(completion.conclusion).ok();
        super::metrics::review_finished(
            conclusion.as_ref().and_then(|c| c.as_str()).unwrap_or("other"),
            started.elapsed().as_secs_f64(),
        );
        drop(secrets);
    }

    /// Completes the check run, trying again for a while when GitHub stays unavailable.
    async fn complete(&self, github: &GitHub, repo: &str, run: u64, c: &Completion) {
        let mut wait = FIRST_COMPLETION_WAIT;
        for round in 0..=COMPLETION_ROUNDS {
            let text = c.text.as_deref();
            match github.complete_check_run(repo, run, c.conclusion, &c.title, &c.summary, text, &c.annotations).await {
                Ok(()) => return,
                Err(error) if round < COMPLETION_ROUNDS => {
                    tracing::warn!(repo, run, wait_s = wait.as_secs(), "cannot complete the check run yet: {error}");
                    self.config.retry.pause(wait).await;
                    wait = wait.saturating_mul(2);
                }
                Err(error) => tracing::error!(repo, run, "gave up completing the check run: {error}"),
            }
        }
    }

    async fn review_and_post(
        &self,
        github: &GitHub,
        repo: &str,
        pull: &PullInfo,
        cancel: &Cancel,
        secrets: &mut Option<crate::redact::Registration>,
    ) -> Result<Completion, Stop> {
        let number = pull.number;
        let head = pull.head_sha.clone();
        let merge_base = github.merge_base(repo, &pull.base_sha, &head).await?;
        let path = self.fetch(github, repo, number, &merge_base, &head).await?;

        let options = run::Options {
            fail_on: None,
            helm: self.config.helm.clone(),
            kubectl: self.config.kubectl.clone(),
            cache_dir: Some(self.config.cache_dir.join("renders")),
            no_cache: false,
            config_from: run::ConfigFrom::Base,
            ceilings: self.config.ceilings,
            repositories: crate::gitops::repo::github(&self.config.github_host, repo).into_iter().collect(),
            allowed_chart_sources: self.config.allowed_chart_sources.clone(),
            web: Some(format!("{}/{repo}", self.config.git_base.trim_end_matches('/'))),
        };
        let source = Source::Fetched { repo: path, merge_base, head: head.clone() };
        let plan = tokio::task::spawn_blocking(move || run::review(&source, &options))
            .await
            .map_err(|e| {
                Stop::failed("kpath failed unexpectedly while reviewing.", format!("the review crashed: {e}"))
            })?
            // A repository error (a broken `.kpath.yml`, an unreadable tree) is the author's to fix: shown as is.
            .map_err(|e| {
                let text = e.to_string();
                Stop::failed(crate::logtext::bounded(&text).to_string(), text)
            })?;
        *secrets = Some(crate::redact::register(plan.secrets.clone()));

        if cancel.is_store_unreachable() {
            return Err(Stop::failed(
                "kpath lost contact with its job database while reviewing, so it posted nothing. It reviews this \
                 commit again once the database is back; **Re-run** also does.",
                "the job store did not answer for a whole lease",
            ));
        }
        // Stale results are dropped: a newer push cancelled this job, or the pull request moved on.
        if cancel.is_cancelled() {
            return Err(Stop::Superseded("a newer commit".to_string()));
        }
        let now = github.pull(repo, number).await?;
        if now.head_sha != head {
            return Err(Stop::Superseded(now.head_sha));
        }
        self.post(github, repo, number, &head, &plan).await
    }

    /// Fetches the merge-base and the pull request's head (shallow) into the repository cache.
    async fn fetch(
        &self,
        github: &GitHub,
        repo: &str,
        number: u64,
        merge_base: &str,
        head: &str,
    ) -> Result<PathBuf, Stop> {
        let token = github.installation_token().await?;
        let lock = {
            let mut locks = self.fetch_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(repo.to_string()).or_default().clone()
        };
        let _guard = lock.lock().await;
        let url = format!("{}/{repo}.git", self.config.git_base.trim_end_matches('/'));
        // Forks' heads are fetched from the base repository, where GitHub keeps every pull request's
        // head as `refs/pull/N/head`.
        let refspecs = vec![
            format!("+{merge_base}:refs/kpath/pull/{number}/base"),
            format!("+refs/pull/{number}/head:refs/kpath/pull/{number}/head"),
        ];
        let (repo_name, head) = (repo.to_string(), head.to_string());
        let cache = self.repos.clone();
        tokio::task::spawn_blocking(move || {
            if cache.trim(&repo_name, MAX_REPO_CACHE) {
                tracing::info!(repo = repo_name, "repository cache over its size; fetching afresh");
            }
            let path = cache.fetch(&repo_name, &url, Some(&token), &refspecs, Some(1)).map_err(|e| e.to_string())?;
            let fetched = git2::Repository::open_bare(&path)
                .and_then(|r| r.refname_to_id(&format!("refs/kpath/pull/{number}/head")))
                .map_err(|e| format!("the fetched head of pull request #{number} cannot be read: {}", e.message()))?;
            if fetched.to_string() != head {
                return Ok(Err(fetched.to_string()));
            }
            Ok(Ok(path))
        })
        .await
        .map_err(|e| Stop::failed("kpath failed unexpectedly while fetching.", format!("the fetch crashed: {e}")))?
        .map_err(|detail: String| {
            Stop::failed("kpath could not fetch the pull request's commits from GitHub.", detail)
        })?
        .map_err(Stop::Superseded)
    }

    async fn post(
        &self,
        github: &GitHub,
        repo: &str,
        number: u64,
        head: &str,
        plan: &ReviewPlan,
    ) -> Result<Completion, Stop> {
        let existing = github.kpath_comments(repo, number).await?;
        let commentable =
            if plan.comments.is_empty() { HashMap::new() } else { github.commentable_lines(repo, number).await? };
        let (inline, mut demoted) = choose_inline(&plan.comments, &existing, &commentable);
        let mut note = None;
        match github.post_review(repo, number, head, &inline).await {
            Ok(()) => {}
            Err(GitHubError::Unprocessable { message, .. }) => {
                tracing::warn!(repo, number, "GitHub refused the review ({message}); findings go to the summary");
                note = Some(format!("GitHub refused the inline comments ({message}), so they are listed here."));
                demoted.extend(inline);
            }
            Err(error) => return Err(error.into()),
        }

        // Threads whose finding is gone: say so once, and resolve them.
        let present: HashSet<&str> =
            plan.findings.iter().filter(|f| f.status != Status::Fixed).map(|f| f.fingerprint.as_str()).collect();
        let reply = fixed_reply(head);
        let mut told = Vec::new();
        // A thread is fixed when none of the findings it is about is left.
        let fixed = |c: &&KpathComment| !c.fingerprints.iter().any(|f| present.contains(f.as_str()));
        for comment in existing.iter().filter(|c| !c.fixed_noted).filter(fixed) {
            match github.reply_to_review_comment(repo, number, comment.id, &reply).await {
                Ok(()) => told.push(comment.id),
                Err(error) => {
                    tracing::warn!(repo, number, comment = comment.id, "cannot reply that it is fixed: {error}")
                }
            }
        }
        if !told.is_empty()
            && let Err(error) = github.resolve_threads(repo, number, &told).await
        {
            tracing::warn!(repo, number, "cannot resolve the fixed threads: {error}");
        }

        let (summary, comment) = summaries(plan, &demoted, note.as_deref());
        if plan.conclusion == Conclusion::Neutral && demoted.is_empty() {
            // Nothing kpath checks was touched: keep an existing summary true, but start no conversation.
            github.update_summary(repo, number, &comment).await?;
        } else {
            github.upsert_summary(repo, number, &comment).await?;
        }
        tracing::info!(repo, number, head, conclusion = ?plan.conclusion, new = plan.counts.new, "review posted");
        let text = crate::review::plan::rendered_changes(plan, crate::app::github::Field::CheckRunText.limit());
        Ok(Completion {
            conclusion: (&plan.conclusion).into(),
            title: plan.title.clone(),
            summary,
            text: (!text.is_empty()).then_some(text),
            annotations: plan.annotations.clone(),
        })
    }

    /// Answers `/kpath` commands where they were written: in the conversation, or in the review thread
    /// (`thread`: the thread's first comment).
    async fn command_job(
        &self,
        repo: &str,
        installation: Option<u64>,
        pull: u64,
        comment_id: u64,
        thread: Option<u64>,
        body: &str,
    ) {
        let parsed = commands::parse(body);
        if parsed.is_empty() {
            return;
        }
        let github = match self.client(installation).await {
            Ok(github) => github,
            Err(error) => {
                tracing::error!(repo, pull, "cannot act for this installation: {error}");
                return;
            }
        };
        let reacted = match thread {
            Some(_) => github.react_to_review_comment(repo, comment_id, "eyes").await,
            None => github.react(repo, comment_id, "eyes").await,
        };
        if let Err(error) = reacted {
            tracing::warn!(repo, pull, comment_id, "cannot react: {error}");
        }
        for command in parsed {
            let reply = match command {
                Ok(Command::Help) => Some(commands::help_text()),
                Ok(Command::Explain { rule: Some(id) }) => Some(match crate::rules::find(&id) {
                    Some(rule) => rule.explanation_markdown(),
                    None => format!("There is no rule `{id}`."),
                }),
                Ok(Command::Explain { rule: None }) => Some(self.explain_all(&github, repo, pull).await),
                Ok(Command::Recheck) => {
                    match github.pull(repo, pull).await {
                        Ok(info) => {
                            let _ = self.resubmit.send(Event::Review {
                                repo: repo.to_string(),
                                installation,
                                pull: Some(pull),
                                head_sha: info.head_sha,
                                requested: true,
                                reason: "command.recheck".to_string(),
                            });
                        }
                        Err(error) => tracing::error!(repo, pull, "recheck: cannot read the pull request: {error}"),
                    }
                    None
                }
                Err(error) => Some(commands::error_reply(&error)),
            };
            let Some(reply) = reply else { continue };
            let sent = match thread {
                Some(thread) => github.reply_to_review_comment(repo, pull, thread, &reply).await,
                None => github.comment(repo, pull, &reply).await,
            };
            if let Err(error) = sent {
                tracing::error!(repo, pull, comment_id, "cannot reply: {error}");
            }
        }
    }

    /// `/kpath explain` without a rule: a compact list of the rules with new findings on the pull request
    /// (as the last review recorded them in the summary comment), one line each, and how to get more.
    async fn explain_all(&self, github: &GitHub, repo: &str, pull: u64) -> String {
        let body = match github.summary_body(repo, pull).await {
            Ok(body) => body,
            Err(error) => return summary_unreadable(&error),
        };
        let rules: Vec<(&'static crate::rules::Rule, usize)> = body
            .as_deref()
            .map(rules_in)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, count)| Some((crate::rules::find(&id)?, count)))
            .collect();
        rules_reply(&rules)
    }
}

/// `/kpath explain` without a rule: the rules with new findings (and their counts), one line each.
pub(crate) fn rules_reply(rules: &[(&'static crate::rules::Rule, usize)]) -> String {
    if rules.is_empty() {
        return "kpath has no new findings on this pull request, so there is nothing to explain. \
                    `/kpath explain RULE-ID` explains any rule."
            .to_string();
    }
    let mut out = String::from(
        "The rules with new findings on this pull request:\n\n| Rule | New | What it checks |\n|---|---|---|\n",
    );
    for (rule, count) in rules {
        let count = *count;
        out.push_str(&format!(
            "| `{}` ({}) | {count} | {} |\n",
            rule.id,
            rule.severity,
            rule.summary.replace('|', "\\|")
        ));
    }
    out.push_str(
        "\nReply `/kpath explain RULE-ID` for why a rule matters, how to fix it, and a bad and a good example.",
    );
    out
}

/// A review job as its holder sees it.
struct Held<'a> {
    control: &'a Control,
    /// The check run a previous holder started.
    check_run: Option<u64>,
    attempt: u32,
}

/// A job taken over this many times (each holder stopped half-way) is failed instead of tried again.
const MAX_ATTEMPTS: u32 = 3;

impl Processor for Worker {
    async fn process(&self, claimed: Claimed, control: Control) {
        let held = Held { control: &control, check_run: claimed.check_run, attempt: claimed.attempt };
        match claimed.job.event {
            Event::Review { repo, installation, pull, head_sha, reason, .. } => {
                tracing::info!(repo, ?pull, head = head_sha, reason, attempt = claimed.attempt, "review job");
                self.review_job(&repo, installation, pull, &head_sha, &held).await;
            }
            Event::Comment { repo, installation, pull, comment_id, author, body, thread } => {
                tracing::info!(repo, pull, comment_id, author, ?thread, "command job");
                self.command_job(&repo, installation, pull, comment_id, thread, &body).await;
            }
            Event::Installation { .. } => {}
        }
    }

    /// This process is stopping and no other replica will run the job: its head's check run says so
    /// (started now if need be), with a Re-run button, instead of the pull request showing nothing.
    async fn interrupted(&self, claimed: Claimed) {
        let Event::Review { repo, installation, head_sha, .. } = claimed.job.event else { return };
        let github = match self.client(installation).await {
            Ok(github) => github,
            Err(error) => {
                tracing::error!(repo, head = head_sha, "cannot tell GitHub the review was interrupted: {error}");
                return;
            }
        };
        let run = match claimed.check_run {
            Some(run) => run,
            None => match github.start_check_run(&repo, &head_sha).await {
                Ok(run) => run,
                Err(error) => {
                    tracing::error!(repo, head = head_sha, "cannot tell GitHub the review was interrupted: {error}");
                    return;
                }
            },
        };
        let title = "kpath was restarted before reviewing this commit".to_string();
        let summary = INTERRUPTED_SUMMARY.to_string();
        let done = Completion::without_annotations(RunConclusion::Cancelled, title, summary);
        let (text, annotations) = (done.text.as_deref(), &done.annotations);
        if let Err(error) =
            github.complete_check_run(&repo, run, done.conclusion, &done.title, &done.summary, text, annotations).await
        {
            tracing::error!(repo, run, "cannot complete the interrupted check run: {error}");
        }
    }
}

/// Splits the plan's comments into those posted inline and those moved to the summary: a comment
/// whose line GitHub does not show in the pull request's diff would make GitHub refuse the whole review,
/// and past [`MAX_INLINE_COMMENTS`] new ones a review is noise. Comments already on the pull request
/// (same fingerprint) stay inline, where `post_review` leaves them out.
pub fn choose_inline(
    comments: &[InlineComment],
    existing: &[KpathComment],
    commentable: &HashMap<String, BTreeSet<u32>>,
) -> (Vec<InlineComment>, Vec<InlineComment>) {
    let posted: HashSet<&str> = existing.iter().flat_map(|c| c.fingerprints.iter().map(String::as_str)).collect();
    let mut inline = Vec::new();
    let mut demoted = Vec::new();
    let mut fresh = 0;
    for comment in comments {
        // Every line a comment spans must be in the diff GitHub shows.
        let first = comment.start_line.unwrap_or(comment.line);
        let anchored =
            commentable.get(&comment.path).is_some_and(|lines| (first..=comment.line).all(|l| lines.contains(&l)));
        if !anchored {
            demoted.push(comment.clone());
        } else if comment.fingerprints.iter().all(|f| posted.contains(f.as_str())) {
            inline.push(comment.clone());
        } else if fresh < MAX_INLINE_COMMENTS {
            fresh += 1;
            inline.push(comment.clone());
        } else {
            demoted.push(comment.clone());
        }
    }
    (inline, demoted)
}

/// What the App posts for a plan on a first review, as data: the check run's fields, the inline comments and
/// the summary comment. Anchors are the lines the change added, as the local diff has them; the cap is the App's.
#[derive(Debug, Clone)]
pub struct Posted {
    /// `success`, `failure` or `neutral`.
    pub conclusion: &'static str,
    pub title: String,
    /// The check run's `output.summary`.
    pub summary: String,
    /// The check run's `output.text` (every rendered change), when anything changed.
    pub text: Option<String>,
    /// The review's inline comments (bodies end with the fingerprint marker).
    pub inline: Vec<InlineComment>,
    /// The summary comment's body as the worker hands it to the client (rules marker first; the client puts
    /// [`super::github::SUMMARY_MARKER`] before it).
    pub comment: String,
}

/// [`Posted`] for `plan`, as [`Worker`] would post it on a pull request with no kpath comment yet.
pub fn posted(plan: &ReviewPlan) -> Posted {
    let mut commentable: HashMap<String, BTreeSet<u32>> = HashMap::new();
    for c in &plan.comments {
        commentable.entry(c.path.clone()).or_default().extend(c.start_line.unwrap_or(c.line)..=c.line);
    }
    let (inline, demoted) = choose_inline(&plan.comments, &[], &commentable);
    let conclusion = match plan.conclusion {
        Conclusion::Success => "success",
        Conclusion::Failure => "failure",
        Conclusion::Neutral => "neutral",
    };
    let (summary, comment) = summaries(plan, &demoted, None);
    let text = crate::review::plan::rendered_changes(plan, super::github::Field::CheckRunText.limit());
    Posted { conclusion, title: plan.title.clone(), summary, text: (!text.is_empty()).then_some(text), inline, comment }
}

/// Everything the App would post for `plan`, as one Markdown text (`kpath review --format github`):
/// the check run, each inline comment under its `file:line`, and the summary comment.
pub fn render_posted(plan: &ReviewPlan) -> String {
    let posted = posted(plan);
    let mut out = format!("# Check run `kpath`: {} ({})\n\n", posted.conclusion, posted.title);
    out.push_str(&format!("# Review: {} inline comment(s)\n", posted.inline.len()));
    for comment in &posted.inline {
        let body = comment.visible_body();
        out.push_str(&format!("\n## `{}:{}`\n\n{body}\n", comment.path, lines_of(comment)));
    }
    out.push_str("\n# Summary comment\n\n");
    out.push_str(&posted.summary);
    out.push('\n');
    out
}

/// The check run's summary and the summary comment (the same text, the rules marker first: cutting a long
/// comment to GitHub's limit never drops it).
pub(crate) fn summaries(plan: &ReviewPlan, demoted: &[InlineComment], note: Option<&str>) -> (String, String) {
    let summary = summary_with(plan, demoted, note);
    let comment = format!("{}\n{summary}", rules_marker(plan));
    (summary, comment)
}

/// The check run's summary when kpath was stopped `stops` times while reviewing `head` and gave up.
pub(crate) fn gave_up_summary(head: &str, stops: u32) -> String {
    format!(
        "kpath was stopped {stops} times while reviewing {head} (a replica was killed or ran out of memory), so it \
         gave up. Press **Re-run** or comment `/kpath recheck` to try again."
    )
}

/// The check run's summary when the pull request moved on from `head` to `newer` during the review.
pub(crate) fn superseded_summary(head: &str, newer: &str) -> String {
    format!("kpath stopped reviewing {head} because the pull request moved on to {newer}.")
}

/// The check run's summary when kpath could not review: `public` says why in the user's terms (it may quote the
/// repository: a broken `.kpath.yml`), `correlation` finds the details in the log.
pub(crate) fn failed_summary(public: &str, correlation: &str) -> String {
    format!(
        "### ⚠️ kpath could not review this commit\n\n{}\n\nNothing was checked, so the check fails rather than \
         let an unreviewed change through. Press **Re-run** or comment `/kpath recheck` to try again.\n\n\
         Reference for kpath's operators: `{correlation}` (the log line with `correlation={correlation}` has the \
         details).",
        quote(public)
    )
}

/// The check run's summary when kpath stopped (a deployment, a restart) before reviewing.
pub(crate) const INTERRUPTED_SUMMARY: &str = "kpath stopped (a deployment or a restart) before it could review \
                                              this commit. Press **Re-run** or comment `/kpath recheck` to review it.";

/// The reply in a thread whose finding is gone at `head`.
pub(crate) fn fixed_reply(head: &str) -> String {
    let short: String = head.chars().take(7).collect();
    format!("✅ Fixed in {short}: kpath no longer finds this.\n\n{FIXED_MARKER}")
}

/// The `/kpath explain` reply when kpath cannot read its own summary comment.
pub(crate) fn summary_unreadable(error: &dyn std::fmt::Display) -> String {
    format!(
        "kpath could not read its summary to find the rules: {}",
        crate::review::plan::md_inline(&error.to_string())
    )
}

/// The lines a comment is on: `40`, or `36-40` for a multi-line comment.
fn lines_of(comment: &InlineComment) -> String {
    match comment.start_line {
        Some(first) => format!("{first}-{}", comment.line),
        None => comment.line.to_string(),
    }
}

/// The plan's summary, with the findings that could not be commented inline added in full.
fn summary_with(plan: &ReviewPlan, demoted: &[InlineComment], note: Option<&str>) -> String {
    // Whole findings only, within GitHub's limit (a check run's summary; with room for the markers of the
    // summary comment and the closing line): a summary is never cut in the middle of a finding, a fence or a
    // `<details>`.
    let budget = super::github::Field::CheckRunSummary.limit().saturating_sub(SUMMARY_RESERVE);
    if demoted.is_empty() {
        return fit_summary(&plan.summary, budget);
    }
    let note = note.unwrap_or("These could not go on a line of the diff, or there were too many to comment on.");
    // The plan's list of what it commented inline names only what really was.
    let summary = plan.summary_without(demoted);
    // The plan's summary may fill GitHub's limit on its own: it gives way for the section's heading and note.
    let mut out = fit_summary(summary.trim_end(), budget.saturating_sub(DEMOTED_HEAD + note.len()));
    out.push_str("\n\n#### Findings not commented inline\n\n");
    out.push_str(note);
    out.push('\n');
    let mut shown = 0;
    for comment in demoted {
        let body = comment.visible_body();
        let item = format!("\n---\n\n**`{}:{}`**\n\n{body}\n", comment.path, lines_of(comment));
        if out.len() + item.len() > budget {
            break;
        }
        out.push_str(&item);
        shown += 1;
    }
    if shown < demoted.len() {
        out.push_str(&format!(
            "\n…and {} more, not shown here to stay within GitHub's size limit: see the check run's annotations, or \
             run `kpath review` locally.\n",
            demoted.len() - shown
        ));
    }
    out
}

/// Room [`summary_with`] leaves below GitHub's limit: the rules marker and the line saying how many findings
/// were left out.
const SUMMARY_RESERVE: usize = 4_096;
/// Room for the heading of the findings not commented inline (its note apart).
const DEMOTED_HEAD: usize = 100;

/// Ends a summary [`fit_summary`] had to shorten.
const SUMMARY_CUT: &str = "\n_Shortened to stay within GitHub's size limit: the check run's details have every rendered \
                           change, and `kpath review` run locally shows everything._\n";

/// `summary` within `max` bytes, cut only between whole blocks: above "Rendered changes" every line is a block of
/// its own (headings, list items, table rows, paragraphs); below it, a cut goes before an object's `<details>` or
/// a unit's line, so every fence and `<details>` kept is closed. The object diffs give way first.
fn fit_summary(summary: &str, max: usize) -> String {
    if summary.len() <= max {
        return summary.to_string();
    }
    let room = max.saturating_sub(SUMMARY_CUT.len());
    let rendered = summary.find("\n#### Rendered changes\n").unwrap_or(summary.len());
    let cut = summary
        .rmatch_indices('\n')
        .map(|(at, _)| at)
        .find(|&at| {
            at <= room
                && (at <= rendered
                    || summary[at..].starts_with("\n<details><summary>")
                    || summary[at..].starts_with("\n**"))
        })
        .unwrap_or(0);
    format!("{}\n{SUMMARY_CUT}", &summary[..cut])
}

/// The hidden list of the rules of the plan's new findings, with their counts (`id:count,…`).
fn rules_marker(plan: &ReviewPlan) -> String {
    let mut rules: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in plan.findings.iter().filter(|f| f.status == Status::New && f.finding.counts()) {
        *rules.entry(f.finding.rule).or_default() += 1;
    }
    let list: Vec<String> = rules.into_iter().map(|(id, n)| format!("{id}:{n}")).collect();
    format!("{RULES_MARKER}{} -->", list.join(","))
}

/// The rules (and their counts of new findings) in a summary comment's marker; a marker written before
/// counts were kept gives 0.
fn rules_in(body: &str) -> Vec<(String, usize)> {
    let Some(start) = body.rfind(RULES_MARKER) else { return Vec::new() };
    let rest = &body[start + RULES_MARKER.len()..];
    let list = rest.split(" -->").next().unwrap_or("");
    list.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once(':') {
            Some((id, n)) => (id.to_string(), n.parse().unwrap_or(0)),
            None => (item.to_string(), 0),
        })
        .collect()
}

/// A reason shown as a quoted block (it may hold paths and git's words, never a credential; text from the
/// repository, such as a broken `.kpath.yml`'s keys, is escaped like every other).
fn quote(text: &str) -> String {
    text.lines().map(|l| format!("> {}", crate::review::plan::md_inline(l))).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(path: &str, line: u32, fingerprint: &str) -> InlineComment {
        InlineComment {
            path: path.to_string(),
            line,
            start_line: None,
            side: "RIGHT",
            body: format!("finding\n\n<!-- kpath:fingerprint={fingerprint} -->"),
            rules: vec!["image-latest"],
            fingerprints: vec![fingerprint.to_string()],
        }
    }

    #[test]
    fn anchors_off_the_diff_and_past_the_cap_go_to_the_summary() {
        let commentable = HashMap::from([("a.yaml".to_string(), (1..=100).collect::<BTreeSet<u32>>())]);
        let mut comments: Vec<InlineComment> = (1..=30).map(|i| comment("a.yaml", i, &format!("f{i:02}"))).collect();
        comments.push(comment("a.yaml", 200, "off"));
        comments.push(comment("b.yaml", 1, "other"));
        let existing = [KpathComment {
            id: 1,
            fingerprints: vec!["f30".to_string()],
            path: "a.yaml".to_string(),
            line: Some(30),
            fixed_noted: false,
        }];
        let (inline, demoted) = choose_inline(&comments, &existing, &commentable);
        assert_eq!(inline.len(), MAX_INLINE_COMMENTS + 1, "the cap counts new comments only");
        assert!(inline.iter().any(|c| c.fingerprints == ["f30"]));
        let demoted: Vec<&str> = demoted.iter().map(|c| c.fingerprints[0].as_str()).collect();
        assert_eq!(demoted, ["f26", "f27", "f28", "f29", "off", "other"]);
    }

    #[test]
    fn a_summary_with_many_findings_not_inline_stays_whole_within_the_limit() {
        let plan = ReviewPlan {
            conclusion: Conclusion::Failure,
            title: String::new(),
            summary: format!("### ❌ kpath\n\n{}", "- a finding\n".repeat(4_000)),
            comments: Vec::new(),
            annotations: Vec::new(),
            findings: Vec::new(),
            changes: Vec::new(),
            counts: Default::default(),
            secrets: Default::default(),
            parts: None,
        };
        let long = format!(
            "**error** `image-latest`: {}\n\n<details><summary>Why</summary>\n\nwhy\n\n</details>",
            "x".repeat(2_000)
        );
        let demoted: Vec<InlineComment> = (0..200)
            .map(|i| InlineComment {
                path: format!("f{i}.yaml"),
                line: 1,
                start_line: None,
                side: "RIGHT",
                body: format!("{long}\n\n<!-- kpath:fingerprint=f{i} -->"),
                rules: vec!["image-latest"],
                fingerprints: vec![format!("f{i}")],
            })
            .collect();
        let summary = summary_with(&plan, &demoted, None);
        assert!(
            summary.len() + rules_marker(&plan).len() < crate::review::plan::MAX_SUMMARY,
            "{} bytes",
            summary.len()
        );
        assert_eq!(summary.matches("<details>").count(), summary.matches("</details>").count());
        assert!(summary.contains("more, not shown here"), "the rest is counted");
        assert!(summary.ends_with("locally.\n"));
    }

    #[test]
    fn the_rules_marker_round_trips() {
        assert_eq!(rules_in("summary\n<!-- kpath:rules=a-b:3,c:1 -->"), [("a-b".to_string(), 3), ("c".to_string(), 1)]);
        assert_eq!(rules_in("an older summary <!-- kpath:rules=a-b -->"), [("a-b".to_string(), 0)]);
        assert!(rules_in("<!-- kpath:rules= -->").is_empty());
        assert!(rules_in("no marker").is_empty());
    }
}
