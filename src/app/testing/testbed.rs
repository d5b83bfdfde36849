//! The App's test bed, after the model of rust-lang/bors's harness: a git repository (the demo's base on
//! `main`), the fake GitHub serving it over git's smart HTTP, and the real `kpath serve` (router, queue,
//! worker) wired to it; pull requests are pushed and signed webhooks, built from GitHub's published
//! examples (npm `@octokit/webhooks-examples`), are sent through the real router. Used by the end-to-end
//! tests and the App benchmark (`examples/bench_app.rs`); it panics on setup failures, as test code does.

use std::path::{Path, PathBuf};
use std::process::Command;

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::fake_github::{
    FakeGitHub, Pull, PullFile, TEST_APP_ID, TEST_INSTALLATION, TEST_ONLY_APP_PRIVATE_KEY, TEST_REPO, User,
};
use crate::app::github::RetryPolicy;
use crate::app::serve::{self, Running, ServeArgs, Settings};
use crate::app::webhook;

pub const SECRET: &str = "webhook-secret-for-end-to-end-tests";
pub const DEMO_PASSWORD: &str = "demo-not-a-real-password";

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn helm() -> PathBuf {
    let path = match std::env::var_os("KPATH_HELM") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => manifest_dir().join(".tools/helm-3.17.3/bin/helm"),
    };
    assert!(path.is_file(), "the pinned helm is missing: run `bash scripts/test` (looked for {})", path.display());
    path
}

pub fn git(dir: &Path, args: &[&str]) -> String {
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

pub fn copy_tree(from: &Path, to: &Path) {
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
pub fn example(event: &str, action: &str) -> Value {
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
pub fn adapt(mut payload: Value) -> Value {
    let (owner, name) = TEST_REPO.split_once('/').expect("owner/name");
    payload["repository"]["full_name"] = json!(TEST_REPO);
    payload["repository"]["name"] = json!(name);
    payload["repository"]["owner"]["login"] = json!(owner);
    payload["installation"] = json!({ "id": TEST_INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc=" });
    payload
}

/// The files of the demo pull request's head (`fixtures/demo/head`): repository path → content.
pub fn demo_changes() -> Vec<(String, String)> {
    let demo = manifest_dir().join("fixtures/demo/head");
    let mut changes = Vec::new();
    for entry in walkdir::WalkDir::new(&demo).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()) {
        let path = entry.path().strip_prefix(&demo).expect("inside").to_string_lossy().into_owned();
        changes.push((path, std::fs::read_to_string(entry.path()).expect("fixture")));
    }
    changes.sort();
    changes
}

/// A test: a git repository (the demo's base on `main`), the fake GitHub serving it, and `kpath serve`.
pub struct App {
    pub dir: tempfile::TempDir,
    pub fake: FakeGitHub,
    pub work: PathBuf,
    pub bare: PathBuf,
    /// The base commit every pull request starts from.
    pub base: String,
    pub running: Running,
    /// Further replicas sharing the first one's store; webhooks go to every replica in turn.
    pub replicas: Vec<Replica>,
    http: Client<HttpConnector, Full<axum::body::Bytes>>,
    deliveries: std::sync::atomic::AtomicU64,
}

/// How a test bed's `kpath serve` replicas are set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The PostgreSQL store every replica shares; `None`: one replica, in-process store.
    pub database_url: Option<String>,
    /// Replicas besides the first, each in its own runtime (so it can be killed).
    pub extra_replicas: usize,
    /// Further settings (`KPATH_LEASE`, `KPATH_POSTING_BUDGET`, …).
    pub settings: Vec<(&'static str, String)>,
}

/// A replica of `kpath serve` in its own runtime: killing it drops every task at once, with no hand-back
/// and no lease renewal, as a SIGKILL would.
pub struct Replica {
    pub addr: std::net::SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    running: Option<Running>,
}

impl Replica {
    /// Jobs running in this replica.
    pub fn busy(&self) -> usize {
        self.running.as_ref().map_or(0, Running::busy)
    }

    /// Stops the replica at once.
    pub fn kill(&mut self) {
        self.running = None;
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A runtime may not be dropped inside another (the test's); it is stopped without waiting.
        self.kill();
    }
}

impl App {
    pub async fn start() -> App {
        App::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> App {
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
        let helm = helm();
        let env_for = |replica: usize| -> std::collections::HashMap<String, String> {
            let cache = dir.path().join(format!("cache-{replica}"));
            let mut env: std::collections::HashMap<String, String> = [
                ("KPATH_APP_ID", TEST_APP_ID.to_string()),
                ("KPATH_PRIVATE_KEY", TEST_ONLY_APP_PRIVATE_KEY.to_string()),
                ("KPATH_WEBHOOK_SECRET", SECRET.to_string()),
                ("KPATH_GITHUB_API", fake.url().to_string()),
                ("KPATH_LISTEN", "127.0.0.1:0".to_string()),
                ("KPATH_CACHE_DIR", cache.to_string_lossy().into_owned()),
                ("KPATH_CONCURRENCY", "2".to_string()),
                ("KPATH_HELM", helm.to_string_lossy().into_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            if let Some(url) = &options.database_url {
                env.insert("KPATH_DATABASE_URL".to_string(), url.clone());
            }
            env.extend(options.settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
            env
        };
        let retry = || RetryPolicy::default().with_sleep(|_| Box::pin(async {}));
        let env = env_for(0);
        let settings =
            Settings::resolve(&ServeArgs::default(), &|name| env.get(name).cloned()).expect("valid settings");
        let listener = tokio::net::TcpListener::bind(settings.listen).await.expect("bind 127.0.0.1");
        let running =
            serve::start(settings, retry(), listener, std::future::pending()).await.expect("the server starts");
        let mut replicas = Vec::new();
        for replica in 1..=options.extra_replicas {
            let env = env_for(replica);
            let retry = retry();
            let started = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a runtime");
                let running = runtime.block_on(async {
                    let settings = Settings::resolve(&ServeArgs::default(), &|name| env.get(name).cloned())
                        .expect("valid settings");
                    let listener = tokio::net::TcpListener::bind(settings.listen).await.expect("bind 127.0.0.1");
                    serve::start(settings, retry, listener, std::future::pending()).await.expect("the server starts")
                });
                (runtime, running)
            });
            let (runtime, running) = started.join().expect("the replica starts");
            replicas.push(Replica { addr: running.addr, runtime: Some(runtime), running: Some(running) });
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        App { dir, fake, work, bare, base, running, replicas, http, deliveries: Default::default() }
    }

    /// Commits `changes` (path → new content, `None` deletes) on the pull request's branch and pushes it
    /// as the branch and as `refs/pull/N/head`. Returns the new head.
    pub fn push(&self, number: u64, changes: &[(&str, Option<&str>)]) -> String {
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
    pub fn set_pull(&self, number: u64, head: &str) {
        let pull = Pull::new(number, head, &self.base).with_files(self.files(head));
        self.fake.add_pull(TEST_REPO, pull);
    }

    /// The pull request's files as GitHub lists them, from git's own diff (an independent oracle).
    pub fn files(&self, head: &str) -> Vec<PullFile> {
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

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.work.join(path)).expect("fixture file")
    }

    /// Sends a webhook signed with `signature` (the right one when `None`); returns the status.
    pub async fn send_signed(&self, event: &str, delivery: &str, payload: &Value, signature: Option<&str>) -> u16 {
        let body = serde_json::to_vec(payload).expect("JSON");
        let signature = signature.map_or_else(|| webhook::sign(SECRET, &body), str::to_string);
        // Webhooks go to the live replicas in turn, as a Service spreads them.
        let n = self.deliveries.load(std::sync::atomic::Ordering::SeqCst) as usize;
        let live: Vec<std::net::SocketAddr> = std::iter::once(self.running.addr)
            .chain(self.replicas.iter().filter(|r| r.runtime.is_some()).map(|r| r.addr))
            .collect();
        let addr = live[n % live.len()];
        let request = http::Request::post(format!("http://{addr}/webhook"))
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

    pub async fn send(&self, event: &str, payload: &Value) -> u16 {
        let n = self.deliveries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.send_signed(event, &format!("delivery-{n}"), payload, None).await
    }

    /// `GET path` on the server; returns the status.
    pub async fn get(&self, path: &str) -> u16 {
        let request = http::Request::get(format!("http://{}{path}", self.running.addr))
            .body(Full::new(axum::body::Bytes::new()))
            .expect("request");
        let response = self.http.request(request).await.expect("the server answers");
        response.status().as_u16()
    }

    /// A `pull_request` webhook (GitHub's example of `action`) for pull request `number` at `head`.
    pub fn pull_request_event(&self, action: &str, number: u64, head: &str) -> Value {
        let mut payload = adapt(example("pull_request", action));
        payload["number"] = json!(number);
        payload["pull_request"]["number"] = json!(number);
        payload["pull_request"]["state"] = json!("open");
        payload["pull_request"]["head"]["sha"] = json!(head);
        payload["pull_request"]["base"]["sha"] = json!(self.base);
        payload
    }

    /// An `issue_comment.created` webhook for a comment a person wrote on pull request `number`.
    pub fn comment_event(&self, number: u64, body: &str) -> Value {
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

    /// A `pull_request_review_comment.created` payload: `body` written by a person as a reply in the review
    /// thread that starts with comment `thread` (a comment kpath posted on a line).
    pub fn review_reply_event(&self, number: u64, thread: u64, body: &str) -> Value {
        let (path, line) = {
            let world = self.fake.world();
            let first = world.review_comments.iter().find(|c| c.id == thread).expect("the thread's first comment");
            (first.path.clone(), first.line.unwrap_or(1))
        };
        let id = self.fake.add_review_comment(TEST_REPO, number, User::human("dev"), &path, line, body);
        if let Some(reply) = self.fake.world().review_comments.iter_mut().find(|c| c.id == id) {
            reply.in_reply_to_id = Some(thread);
        }
        let mut payload = adapt(example("pull_request_review_comment", "created"));
        payload["pull_request"]["number"] = json!(number);
        payload["comment"]["id"] = json!(id);
        payload["comment"]["in_reply_to_id"] = json!(thread);
        payload["comment"]["body"] = json!(body);
        payload["comment"]["user"]["login"] = json!("dev");
        payload["comment"]["user"]["type"] = json!("User");
        payload
    }

    /// Opens pull request `number` with `changes` and waits until kpath has reviewed it. Returns the head.
    pub async fn open(&self, number: u64, changes: &[(&str, Option<&str>)]) -> String {
        self.push_and_wait("opened", number, changes).await
    }

    /// Pushes to pull request `number` and waits until kpath has reviewed the new head.
    pub async fn synchronize(&self, number: u64, changes: &[(&str, Option<&str>)]) -> String {
        self.push_and_wait("synchronize", number, changes).await
    }

    async fn push_and_wait(&self, action: &str, number: u64, changes: &[(&str, Option<&str>)]) -> String {
        let head = self.push(number, changes);
        self.set_pull(number, &head);
        assert_eq!(self.send("pull_request", &self.pull_request_event(action, number, &head)).await, 202);
        self.running.idle().await;
        head
    }

    /// Waits until the shared PostgreSQL store holds no job and no check run is in progress (replicas of
    /// other runtimes or processes cannot be asked whether they are idle).
    pub async fn settled(&self, store: &crate::app::store::postgres::PgStore) {
        loop {
            let counts = store.counts().await.expect("counts");
            let open = self.fake.world().check_runs.iter().any(|r| r.status != "completed");
            if counts == (0, 0) && !open {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Everything kpath wrote on GitHub, as text: for checking that nothing leaks.
    pub fn everything_posted(&self) -> String {
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
    pub fn assert_clean(&self) {
        let world = self.fake.world();
        let open: Vec<_> = world.check_runs.iter().filter(|r| r.status != "completed").collect();
        assert!(open.is_empty(), "check runs left in progress: {open:?}");
        drop(world);
        self.fake.assert_no_violations();
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}
