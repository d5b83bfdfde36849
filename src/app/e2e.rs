//! End-to-end tests of the App, after the model of rust-lang/bors's harness: the real `kpath serve`
//! (router, queue, worker) wired to the fake GitHub, which serves a real git repository over smart
//! HTTP and checks every REST request against GitHub's OpenAPI description. Webhooks are GitHub's
//! published examples (npm `@octokit/webhooks-examples`), adapted to the test repository and signed.
//! Nothing here sleeps to wait for work: each test waits until the queue is idle.

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::Command;

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::fake_github::{
    FakeGitHub, Fault, Pull, PullFile, TEST_APP_ID, TEST_INSTALLATION, TEST_ONLY_APP_PRIVATE_KEY, TEST_REPO, User,
};
use super::github::{FIXED_MARKER, RetryPolicy, SUMMARY_MARKER};
use super::serve::{self, Running, ServeArgs, Settings};
use super::webhook;

const SECRET: &str = "webhook-secret-for-end-to-end-tests";
const DEMO_PASSWORD: &str = "demo-not-a-real-password";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> PathBuf {
    let path = match std::env::var_os("KPATH_HELM") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => manifest_dir().join(".tools/helm-3.17.3/bin/helm"),
    };
    assert!(path.is_file(), "the pinned helm is missing: run `bash scripts/test` (looked for {})", path.display());
    path
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "init.defaultBranch=main"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("readable fixture");
        let target = to.join(entry.path().strip_prefix(from).expect("inside"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// GitHub's published example of `event` with `action`.
fn example(event: &str, action: &str) -> Value {
    let dir = std::env::var_os("KPATH_NPM").map(PathBuf::from).unwrap_or_else(|| manifest_dir().join(".tools/npm"));
    let index = dir.join("node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let text = std::fs::read_to_string(&index).unwrap_or_else(|e| {
        panic!("{}: {e}; run `bash scripts/test`, which installs GitHub's webhook examples", index.display())
    });
    let all: Value = serde_json::from_str(&text).expect("JSON");
    all.as_array()
        .and_then(|events| events.iter().find(|e| e["name"] == event))
        .and_then(|e| e["examples"].as_array())
        .and_then(|examples| examples.iter().find(|x| x["action"] == action))
        .cloned()
        .unwrap_or_else(|| panic!("no published example of {event}.{action}"))
}

/// Points an example at the test repository and installation.
fn adapt(mut payload: Value) -> Value {
    let (owner, name) = TEST_REPO.split_once('/').expect("owner/name");
    payload["repository"]["full_name"] = json!(TEST_REPO);
    payload["repository"]["name"] = json!(name);
    payload["repository"]["owner"]["login"] = json!(owner);
    payload["installation"] = json!({ "id": TEST_INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc=" });
    payload
}

/// A test: a git repository (the demo's base on `main`), the fake GitHub serving it, and `kpath serve`.
struct App {
    dir: tempfile::TempDir,
    fake: FakeGitHub,
    work: PathBuf,
    bare: PathBuf,
    base: String,
    running: Running,
    http: Client<HttpConnector, Full<axum::body::Bytes>>,
    deliveries: std::sync::atomic::AtomicU64,
}

impl App {
    async fn start() -> App {
        let _ = tracing_subscriber::fmt().with_test_writer().with_ansi(false).with_env_filter("kpath=debug").try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        copy_tree(&manifest_dir().join("fixtures/demo/base"), &work);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "base"]);
        let base = git(&work, &["rev-parse", "HEAD"]);
        let served = dir.path().join("served");
        let bare = served.join(format!("{TEST_REPO}.git"));
        std::fs::create_dir_all(bare.parent().expect("parent")).expect("mkdir");
        git(dir.path(), &["clone", "-q", "--bare", path_str(&work), path_str(&bare)]);
        // GitHub serves any commit of the repository by SHA.
        git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"]);

        let fake = FakeGitHub::start().await;
        fake.world().git_root = Some(served);
        let cache = dir.path().join("cache");
        let helm = helm();
        let env = |name: &str| -> Option<String> {
            Some(match name {
                "KPATH_APP_ID" => TEST_APP_ID.to_string(),
                "KPATH_PRIVATE_KEY" => TEST_ONLY_APP_PRIVATE_KEY.to_string(),
                "KPATH_WEBHOOK_SECRET" => SECRET.to_string(),
                "KPATH_GITHUB_API" => fake.url().to_string(),
                "KPATH_LISTEN" => "127.0.0.1:0".to_string(),
                "KPATH_CACHE_DIR" => cache.to_string_lossy().into_owned(),
                "KPATH_CONCURRENCY" => "2".to_string(),
                "KPATH_HELM" => helm.to_string_lossy().into_owned(),
                _ => return None,
            })
        };
        let settings = Settings::resolve(&ServeArgs::default(), &env).expect("valid settings");
        let listener = tokio::net::TcpListener::bind(settings.listen).await.expect("bind 127.0.0.1");
        let retry = RetryPolicy::default().with_sleep(|_| Box::pin(async {}));
        let running = serve::start(settings, retry, listener, std::future::pending()).await.expect("the server starts");
        let http = Client::builder(TokioExecutor::new()).build_http();
        App { dir, fake, work, bare, base, running, http, deliveries: Default::default() }
    }

    /// Commits `changes` (path → new content, `None` deletes) on the pull request's branch and pushes it
    /// as the branch and as `refs/pull/N/head`. Returns the new head.
    fn push(&self, number: u64, changes: &[(&str, Option<&str>)]) -> String {
        let branch = format!("feature-{number}");
        let exists = git(&self.work, &["branch", "--list", &branch]);
        if exists.is_empty() {
            git(&self.work, &["checkout", "-q", "-b", &branch, &self.base]);
        } else {
            git(&self.work, &["checkout", "-q", &branch]);
        }
        for (path, content) in changes {
            let file = self.work.join(path);
            match content {
                Some(text) => {
                    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&file, text).expect("write");
                }
                None => std::fs::remove_file(&file).expect("remove"),
            }
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", &format!("push to #{number}")]);
        let head = git(&self.work, &["rev-parse", "HEAD"]);
        let refspecs = [format!("{head}:refs/heads/{branch}"), format!("{head}:refs/pull/{number}/head")];
        git(&self.work, &["push", "-q", "-f", path_str(&self.bare), &refspecs[0], &refspecs[1]]);
        git(&self.work, &["checkout", "-q", "main"]);
        head
    }

    /// Opens or moves pull request `number` to `head` on the fake, with the files GitHub would list.
    fn set_pull(&self, number: u64, head: &str) {
        let pull = Pull::new(number, head, &self.base).with_files(self.files(head));
        self.fake.add_pull(TEST_REPO, pull);
    }

    /// The pull request's files as GitHub lists them, from git's own diff (an independent oracle).
    fn files(&self, head: &str) -> Vec<PullFile> {
        let status = git(&self.bare, &["diff", "--name-status", "--no-renames", &self.base, head]);
        status
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(kind, path)| {
                let patch = git(&self.bare, &["diff", "--no-color", "-U3", &self.base, head, "--", path]);
                let patch = patch.find("\n@@").map(|i| patch[i + 1..].to_string());
                let status = match kind {
                    "A" => "added",
                    "D" => "removed",
                    _ => "modified",
                };
                PullFile { filename: path.to_string(), status: status.to_string(), patch }
            })
            .collect()
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.work.join(path)).expect("fixture file")
    }

    /// Sends a webhook signed with `signature` (the right one when `None`); returns the status.
    async fn send_signed(&self, event: &str, delivery: &str, payload: &Value, signature: Option<&str>) -> u16 {
        let body = serde_json::to_vec(payload).expect("JSON");
        let signature = signature.map_or_else(|| webhook::sign(SECRET, &body), str::to_string);
        let request = http::Request::post(format!("http://{}/webhook", self.running.addr))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", signature)
            .body(Full::new(body.into()))
            .expect("request");
        let response = self.http.request(request).await.expect("the server answers");
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        status
    }

    async fn send(&self, event: &str, payload: &Value) -> u16 {
        let n = self.deliveries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.send_signed(event, &format!("delivery-{n}"), payload, None).await
    }

    /// A `pull_request` webhook (GitHub's example of `action`) for pull request `number` at `head`.
    fn pull_request_event(&self, action: &str, number: u64, head: &str) -> Value {
        let mut payload = adapt(example("pull_request", action));
        payload["number"] = json!(number);
        payload["pull_request"]["number"] = json!(number);
        payload["pull_request"]["state"] = json!("open");
        payload["pull_request"]["head"]["sha"] = json!(head);
        payload["pull_request"]["base"]["sha"] = json!(self.base);
        payload
    }

    /// An `issue_comment.created` webhook for a comment a person wrote on pull request `number`.
    fn comment_event(&self, number: u64, body: &str) -> Value {
        let id = self.fake.add_issue_comment(TEST_REPO, number, User::human("dev"), body);
        let mut payload = adapt(example("issue_comment", "created"));
        payload["issue"]["number"] = json!(number);
        payload["issue"]["pull_request"] =
            json!({ "url": format!("https://api.github.com/repos/{TEST_REPO}/pulls/{number}") });
        payload["comment"]["id"] = json!(id);
        payload["comment"]["body"] = json!(body);
        payload["comment"]["user"]["login"] = json!("dev");
        payload["comment"]["user"]["type"] = json!("User");
        payload["comment"]["performed_via_github_app"] = Value::Null;
        payload
    }

    /// Opens pull request `number` with `changes` and waits until kpath has reviewed it. Returns the head.
    async fn open(&self, number: u64, changes: &[(&str, Option<&str>)]) -> String {
        let head = self.push(number, changes);
        self.set_pull(number, &head);
        assert_eq!(self.send("pull_request", &self.pull_request_event("opened", number, &head)).await, 202);
        self.running.idle().await;
        head
    }

    /// Pushes to pull request `number` and waits until kpath has reviewed the new head.
    async fn synchronize(&self, number: u64, changes: &[(&str, Option<&str>)]) -> String {
        let head = self.push(number, changes);
        self.set_pull(number, &head);
        assert_eq!(self.send("pull_request", &self.pull_request_event("synchronize", number, &head)).await, 202);
        self.running.idle().await;
        head
    }

    /// Everything kpath wrote on GitHub, as text: for checking that nothing leaks.
    fn everything_posted(&self) -> String {
        let world = self.fake.world();
        let mut all = String::new();
        for run in &world.check_runs {
            all.push_str(&format!("{:?}{:?}{:?}\n", run.title, run.summary, run.annotations));
        }
        for c in &world.review_comments {
            all.push_str(&c.body);
        }
        for c in &world.issue_comments {
            all.push_str(&c.body);
        }
        for r in &world.reviews {
            all.push_str(&r.body);
        }
        all
    }

    /// No check run is left in progress, and every request was one GitHub would accept.
    fn assert_clean(&self) {
        let world = self.fake.world();
        let open: Vec<_> = world.check_runs.iter().filter(|r| r.status != "completed").collect();
        assert!(open.is_empty(), "check runs left in progress: {open:?}");
        drop(world);
        self.fake.assert_no_violations();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The checkout deployment of the demo's base with `spec.replicas` under an autoscaler: one new error,
/// on line 9.
fn with_replicas(app: &App) -> String {
    app.read("apps/checkout/deployment.yaml").replacen("spec:\n", "spec:\n  replicas: 3\n", 1)
}

const CHECKOUT: &str = "apps/checkout/deployment.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pull_request_gets_a_failing_check_inline_comments_and_one_summary() {
    let app = App::start().await;
    let demo = manifest_dir().join("fixtures/demo/head");
    let mut changes: Vec<(String, String)> = Vec::new();
    for entry in walkdir::WalkDir::new(&demo).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()) {
        let path = entry.path().strip_prefix(&demo).expect("inside").to_string_lossy().into_owned();
        changes.push((path, std::fs::read_to_string(entry.path()).expect("fixture")));
    }
    let changes: Vec<(&str, Option<&str>)> = changes.iter().map(|(p, c)| (p.as_str(), Some(c.as_str()))).collect();
    let head = app.open(7, &changes).await;

    let world = app.fake.world();
    assert_eq!(world.check_runs.len(), 1);
    let run = &world.check_runs[0];
    assert_eq!((run.name.as_str(), run.head_sha.as_str()), ("kpath", head.as_str()));
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(run.title.as_deref().is_some_and(|t| t.contains("new error")), "{:?}", run.title);
    assert!(!run.annotations.is_empty());
    assert_eq!(run.actions.first().and_then(|a| a["identifier"].as_str()), Some("rerun"));

    // One review, its comments on the lines that caused each breach (the fake refuses lines off the diff).
    assert_eq!(world.reviews.len(), 1);
    let at = |path: &str, line: u64, rule: &str| {
        world.review_comments.iter().any(|c| {
            c.path == path && c.line == Some(line) && c.body.contains(&format!("`{rule}`")) && c.commit_id == head
        })
    };
    assert!(at(CHECKOUT, 9, "hpa-replicas-conflict"), "replicas under an HPA, on its line");
    assert!(at(CHECKOUT, 27, "secret-in-env"), "the literal secret, on its value line");
    // A finding in a rendered chart, on the values line that set it.
    let on_values = |c: &&super::fake_github::ReviewComment| c.path == "charts/storefront/values-prod.yaml";
    assert_eq!(world.review_comments.iter().filter(on_values).map(|c| c.line).collect::<Vec<_>>(), [Some(6)]);
    let summaries: Vec<_> = world.issue_comments.iter().filter(|c| c.body.starts_with(SUMMARY_MARKER)).collect();
    assert_eq!(summaries.len(), 1);
    // The chart's replicas now render under its autoscaler, but the line to change (the values key) is
    // not in the diff: the summary lists it instead of commenting on a wrong line.
    let summary = &summaries[0].body;
    assert!(summary.contains("New findings not on a changed line"), "{summary}");
    assert!(summary.contains("charts/storefront/values.yaml:1"), "{summary}");
    drop(world);
    assert!(!app.everything_posted().contains(DEMO_PASSWORD), "a secret was posted");
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_fixes_the_finding_resolves_its_thread_once_and_passes() {
    let app = App::start().await;
    let broken = with_replicas(&app);
    let fixed = app.read(CHECKOUT).replace("memory: 512Mi", "memory: 768Mi");
    app.open(8, &[(CHECKOUT, Some(&broken))]).await;
    {
        let world = app.fake.world();
        assert_eq!(world.check_runs[0].conclusion.as_deref(), Some("failure"));
        assert_eq!(world.review_comments.len(), 1);
        assert_eq!((world.review_comments[0].path.as_str(), world.review_comments[0].line), (CHECKOUT, Some(9)));
    }
    // The same finding on the next push is not commented again.
    let same = broken.replace("memory: 512Mi", "memory: 600Mi");
    app.synchronize(8, &[(CHECKOUT, Some(&same))]).await;
    assert_eq!(app.fake.world().review_comments.len(), 1, "no duplicate comment");

    let head = app.synchronize(8, &[(CHECKOUT, Some(&fixed))]).await;
    {
        let world = app.fake.world();
        let last = world.check_runs.last().expect("a run");
        assert_eq!((last.head_sha.as_str(), last.conclusion.as_deref()), (head.as_str(), Some("success")));
        let original = &world.review_comments[0];
        assert!(original.resolved, "the fixed finding's thread is resolved");
        let replies: Vec<_> = world.review_comments.iter().filter(|c| c.in_reply_to_id == Some(original.id)).collect();
        assert_eq!(replies.len(), 1);
        assert!(
            replies[0].body.contains(&format!("Fixed in {}", &head[..7])) && replies[0].body.contains(FIXED_MARKER)
        );
        let summaries: Vec<_> = world.issue_comments.iter().filter(|c| c.body.starts_with(SUMMARY_MARKER)).collect();
        assert_eq!(summaries.len(), 1, "one summary, edited in place");
        assert!(summaries[0].body.contains("no new findings"), "{}", summaries[0].body);
    }
    // Another push: the fixed thread is not told again.
    app.synchronize(8, &[(CHECKOUT, Some(&fixed.replace("768Mi", "800Mi")))]).await;
    assert_eq!(app.fake.world().review_comments.len(), 2);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_is_refused_and_nothing_is_posted() {
    let app = App::start().await;
    let head = app.push(9, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    app.set_pull(9, &head);
    let payload = app.pull_request_event("opened", 9, &head);
    let forged = webhook::sign("not-the-secret", &serde_json::to_vec(&payload).expect("JSON"));
    assert_eq!(app.send_signed("pull_request", "d-1", &payload, Some(&forged)).await, 401);
    assert_eq!(app.send_signed("pull_request", "d-2", &payload, Some("sha256=")).await, 401);
    app.running.idle().await;
    assert!(app.fake.requests().is_empty(), "nothing reached GitHub");
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_webhook_is_processed_once() {
    let app = App::start().await;
    let head = app.push(10, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    app.set_pull(10, &head);
    let payload = app.pull_request_event("opened", 10, &head);
    assert_eq!(app.send_signed("pull_request", "same-delivery", &payload, None).await, 202);
    app.running.idle().await;
    assert_eq!(app.send_signed("pull_request", "same-delivery", &payload, None).await, 200);
    app.running.idle().await;
    let world = app.fake.world();
    assert_eq!((world.check_runs.len(), world.reviews.len(), world.review_comments.len()), (1, 1, 1));
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_quick_pushes_only_the_newest_posts() {
    let app = App::start().await;
    let first = app.push(11, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    let newer = with_replicas(&app).replace("memory: 512Mi", "memory: 700Mi");
    let second = app.push(11, &[(CHECKOUT, Some(&newer))]);
    // Both pushes happened before kpath saw either webhook.
    app.set_pull(11, &second);
    assert_eq!(app.send("pull_request", &app.pull_request_event("synchronize", 11, &first)).await, 202);
    assert_eq!(app.send("pull_request", &app.pull_request_event("synchronize", 11, &second)).await, 202);
    app.running.idle().await;
    let world = app.fake.world();
    assert!(world.review_comments.iter().all(|c| c.commit_id == second), "nothing posted for the stale head");
    assert_eq!(world.reviews.len(), 1);
    let done: Vec<_> = world.check_runs.iter().filter(|r| r.head_sha == second).collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].conclusion.as_deref(), Some("failure"));
    for stale in world.check_runs.iter().filter(|r| r.head_sha == first) {
        assert_eq!(stale.conclusion.as_deref(), Some("cancelled"), "a stale run says it was superseded");
    }
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_after_github_stored_the_review_does_not_duplicate_it() {
    let app = App::start().await;
    app.fake.inject(Fault::new("POST", &format!("/repos/{TEST_REPO}/pulls/12/reviews"), 502, 1).after_applying());
    app.fake.fail_next("POST", &format!("/repos/{TEST_REPO}/issues/12/comments"), 502, 1);
    app.open(12, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let review_posts = app.fake.requests_to("POST", &format!("/repos/{TEST_REPO}/pulls/12/reviews")).len();
    assert_eq!(review_posts, 1, "the retry saw the stored review and did not post again");
    let world = app.fake.world();
    assert_eq!(world.reviews.len(), 1);
    assert_eq!(world.review_comments.len(), 1, "one comment");
    assert_eq!(world.issue_comments.iter().filter(|c| c.body.starts_with(SUMMARY_MARKER)).count(), 1);
    assert_eq!(world.check_runs[0].conclusion.as_deref(), Some("failure"));
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_review_falls_back_to_the_summary() {
    let app = App::start().await;
    app.fake.fail_next("POST", &format!("/repos/{TEST_REPO}/pulls/13/reviews"), 422, 1);
    app.open(13, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    let world = app.fake.world();
    assert!(world.review_comments.is_empty());
    let summary = world.issue_comments.iter().find(|c| c.body.starts_with(SUMMARY_MARKER)).expect("a summary");
    assert!(summary.body.contains("Findings not commented inline"), "{}", summary.body);
    assert!(summary.body.contains("hpa-replicas-conflict") && summary.body.contains("apps/checkout/deployment.yaml:9"));
    let run = &world.check_runs[0];
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(run.summary.as_deref().is_some_and(|s| s.contains("Findings not commented inline")));
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered() {
    let app = App::start().await;
    let head = app.open(14, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;

    let explain = app.comment_event(14, "Why?\n\n/kpath explain hpa-replicas-conflict");
    assert_eq!(app.send("issue_comment", &explain).await, 202);
    let all = app.comment_event(14, "/kpath explain");
    assert_eq!(app.send("issue_comment", &all).await, 202);
    let typo = app.comment_event(14, "/kpath explian");
    assert_eq!(app.send("issue_comment", &typo).await, 202);
    let quoted = app.comment_event(14, "> /kpath help\n\n`/kpath help` is in a code span");
    assert_eq!(app.send("issue_comment", &quoted).await, 202);
    app.running.idle().await;
    {
        let world = app.fake.world();
        let replies: Vec<&str> = world
            .issue_comments
            .iter()
            .filter(|c| c.user.kind == "Bot" && !c.body.starts_with(SUMMARY_MARKER))
            .map(|c| c.body.as_str())
            .collect();
        let rule = crate::rules::find("hpa-replicas-conflict").expect("rule");
        assert_eq!(replies.iter().filter(|r| **r == rule.explanation_markdown()).count(), 2, "{replies:#?}");
        assert!(replies.iter().any(|r| r.contains("Did you mean `/kpath explain`?")), "{replies:#?}");
        assert_eq!(replies.len(), 3);
        let eyes = world.reactions.iter().filter(|r| r.content == "eyes").count();
        assert_eq!(eyes, 3, "👀 on each handled comment");
    }

    let recheck = app.comment_event(14, "/kpath recheck");
    assert_eq!(app.send("issue_comment", &recheck).await, 202);
    // The recheck goes back into the queue; wait for its check run (bounded, not timed).
    for _ in 0..600 {
        app.running.idle().await;
        let done = app.fake.world().check_runs.iter().filter(|r| r.head_sha == head && r.status == "completed").count();
        if done == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let world = app.fake.world();
    assert_eq!(world.check_runs.len(), 2, "recheck reviewed the head again");
    assert_eq!(world.review_comments.len(), 1, "without commenting twice");
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chart_completes_the_check_run_with_the_error() {
    let app = App::start().await;
    let path = "charts/storefront/templates/deployment.yaml";
    let broken = app.read(path).replacen("{{", "{{ if", 1);
    app.open(15, &[(path, Some(&broken))]).await;
    let world = app.fake.world();
    let run = &world.check_runs[0];
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let summary = run.summary.as_deref().unwrap_or("");
    assert!(summary.contains("render-failed"), "{summary}");
    assert!(run.annotations.iter().any(|a| a["title"] == "render-failed"), "{:?}", run.annotations);
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_and_github_failures_complete_the_check_run_with_an_explanation() {
    let app = App::start().await;
    // The repository cannot be fetched.
    app.fake.world().git_root = Some(app.dir.path().join("nowhere"));
    app.open(16, &[(CHECKOUT, Some(&with_replicas(&app)))]).await;
    {
        let world = app.fake.world();
        let run = &world.check_runs[0];
        assert_eq!(run.conclusion.as_deref(), Some("failure"));
        assert_eq!(run.title.as_deref(), Some("kpath could not review this commit"));
        let summary = run.summary.as_deref().unwrap_or("");
        assert!(summary.contains("fetching") && summary.contains(TEST_REPO), "{summary}");
        assert!(world.review_comments.is_empty());
    }
    // GitHub's compare API keeps failing: retried, then explained.
    app.fake.world().git_root = Some(app.dir.path().join("served"));
    app.fake.fail_next("GET", &format!("/repos/{TEST_REPO}/compare"), 503, 10);
    app.synchronize(16, &[(CHECKOUT, Some(&with_replicas(&app).replace("512Mi", "600Mi")))]).await;
    let world = app.fake.world();
    let run = world.check_runs.last().expect("a run");
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(run.summary.as_deref().is_some_and(|s| s.contains("GitHub unavailable")), "{:?}", run.summary);
    drop(world);
    app.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_suite_from_a_fork_finds_its_pull_request_by_head() {
    let app = App::start().await;
    let head = app.push(17, &[(CHECKOUT, Some(&with_replicas(&app)))]);
    let mut pull = Pull::new(17, &head, &app.base).with_files(app.files(&head));
    pull.head_repo = Some("someone/gitops".to_string());
    app.fake.add_pull(TEST_REPO, pull);
    let mut payload = adapt(example("check_suite", "requested"));
    payload["check_suite"]["head_sha"] = json!(head);
    payload["check_suite"]["pull_requests"] = json!([]);
    assert_eq!(app.send("check_suite", &payload).await, 202);
    app.running.idle().await;
    let world = app.fake.world();
    assert_eq!(world.check_runs.len(), 1);
    assert_eq!(world.review_comments.len(), 1);
    drop(world);
    app.assert_clean();
}
