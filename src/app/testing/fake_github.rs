//! A fake GitHub for tests, in the manner of rust-lang/bors's test harness: a stateful REST server on
//! `127.0.0.1:0` (axum, spawned on the test's runtime) that keeps what kpath posts in memory, where tests
//! read it back.
//!
//! - Every request it receives is checked against GitHub's OpenAPI description
//!   ([`OpenApi::github`](super::openapi::OpenApi::github)): method, path, path parameters and JSON
//!   body. It must also carry `Accept: application/vnd.github+json`, exactly one
//!   `X-GitHub-Api-Version: 2022-11-28` and a `User-Agent`. Mismatches are recorded, and
//!   [`FakeGitHub::assert_no_violations`] (called at the end of every test) panics listing them.
//! - Authentication is GitHub's: `POST /app/installations/{id}/access_tokens` takes an App JWT (RS256,
//!   verified against the test App's public key; `iss` the App id, issued in the past, living at most ten
//!   minutes) and returns an installation token; every other request needs `Authorization: token …` or
//!   `Bearer …` with a live token of an installation that covers the repository (401, or 404 as GitHub
//!   answers for a repository it hides).
//! - It behaves like GitHub where kpath depends on it: at most 50 annotations per check-run request, every
//!   text field within GitHub's documented limit (422 above it, [`TextLimit`]), review comments only on
//!   lines of the diff (when a pull request's commentable lines are given), reactions created once,
//!   `per_page`/`page`/`since` honoured.
//! - Faults are injected per method and path prefix: [`FakeGitHub::fail_next`] answers with a status
//!   before doing anything; [`Fault::after_applying`] does the work first and then fails (a 502 after
//!   GitHub stored the comment), which is how retries are shown not to duplicate.
//!
//! - The manifest flow's `POST /app-manifests/{code}/conversions` needs no credentials, as at GitHub: a code
//!   from [`FakeGitHub::manifest_code`] converts once into a new App (201, with its key and webhook secret);
//!   an unknown or used code is a 404.
//!
//! Routes it does not serve answer 501 and are recorded as violations, so a new client call cannot go
//! untested by accident.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use octocrab::jsonwebtoken::{self, Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::git_http;
use super::openapi::OpenApi;

/// The test App. The key pair below is a throwaway generated for these tests only; it belongs to no App.
pub const TEST_APP_ID: u64 = 4242;
/// A throwaway RSA key for tests only (PKCS#1 PEM, as GitHub hands out App keys). Never used anywhere else.
pub const TEST_ONLY_APP_PRIVATE_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA60QjTdDbel7XCf/w6KgbA22wfcF31liHHsbLbTfFCP+SDkd+
Km+DqBlPEhT/+8gpasXLh8ZhnFUXIURrSb9lXDY3gfg0QhCGJUzry7LfoxlfcDmD
O5pAwDlL8M7TWHXsAQzpftODd71VqvJ6B7AcVO8L0D7kxAloCVi0tsZCzMTXnCDw
9xJCGC5xjz0jbN04WoDzMNyw/jAr1mh08GyfIEgfTBb/vQf7RVqDjmGyMKNk74WQ
N0zEOkzJa44MtZ0OrZ8BBY8TUKcd34PgKUGP/nBKfIL7Sp5doF3dmDzPfVeux86k
Davvzi3aZ4kod72cg/hfptTQWbSxMh/Ukm2tjwIDAQABAoIBACpxRWkxZ5bg6yxb
putiAFWTAUb+kw7xM5cix+oxKHOiH4hB74naSkcWIcSiUzfp+UbQ3hHlgRCB7UVM
IYrRY4jKIyNoUo0ki/7IrLU31M6IskX9qiYjgtDqxT9xIIGR7HyYBruhjtMYLg9D
5S3j4IiWA2yTHBQdmk4tWZSrmbt04t/dZFBTGEX6S73lm4xm0yL7pyn58iCvPkWZ
hGQmsnV68TYqTsB33fcYAXaf3NDCaFwnq4cBIVYnM+WwSuagaGZn5AQh/O1KAsIY
2pc6RxSB7KJTZSbIJza7dmoEAuKQ2B22v3QSUU5MMsYjjxDx389O+UPPg3HVPjCy
mzO+sAECgYEA903Vv0AXoCS5LnIty6HB1y9+0aYPYjopt3bsz4W/tMDd8DDKtTH1
cn/Ut/qkISIA6OfBnd5DpZWzTIoNTWNEo/r5qyWkdSYyVRiQJroTMjEsUqAbDkhN
s8llggy3ygqiZ7SIhAcLclZ8zC38DyytrRqzW3RqfEBLK9UnEOgbGAECgYEA84nw
8Rv1W6osRuYIZ4jih4/6vohJs0OSw90NN7AdINjbLK3gKMqhoK1Qxv6njtXKoEPJ
PJ+nDBSY7Hs2Ho1SF/eETlE/JhLryVwEiJsNZ4HDLMDMUbC4mLcEi37SaQQy07KT
a/G3IXOsydaXUH8o8wt/E5jAOCNbiGVVhtXTRY8CgYEA9OlhYFjRzOfxeJzc24hj
Vn8T4f3JyGZ/f9DH7zCuzQwf/0nixhUm1XDhMh6HQsTRD9bMuVIvviGGAqvJRrWj
eZ4IecT6nIXqXLnJsICgmBl4oo8qnDdgtEckPunnbbCga4GvnMj5Pg+G4hI8SK7f
hMoni8+70Tc++rbKTIUAqAECgYAYRP/Y10NtPhkpe5UM1ExW3BdN04EctzgyAp5l
lUxh0JqO6kjzZ7YRsBPjsM774fxOWlL8kqBwCMFwl5q+ErFCqCzsLRaQ8cPDjkL5
ZhJA5WKQ3CnAXk8XEO4IBLxtMLjr9djRIgZw8/kdKCBuKi3ngpbIWimVrphZkFek
lzx1qwKBgQDiFREzLDB5nvGSLfYa2jmClMS0/AVgDpOp4+jmiTdDFBFTjP/vzc6X
XsAX/FogrOW820YM99H96KRJNQCyNlxKrxLVvkF2gDwkvzLz9e7Tyq430v2gYYN7
8fXw6tAeM0IRusZPD0ZpF5H09HBUheL04ai2nbEjMOiUIUGKhuwY2w==
-----END RSA PRIVATE KEY-----
";
/// The public half of [`TEST_ONLY_APP_PRIVATE_KEY`], what GitHub checks App JWTs with.
const TEST_APP_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA60QjTdDbel7XCf/w6Kgb
A22wfcF31liHHsbLbTfFCP+SDkd+Km+DqBlPEhT/+8gpasXLh8ZhnFUXIURrSb9l
XDY3gfg0QhCGJUzry7LfoxlfcDmDO5pAwDlL8M7TWHXsAQzpftODd71VqvJ6B7Ac
VO8L0D7kxAloCVi0tsZCzMTXnCDw9xJCGC5xjz0jbN04WoDzMNyw/jAr1mh08Gyf
IEgfTBb/vQf7RVqDjmGyMKNk74WQN0zEOkzJa44MtZ0OrZ8BBY8TUKcd34PgKUGP
/nBKfIL7Sp5doF3dmDzPfVeux86kDavvzi3aZ4kod72cg/hfptTQWbSxMh/Ukm2t
jwIDAQAB
-----END PUBLIC KEY-----
";
/// The installation every fake starts with, covering [`TEST_REPO`].
pub const TEST_INSTALLATION: u64 = 77;
pub const TEST_REPO: &str = "octo/gitops";
/// Who the App's installation posts as.
pub const BOT_LOGIN: &str = "kpath[bot]";
const BOT_USER_ID: u64 = 9_000_001;

const MAX_ANNOTATIONS_PER_REQUEST: usize = 50;

/// GitHub's documented limit on a text field, checked in bytes: GitHub counts the summary's in bytes
/// (github/docs#35252), and bytes are never fewer than characters, so the fake is at least as strict.
/// Written out here rather than taken from the client, so the fake is an independent oracle.
#[derive(Debug, Clone, Copy)]
pub struct TextLimit {
    pub field: &'static str,
    pub max_bytes: usize,
}

/// <https://docs.github.com/rest/checks/runs#update-a-check-run>: `output.summary` and `output.text`
/// 65,535; an annotation's `message` and `raw_details` "64 KB" (the smaller reading, 64,000), `title` 255;
/// a button's `label` 20, `description` 40, `identifier` 20.
pub const CHECK_RUN_LIMITS: [TextLimit; 3] = [
    TextLimit { field: "output.summary", max_bytes: 65_535 },
    TextLimit { field: "output.text", max_bytes: 65_535 },
    // Not documented: the fake holds it to an annotation title's limit, as kpath does.
    TextLimit { field: "output.title", max_bytes: 255 },
];
pub const ANNOTATION_LIMITS: [TextLimit; 3] = [
    TextLimit { field: "message", max_bytes: 64_000 },
    TextLimit { field: "raw_details", max_bytes: 64_000 },
    TextLimit { field: "title", max_bytes: 255 },
];
pub const ACTION_LIMITS: [TextLimit; 3] = [
    TextLimit { field: "label", max_bytes: 20 },
    TextLimit { field: "description", max_bytes: 40 },
    TextLimit { field: "identifier", max_bytes: 20 },
];
/// A check run's name: not documented; held to 255 as kpath does.
const MAX_CHECK_RUN_NAME: usize = 255;
/// Comments, reviews and review comments: "body is too long (maximum is 65536 characters)".
pub const MAX_COMMENT_BODY: usize = 65_536;

/// The 422 GitHub answers when `text` is over `limit`.
fn check_text(what: &str, text: Option<&str>, max_bytes: usize) -> Result<(), Answer> {
    match text {
        Some(text) if text.len() > max_bytes => Err(Answer::error(
            422,
            &format!("Validation Failed: {what} is too long ({} bytes; the maximum is {max_bytes})", text.len()),
        )),
        _ => Ok(()),
    }
}

/// Checks `object`'s fields against `limits`.
fn check_texts(prefix: &str, object: &Value, limits: &[TextLimit]) -> Result<(), Answer> {
    for limit in limits {
        let value = limit.field.split('.').fold(object, |v, key| &v[key]);
        check_text(&format!("{prefix}{}", limit.field), value.as_str(), limit.max_bytes)?;
    }
    Ok(())
}
const REACTIONS: [&str; 8] = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];

/// A running fake; the server stops when it is dropped.
pub struct FakeGitHub {
    url: String,
    world: Arc<Mutex<World>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Everything the fake knows, readable by tests through [`FakeGitHub::world`].
#[derive(Debug, Default)]
pub struct World {
    /// Installation id → the repositories (`owner/name`) it covers.
    pub installations: BTreeMap<u64, BTreeSet<String>>,
    /// (`owner/name`, number) → pull request.
    pub pulls: BTreeMap<(String, u64), Pull>,
    pub check_runs: Vec<CheckRun>,
    pub reviews: Vec<Review>,
    pub review_comments: Vec<ReviewComment>,
    pub issue_comments: Vec<IssueComment>,
    pub reactions: Vec<Reaction>,
    /// Codes of the manifest flow not yet converted.
    pub manifest_codes: BTreeSet<String>,
    /// The ids of the Apps registered through the manifest flow, in order.
    pub apps: Vec<u64>,
    /// Every request received, in order.
    pub requests: Vec<Recorded>,
    /// Requests GitHub would not accept, or the fake does not serve.
    pub violations: Vec<String>,
    /// Where repositories are served over git's smart HTTP (`<root>/<owner>/<name>.git`, at
    /// `/<owner>/<name>.git/…`, Basic auth `x-access-token:<installation token>`).
    pub git_root: Option<std::path::PathBuf>,
    /// Git requests served.
    pub git_requests: usize,
    /// Installation tokens handed out: token → (installation, expiry).
    tokens: HashMap<String, (u64, DateTime<Utc>)>,
    faults: Vec<Fault>,
    next_id: u64,
}

/// Does a GraphQL query select `field` (as a whole name: `databaseId` is not selected by `fullDatabaseId`)?
fn graphql_selects(query: &str, field: &str) -> bool {
    query.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|word| word == field)
}

/// What an id is for: each kind starts where github.com's ids of that kind are today.
#[derive(Debug, Clone, Copy)]
enum IdKind {
    Token,
    CheckRun,
    IssueComment,
    Review,
    ReviewComment,
    Reaction,
    App,
}

impl IdKind {
    fn base(self) -> u64 {
        match self {
            IdKind::Token => 1,
            IdKind::CheckRun => 30_000_000_000,
            IdKind::IssueComment => 3_300_000_000,
            IdKind::Review => 2_900_000_000,
            IdKind::ReviewComment => 2_600_000_000,
            IdKind::Reaction => 4_500_000_000,
            // github.com's App ids are far lower; past 2^31 here all the same, so no client keeps them in 32 bits.
            IdKind::App => 2_200_000_000,
        }
    }
}

/// The largest value GraphQL's `Int` holds: GitHub answers `databaseId` (an `Int`) with null and an
/// error above it (<https://docs.github.com/en/graphql/reference/scalars>).
const GRAPHQL_INT_MAX: u64 = i32::MAX as u64;

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub state: &'static str,
    pub draft: bool,
    pub head_sha: String,
    pub head_ref: String,
    /// `owner/name` of the head repository (a fork's), `None` when it was deleted.
    pub head_repo: Option<String>,
    pub base_ref: String,
    pub base_sha: String,
    /// What the compare API answers as the merge base of base and head.
    pub merge_base: String,
    /// The lines review comments may go on, per path (`RIGHT` side); `None` accepts any line.
    pub commentable: Option<BTreeMap<String, BTreeSet<u64>>>,
    /// What `GET …/pulls/{n}/files` lists.
    pub files: Vec<PullFile>,
}

/// A file of a pull request's diff, as GitHub lists it.
#[derive(Debug, Clone)]
pub struct PullFile {
    pub filename: String,
    /// `added`, `modified`, `removed`, `renamed`.
    pub status: String,
    /// The unified diff GitHub shows; `None` for binary or very large files.
    pub patch: Option<String>,
}

impl Pull {
    /// Sets the pull request's files and, from their patches, the lines review comments may go on (added
    /// and context lines of the hunks, as GitHub allows).
    pub fn with_files(mut self, files: Vec<PullFile>) -> Pull {
        let mut commentable: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for file in &files {
            let lines = commentable.entry(file.filename.clone()).or_default();
            let mut right = 0u64;
            for line in file.patch.as_deref().unwrap_or("").lines() {
                if line.starts_with("@@") {
                    let plus = line.split(' ').find(|w| w.starts_with('+')).unwrap_or("+0");
                    right = plus[1..].split(',').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                } else if line.starts_with('+') || line.starts_with(' ') {
                    lines.insert(right);
                    right += 1;
                }
            }
        }
        self.commentable = Some(commentable);
        self.files = files;
        self
    }
}

impl Pull {
    /// An open pull request from a branch of the same repository, whose merge base is `base_sha`.
    pub fn new(number: u64, head_sha: &str, base_sha: &str) -> Pull {
        Pull {
            number,
            state: "open",
            draft: false,
            head_sha: head_sha.to_string(),
            head_ref: format!("feature-{number}"),
            head_repo: Some(TEST_REPO.to_string()),
            base_ref: "main".to_string(),
            base_sha: base_sha.to_string(),
            merge_base: base_sha.to_string(),
            commentable: None,
            files: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CheckRun {
    pub id: u64,
    pub repo: String,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    /// `output.text`: the details under the summary.
    pub text: Option<String>,
    pub annotations: Vec<Value>,
    pub actions: Vec<Value>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Review {
    pub id: u64,
    pub repo: String,
    pub pull: u64,
    pub commit_id: Option<String>,
    pub event: String,
    pub body: String,
    pub user: User,
}

#[derive(Debug, Clone)]
pub struct ReviewComment {
    pub id: u64,
    pub repo: String,
    pub pull: u64,
    pub review_id: Option<u64>,
    pub in_reply_to_id: Option<u64>,
    pub path: String,
    pub line: Option<u64>,
    /// The first line of a multi-line comment.
    pub start_line: Option<u64>,
    pub side: String,
    pub body: String,
    pub commit_id: String,
    pub user: User,
    /// Whether the thread this comment starts is resolved (GraphQL `resolveReviewThread`).
    pub resolved: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct IssueComment {
    pub id: u64,
    pub repo: String,
    pub number: u64,
    pub body: String,
    pub user: User,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Reaction {
    pub id: u64,
    pub repo: String,
    /// An issue comment's id, or (`on_review_comment`) a review comment's.
    pub comment_id: u64,
    pub on_review_comment: bool,
    pub content: String,
    pub user: User,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub login: String,
    pub id: u64,
    /// `User` or `Bot`.
    pub kind: &'static str,
}

impl User {
    pub fn bot() -> User {
        User { login: BOT_LOGIN.to_string(), id: BOT_USER_ID, kind: "Bot" }
    }

    pub fn human(login: &str) -> User {
        User { login: login.to_string(), id: 1_000 + login.len() as u64, kind: "User" }
    }

    fn json(&self) -> Value {
        json!({
            "login": self.login,
            "id": self.id,
            "node_id": format!("U_{}", self.id),
            "type": self.kind,
            "site_admin": false,
        })
    }
}

/// One request as received (no secrets: only the scheme of the `Authorization` header is kept).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// `Bearer` or `token` (or `None`), and what the credential was.
    pub auth_scheme: Option<String>,
    pub auth: AuthKind,
    pub body: Option<Value>,
    /// The status the fake answered.
    pub status: u16,
}

impl Recorded {
    /// The path without the query string.
    pub fn route(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    None,
    /// A JWT that verified against the App's public key.
    AppJwt,
    /// An installation token the fake issued and that is still live.
    InstallationToken,
    Invalid,
}

/// A canned failure for requests matching a method and path prefix.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_prefix: String,
    pub status: u16,
    /// How many matching requests fail.
    pub times: u32,
    pub headers: Vec<(String, String)>,
    /// Do the work first, then answer with the failure (GitHub stored it, the answer was lost).
    pub after_applying: bool,
}

impl Fault {
    pub fn new(method: &str, path_prefix: &str, status: u16, times: u32) -> Fault {
        Fault {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_string(),
            status,
            times,
            headers: Vec::new(),
            after_applying: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn after_applying(mut self) -> Fault {
        self.after_applying = true;
        self
    }
}

/// What a handler answers: status, JSON body, extra headers.
struct Answer {
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn ok(status: u16, body: Value) -> Answer {
        Answer { status, body, headers: Vec::new() }
    }

    fn error(status: u16, message: &str) -> Answer {
        Answer::ok(
            status,
            json!({ "message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string() }),
        )
    }
}

impl FakeGitHub {
    /// Starts a fake with the test App, installation [`TEST_INSTALLATION`] on [`TEST_REPO`], and nothing else.
    pub async fn start() -> FakeGitHub {
        // Loading GitHub's description takes a while; do it before the first request needs it.
        let _ = OpenApi::github();
        let world = Arc::new(Mutex::new(World::new()));
        let router = Router::new().fallback(handle).with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeGitHub { url, world, server }
    }

    /// `http://127.0.0.1:PORT`, the API base URL to give the client.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The state, locked; do not hold it across an `.await`.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add_pull(&self, repo: &str, pull: Pull) {
        self.world().pulls.insert((repo.to_string(), pull.number), pull);
    }

    /// A comment on a pull request's conversation, as `user` wrote it. Returns its id.
    pub fn add_issue_comment(&self, repo: &str, number: u64, user: User, body: &str) -> u64 {
        let mut world = self.world();
        let id = world.id(IdKind::IssueComment);
        let now = Utc::now();
        world.issue_comments.push(IssueComment {
            id,
            repo: repo.to_string(),
            number,
            body: body.to_string(),
            user,
            created_at: now,
            updated_at: now,
        });
        id
    }

    /// A review comment on `path:line` of a pull request, as `user` wrote it. Returns its id.
    pub fn add_review_comment(&self, repo: &str, pull: u64, user: User, path: &str, line: u64, body: &str) -> u64 {
        let mut world = self.world();
        let id = world.id(IdKind::ReviewComment);
        let now = Utc::now();
        world.review_comments.push(ReviewComment {
            id,
            repo: repo.to_string(),
            pull,
            review_id: None,
            in_reply_to_id: None,
            path: path.to_string(),
            line: Some(line),
            start_line: None,
            side: "RIGHT".to_string(),
            body: body.to_string(),
            commit_id: String::new(),
            user,
            resolved: false,
            created_at: now,
            updated_at: now,
        });
        id
    }

    /// A code of the manifest flow, as GitHub puts it in the redirect after registering an App: it converts
    /// once (`POST /app-manifests/{code}/conversions`).
    pub fn manifest_code(&self) -> String {
        let mut world = self.world();
        world.next_id += 1;
        let code = format!("{:040x}", 0xc0de_0000_u64 + world.next_id);
        world.manifest_codes.insert(code.clone());
        code
    }

    /// The next `times` requests of `method` whose path starts with `path_prefix` answer `status` without
    /// doing anything.
    pub fn fail_next(&self, method: &str, path_prefix: &str, status: u16, times: u32) {
        self.inject(Fault::new(method, path_prefix, status, times));
    }

    pub fn inject(&self, fault: Fault) {
        self.world().faults.push(fault);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.world().requests.clone()
    }

    /// The requests of `method` whose path (without query) starts with `prefix`.
    pub fn requests_to(&self, method: &str, prefix: &str) -> Vec<Recorded> {
        self.world().requests.iter().filter(|r| r.method == method && r.route().starts_with(prefix)).cloned().collect()
    }

    /// The requests GitHub would not have accepted (or the fake does not serve), as a report;
    /// `None` when there are none.
    pub fn violations_report(&self) -> Option<String> {
        let violations = self.world().violations.clone();
        (!violations.is_empty()).then(|| format!("requests GitHub would not accept:\n- {}", violations.join("\n- ")))
    }

    /// Fails the test, listing every request GitHub would not have accepted.
    pub fn assert_no_violations(&self) {
        if let Some(report) = self.violations_report() {
            panic!("{report}");
        }
    }
}

async fn handle(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(repo) = git_repository(uri.path()) {
        let root = {
            let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            world.git_requests += 1;
            let allowed = world.git_token_covers(&headers, &repo);
            match (&world.git_root, allowed) {
                (Some(root), true) => Ok(root.clone()),
                (_, false) => Err(StatusCode::UNAUTHORIZED),
                (None, true) => Err(StatusCode::NOT_FOUND),
            }
        };
        return match root {
            Ok(root) => git_http::backend(root, method.as_str(), &uri, &headers, body).await,
            Err(status) => {
                let mut response = Response::new(Body::from("authentication required\n"));
                *response.status_mut() = status;
                response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"GitHub\""));
                response
            }
        };
    }
    let answer = {
        let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        world.serve(method.as_str(), &uri, &headers, &body)
    };
    let mut response = Response::new(Body::from(answer.body.to_string()));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// `owner/name` when `path` is a git smart-HTTP path (`/owner/name.git/…`).
fn git_repository(path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let (owner, name) = (parts.next()?, parts.next()?);
    let name = name.strip_suffix(".git")?;
    parts.next()?;
    Some(format!("{owner}/{name}"))
}

impl World {
    /// Whether a git request's Basic credentials are `x-access-token` and a live token of an installation
    /// that covers `repo`.
    fn git_token_covers(&self, headers: &HeaderMap, repo: &str) -> bool {
        use base64::Engine;
        let Some(encoded) = headers.get("authorization").and_then(|v| v.to_str().ok()?.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
        let decoded = String::from_utf8_lossy(&decoded);
        let Some(token) = decoded.strip_prefix("x-access-token:") else { return false };
        match self.tokens.get(token) {
            Some((installation, expires)) => {
                *expires > Utc::now() && self.installations.get(installation).is_some_and(|r| r.contains(repo))
            }
            None => false,
        }
    }

    fn new() -> World {
        let mut world = World::default();
        world.installations.insert(TEST_INSTALLATION, BTreeSet::from([TEST_REPO.to_string()]));
        world
    }

    /// A new id for an object of `kind`, as large as github.com's: its ids passed 2^31 years ago (review
    /// comments are near 2.6e9, check runs near 3e10), and a client that keeps them in 32 bits, or asks
    /// GraphQL for the 32-bit `databaseId`, must fail here as it fails there.
    fn id(&mut self, kind: IdKind) -> u64 {
        self.next_id += 1;
        kind.base() + self.next_id
    }

    fn serve(&mut self, method: &str, uri: &Uri, headers: &HeaderMap, raw_body: &[u8]) -> Answer {
        let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str()).to_string();
        let request = format!("{method} {path_and_query}");
        let body: Option<Value> = if raw_body.is_empty() {
            None
        } else {
            match serde_json::from_slice(raw_body) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.violations.push(format!("{request}: the body is not JSON: {e}"));
                    None
                }
            }
        };
        if matches!(uri.path(), "/graphql" | "/api/graphql") {
            return self.graphql(&request, method, headers, body.as_ref());
        }
        if let Err(e) = OpenApi::github().check(method, &path_and_query, body.as_ref()) {
            self.violations.push(e);
        }
        self.check_headers(&request, headers, body.is_some());
        let (auth_scheme, credential) = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(value) => match value.split_once(' ') {
                Some((scheme, credential)) => (Some(scheme.to_string()), Some(credential.trim().to_string())),
                None => (Some(value.to_string()), None),
            },
            None => (None, None),
        };
        let path = uri.path().strip_prefix("/api/v3").filter(|p| p.starts_with('/')).unwrap_or(uri.path()).to_string();
        let query = parse_query(uri.query().unwrap_or(""));
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut record = Recorded {
            method: method.to_string(),
            path: path_and_query,
            auth_scheme,
            auth: AuthKind::None,
            body,
            status: 0,
        };

        let fault =
            self.faults.iter_mut().find(|f| f.times > 0 && f.method == method && path.starts_with(&f.path_prefix));
        let fault = fault.map(|f| {
            f.times -= 1;
            f.clone()
        });
        let answer = match &fault {
            Some(f) if !f.after_applying => Answer::error(f.status, "injected fault"),
            _ => self.route(method, &segments, &query, credential.as_deref(), &mut record),
        };
        let answer = match fault {
            Some(f) => {
                Answer { status: f.status, body: Answer::error(f.status, "injected fault").body, headers: f.headers }
            }
            None => answer,
        };
        record.status = answer.status;
        self.requests.push(record);
        answer
    }

    fn check_headers(&mut self, request: &str, headers: &HeaderMap, has_body: bool) {
        let values = |name: &str| {
            headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("?").to_string()).collect::<Vec<_>>()
        };
        let accept = values("accept");
        if accept != ["application/vnd.github+json"] {
            self.violations.push(format!("{request}: Accept is {accept:?}, not application/vnd.github+json"));
        }
        let version = values("x-github-api-version");
        if version != ["2022-11-28"] {
            self.violations.push(format!("{request}: X-GitHub-Api-Version is {version:?}, not 2022-11-28"));
        }
        if values("user-agent").is_empty() {
            self.violations.push(format!("{request}: no User-Agent (GitHub rejects such requests)"));
        }
        if has_body && !values("content-type").iter().any(|v| v.starts_with("application/json")) {
            self.violations.push(format!("{request}: a JSON body without Content-Type: application/json"));
        }
    }

    fn route(
        &mut self,
        method: &str,
        segments: &[&str],
        query: &HashMap<String, String>,
        credential: Option<&str>,
        record: &mut Recorded,
    ) -> Answer {
        let body = record.body.clone().unwrap_or(Value::Null);
        if let ["app", "installations", id, "access_tokens"] = segments
            && method == "POST"
        {
            let auth = credential.map(|c| self.verify_jwt(c));
            record.auth = match auth {
                Some(Ok(())) => AuthKind::AppJwt,
                Some(Err(_)) => AuthKind::Invalid,
                None => AuthKind::None,
            };
            if let Some(Err(e)) = auth {
                return Answer::error(401, &e);
            }
            if auth.is_none() || record.auth_scheme.as_deref() != Some("Bearer") {
                return Answer::error(401, "A JSON web token could not be decoded");
            }
            return self.access_token(id);
        }
        // The manifest flow's code is the credential: GitHub takes no Authorization header here.
        if let ["app-manifests", code, "conversions"] = segments
            && method == "POST"
        {
            return self.convert_manifest(code);
        }
        let installation = match credential.and_then(|c| self.tokens.get(c)) {
            Some((installation, expires)) if *expires > Utc::now() => *installation,
            _ => {
                record.auth = if credential.is_some() { AuthKind::Invalid } else { AuthKind::None };
                return Answer::error(401, "Bad credentials");
            }
        };
        record.auth = AuthKind::InstallationToken;
        if !matches!(record.auth_scheme.as_deref(), Some("token" | "Bearer")) {
            return Answer::error(401, "Bad credentials");
        }
        let ["repos", owner, name, rest @ ..] = segments else {
            return self.unserved(method, segments);
        };
        let repo = format!("{owner}/{name}");
        if !self.installations.get(&installation).is_some_and(|repos| repos.contains(&repo)) {
            return Answer::error(404, "Not Found");
        }
        let number = |s: &str| s.parse::<u64>().ok();
        match (method, rest) {
            ("GET", ["pulls"]) => self.list_pulls(&repo, query),
            ("GET", ["pulls", n]) => match number(n).and_then(|n| self.pulls.get(&(repo.clone(), n))) {
                Some(pull) => Answer::ok(200, pull_json(&repo, pull)),
                None => Answer::error(404, "Not Found"),
            },
            ("GET", ["pulls", n, "comments"]) => self.list_review_comments(&repo, number(n), query),
            ("GET", ["pulls", n, "files"]) => self.list_pull_files(&repo, number(n), query),
            ("POST", ["pulls", n, "comments", id, "replies"]) => self.reply(&repo, number(n), number(id), &body),
            ("POST", ["pulls", n, "reviews"]) => self.create_review(&repo, number(n), &body),
            ("GET", ["compare", basehead]) => self.compare(&repo, basehead),
            ("POST", ["check-runs"]) => self.create_check_run(&repo, &body),
            ("GET", ["check-runs", id]) => {
                match self.check_runs.iter().find(|r| Some(r.id) == number(id) && r.repo == repo) {
                    Some(run) => Answer::ok(200, check_run_json(run)),
                    None => Answer::error(404, "Not Found"),
                }
            }
            ("PATCH", ["check-runs", id]) => self.update_check_run(&repo, number(id), &body),
            ("GET", ["commits", sha, "check-runs"]) => self.list_check_runs(&repo, sha, query),
            ("GET", ["issues", n, "comments"]) => self.list_issue_comments(&repo, number(n), query),
            ("POST", ["issues", n, "comments"]) => self.create_issue_comment(&repo, number(n), &body),
            ("PATCH", ["issues", "comments", id]) => self.update_issue_comment(&repo, number(id), &body),
            ("POST", ["issues", "comments", id, "reactions"]) => self.react(&repo, number(id), &body, false),
            ("POST", ["pulls", "comments", id, "reactions"]) => self.react(&repo, number(id), &body, true),
            _ => self.unserved(method, segments),
        }
    }

    /// The GraphQL operations kpath sends (GitHub's REST description does not cover GraphQL, so the fake
    /// knows each query's shape and records anything else as a violation).
    fn graphql(&mut self, request: &str, method: &str, headers: &HeaderMap, body: Option<&Value>) -> Answer {
        if let Err(e) = OpenApi::github().check(method, "/graphql", body) {
            self.violations.push(e);
        }
        self.check_headers(request, headers, body.is_some());
        let credential = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, c)| c.trim().to_string());
        let installation = match credential.as_deref().and_then(|c| self.tokens.get(c)) {
            Some((installation, expires)) if *expires > Utc::now() => *installation,
            _ => return Answer::error(401, "Bad credentials"),
        };
        let mut record = Recorded {
            method: method.to_string(),
            path: "/graphql".to_string(),
            auth_scheme: Some("token".to_string()),
            auth: AuthKind::InstallationToken,
            body: body.cloned(),
            status: 200,
        };
        let query = body.and_then(|b| b["query"].as_str()).unwrap_or("");
        let variables = body.map(|b| b["variables"].clone()).unwrap_or(Value::Null);
        let answer = if method != "POST" {
            self.violations.push(format!("{request}: GraphQL takes POST"));
            Answer::error(404, "Not Found")
        } else if query.contains("resolveReviewThread(input: { threadId: $id })") {
            let thread = variables["id"].as_str().and_then(|id| id.strip_prefix("PRRT_")?.parse::<u64>().ok());
            let covered = |repo: &str| self.installations.get(&installation).is_some_and(|r| r.contains(repo));
            match self.review_comments.iter().position(|c| Some(c.id) == thread && covered(&c.repo)) {
                Some(i) => {
                    self.review_comments[i].resolved = true;
                    let id = self.review_comments[i].id;
                    Answer::ok(
                        200,
                        json!({ "data": { "resolveReviewThread": { "thread": { "id": format!("PRRT_{id}"), "isResolved": true } } } }),
                    )
                }
                None => {
                    Answer::ok(200, json!({ "data": null, "errors": [{ "message": "Could not resolve to a node" }] }))
                }
            }
        } else if query.contains("reviewThreads(first: 100, after: $cursor)") {
            let repo =
                format!("{}/{}", variables["owner"].as_str().unwrap_or(""), variables["name"].as_str().unwrap_or(""));
            let number = variables["number"].as_u64();
            let start = variables["cursor"].as_str().and_then(|c| c.parse::<usize>().ok()).unwrap_or(0);
            if !self.installations.get(&installation).is_some_and(|r| r.contains(&repo)) {
                Answer::ok(
                    200,
                    json!({ "data": { "repository": null }, "errors": [{ "message": "Could not resolve to a Repository" }] }),
                )
            } else {
                let threads: Vec<&ReviewComment> = self
                    .review_comments
                    .iter()
                    .filter(|c| c.repo == repo && Some(c.pull) == number && c.in_reply_to_id.is_none())
                    .collect();
                let end = (start + 100).min(threads.len());
                let page = threads.get(start..end).unwrap_or_default();
                // The first comment's fields as the query selects them: `fullDatabaseId` is a BigInt, sent as
                // a string; the deprecated `databaseId` is an Int, null with an error above 2^31 - 1.
                let mut errors = Vec::new();
                let nodes: Vec<Value> = page
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut comment = serde_json::Map::new();
                        if graphql_selects(query, "fullDatabaseId") {
                            comment.insert("fullDatabaseId".into(), json!(c.id.to_string()));
                        }
                        if graphql_selects(query, "databaseId") {
                            if c.id > GRAPHQL_INT_MAX {
                                comment.insert("databaseId".into(), Value::Null);
                                errors.push(json!({
                                    "type": "INTERNAL",
                                    "path": ["repository", "pullRequest", "reviewThreads", "nodes", i, "comments", "nodes", 0, "databaseId"],
                                    "message": format!("Int cannot represent non 32-bit signed integer value: {}", c.id),
                                }));
                            } else {
                                comment.insert("databaseId".into(), json!(c.id));
                            }
                        }
                        json!({ "id": format!("PRRT_{}", c.id), "isResolved": c.resolved, "comments": { "nodes": [comment] } })
                    })
                    .collect();
                let mut answer = json!({ "data": { "repository": { "pullRequest": { "reviewThreads": {
                    "pageInfo": { "hasNextPage": end < threads.len(), "endCursor": end.to_string() },
                    "nodes": nodes,
                } } } } });
                if !errors.is_empty() {
                    answer["errors"] = Value::Array(errors);
                }
                Answer::ok(200, answer)
            }
        } else {
            self.violations.push(format!("{request}: a GraphQL query the fake does not know: {query}"));
            Answer::ok(200, json!({ "data": null, "errors": [{ "message": "unknown query" }] }))
        };
        record.status = answer.status;
        self.requests.push(record);
        answer
    }

    fn list_pull_files(&self, repo: &str, number: Option<u64>, query: &HashMap<String, String>) -> Answer {
        let Some(pull) = number.and_then(|n| self.pulls.get(&(repo.to_string(), n))) else {
            return Answer::error(404, "Not Found");
        };
        let files: Vec<Value> = pull
            .files
            .iter()
            .map(|f| {
                let mut file = json!({
                    "sha": "0000000000000000000000000000000000000000",
                    "filename": f.filename,
                    "status": f.status,
                    "additions": f.patch.as_deref().map_or(0, |p| p.lines().filter(|l| l.starts_with('+')).count()),
                    "deletions": f.patch.as_deref().map_or(0, |p| p.lines().filter(|l| l.starts_with('-')).count()),
                    "changes": 0,
                    "blob_url": format!("https://github.com/{repo}/blob/{}/{}", pull.head_sha, f.filename),
                    "raw_url": format!("https://github.com/{repo}/raw/{}/{}", pull.head_sha, f.filename),
                    "contents_url": format!("https://api.github.com/repos/{repo}/contents/{}", f.filename),
                });
                if let Some(patch) = &f.patch {
                    file["patch"] = Value::String(patch.clone());
                }
                file
            })
            .collect();
        Answer::ok(200, Value::Array(page(files, query)))
    }

    fn unserved(&mut self, method: &str, segments: &[&str]) -> Answer {
        self.violations.push(format!("{method} /{}: the fake GitHub does not serve this", segments.join("/")));
        Answer::error(501, "not served by the fake GitHub")
    }

    /// Checks an App JWT as GitHub does: RS256 signed by the App's key, `iss` the App id, `iat` in the past,
    /// `exp` in the future and at most ten minutes after `iat`.
    fn verify_jwt(&self, token: &str) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Claims {
            iss: Value,
            iat: i64,
            exp: i64,
        }
        let key = DecodingKey::from_rsa_pem(TEST_APP_PUBLIC_KEY.as_bytes()).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::RS256);
        // `iss` is checked below: GitHub takes the App id as a number, which jsonwebtoken does not read as an issuer.
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| format!("A JSON web token could not be decoded: {e}"))?
            .claims;
        let iss_matches =
            claims.iss.as_u64() == Some(TEST_APP_ID) || claims.iss.as_str() == Some(&TEST_APP_ID.to_string());
        if !iss_matches {
            return Err(format!("'Issuer' claim ('iss') must be the App id, not {}", claims.iss));
        }
        let now = Utc::now().timestamp();
        if claims.iat > now {
            return Err("'Issued at' claim ('iat') must be an Integer representing a time in the past".into());
        }
        if claims.exp - claims.iat > 600 {
            return Err("'Expiration time' claim ('exp') is too far in the future".into());
        }
        Ok(())
    }

    fn access_token(&mut self, installation: &str) -> Answer {
        let Some(id) = installation.parse::<u64>().ok().filter(|id| self.installations.contains_key(id)) else {
            return Answer::error(404, "Not Found");
        };
        let n = self.id(IdKind::Token);
        let token = format!("ghs_fake{id}x{n:024}");
        let expires = Utc::now() + chrono::Duration::hours(1);
        self.tokens.insert(token.clone(), (id, expires));
        Answer::ok(
            201,
            json!({
                "token": token,
                "expires_at": timestamp(expires),
                "permissions": { "checks": "write", "pull_requests": "write", "contents": "read", "metadata": "read" },
                "repository_selection": "selected",
            }),
        )
    }

    /// A new App for a code of the manifest flow, as github.com answers it; the code is spent.
    fn convert_manifest(&mut self, code: &str) -> Answer {
        if !self.manifest_codes.remove(code) {
            return Answer::error(404, "Not Found");
        }
        let id = self.id(IdKind::App);
        self.apps.push(id);
        let now = timestamp(Utc::now());
        let owner = User::human("octo");
        Answer::ok(
            201,
            json!({
                "id": id,
                "slug": "kpath",
                "node_id": format!("A_{id}"),
                "client_id": format!("Iv23li{id:014}"),
                "owner": owner.json(),
                "name": "kpath",
                "description": "",
                "external_url": "https://kpath.example.com",
                "html_url": "https://github.com/apps/kpath",
                "created_at": now,
                "updated_at": now,
                "permissions": { "checks": "write", "pull_requests": "write", "contents": "read", "metadata": "read" },
                "events": ["check_run", "check_suite", "issue_comment", "pull_request", "pull_request_review_comment"],
                "client_secret": format!("fake-client-secret-{id}"),
                "webhook_secret": format!("fake-webhook-secret-{id}"),
                "pem": TEST_ONLY_APP_PRIVATE_KEY,
            }),
        )
    }

    fn list_pulls(&self, repo: &str, query: &HashMap<String, String>) -> Answer {
        let state = query.get("state").map_or("open", String::as_str);
        let pulls: Vec<Value> = self
            .pulls
            .iter()
            .filter(|((r, _), p)| r == repo && (state == "all" || p.state == state))
            .map(|(_, p)| pull_json(repo, p))
            .collect();
        Answer::ok(200, Value::Array(page(pulls, query)))
    }

    fn compare(&self, repo: &str, basehead: &str) -> Answer {
        let Some((base, head)) = basehead.split_once("...") else {
            return Answer::error(404, "Not Found");
        };
        let found = self
            .pulls
            .iter()
            .find(|((r, _), p)| r == repo && (p.base_sha == base || p.base_ref == base) && p.head_sha == head);
        match found {
            Some((_, pull)) => Answer::ok(
                200,
                json!({
                    "status": "ahead",
                    "ahead_by": 1,
                    "behind_by": 0,
                    "total_commits": 1,
                    "base_commit": { "sha": pull.base_sha },
                    "merge_base_commit": { "sha": pull.merge_base },
                    "commits": [],
                    "files": [],
                }),
            ),
            None => Answer::error(404, "Not Found"),
        }
    }

    fn create_check_run(&mut self, repo: &str, body: &Value) -> Answer {
        let (Some(name), Some(head_sha)) = (body["name"].as_str(), body["head_sha"].as_str()) else {
            return Answer::error(422, "Invalid request: name and head_sha are required");
        };
        if let Err(answer) = check_text("name", Some(name), MAX_CHECK_RUN_NAME) {
            return answer;
        }
        let id = self.id(IdKind::CheckRun);
        let mut run = CheckRun {
            id,
            repo: repo.to_string(),
            name: name.to_string(),
            head_sha: head_sha.to_string(),
            status: "queued".to_string(),
            conclusion: None,
            title: None,
            summary: None,
            text: None,
            annotations: Vec::new(),
            actions: Vec::new(),
            started_at: Utc::now(),
            completed_at: None,
        };
        if let Err(answer) = apply_check_run_update(&mut run, body) {
            return answer;
        }
        let json = check_run_json(&run);
        self.check_runs.push(run);
        Answer::ok(201, json)
    }

    fn update_check_run(&mut self, repo: &str, id: Option<u64>, body: &Value) -> Answer {
        let Some(run) = self.check_runs.iter_mut().find(|r| Some(r.id) == id && r.repo == repo) else {
            return Answer::error(404, "Not Found");
        };
        let mut updated = run.clone();
        if let Err(answer) = apply_check_run_update(&mut updated, body) {
            return answer;
        }
        *run = updated;
        Answer::ok(200, check_run_json(run))
    }

    fn list_check_runs(&self, repo: &str, sha: &str, query: &HashMap<String, String>) -> Answer {
        let mut runs: Vec<&CheckRun> = self
            .check_runs
            .iter()
            .filter(|r| r.repo == repo && r.head_sha == sha)
            .filter(|r| query.get("check_name").is_none_or(|n| *n == r.name))
            .collect();
        if query.get("filter").is_none_or(|f| f == "latest") {
            let mut latest: BTreeMap<&str, &CheckRun> = BTreeMap::new();
            for run in runs {
                latest.insert(&run.name, run);
            }
            runs = latest.into_values().collect();
        }
        let total = runs.len();
        let runs: Vec<Value> = runs.into_iter().map(check_run_json).collect();
        Answer::ok(200, json!({ "total_count": total, "check_runs": page(runs, query) }))
    }

    fn list_issue_comments(&self, repo: &str, number: Option<u64>, query: &HashMap<String, String>) -> Answer {
        let since = query.get("since").and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        let comments: Vec<Value> = self
            .issue_comments
            .iter()
            .filter(|c| c.repo == repo && Some(c.number) == number)
            .filter(|c| since.is_none_or(|s| c.updated_at >= s))
            .map(issue_comment_json)
            .collect();
        Answer::ok(200, Value::Array(page(comments, query)))
    }

    fn create_issue_comment(&mut self, repo: &str, number: Option<u64>, body: &Value) -> Answer {
        let Some(number) = number.filter(|n| self.pulls.contains_key(&(repo.to_string(), *n))) else {
            return Answer::error(404, "Not Found");
        };
        let text = match comment_body(body) {
            Ok(text) => text,
            Err(answer) => return answer,
        };
        let id = self.id(IdKind::IssueComment);
        let now = Utc::now();
        let comment = IssueComment {
            id,
            repo: repo.to_string(),
            number,
            body: text,
            user: User::bot(),
            created_at: now,
            updated_at: now,
        };
        let json = issue_comment_json(&comment);
        self.issue_comments.push(comment);
        Answer::ok(201, json)
    }

    fn update_issue_comment(&mut self, repo: &str, id: Option<u64>, body: &Value) -> Answer {
        let text = match comment_body(body) {
            Ok(text) => text,
            Err(answer) => return answer,
        };
        let Some(comment) = self.issue_comments.iter_mut().find(|c| Some(c.id) == id && c.repo == repo) else {
            return Answer::error(404, "Not Found");
        };
        comment.body = text;
        comment.updated_at = Utc::now();
        Answer::ok(200, issue_comment_json(comment))
    }

    fn react(&mut self, repo: &str, comment_id: Option<u64>, body: &Value, review: bool) -> Answer {
        let exists = |id: &u64| match review {
            true => self.review_comments.iter().any(|c| c.id == *id && c.repo == repo),
            false => self.issue_comments.iter().any(|c| c.id == *id && c.repo == repo),
        };
        let Some(comment_id) = comment_id.filter(exists) else {
            return Answer::error(404, "Not Found");
        };
        let Some(content) = body["content"].as_str().filter(|c| REACTIONS.contains(c)) else {
            return Answer::error(422, "Validation Failed: content is not a reaction");
        };
        let user = User::bot();
        if let Some(existing) = self.reactions.iter().find(|r| {
            r.repo == repo
                && r.comment_id == comment_id
                && r.on_review_comment == review
                && r.content == content
                && r.user == user
        }) {
            return Answer::ok(200, reaction_json(existing));
        }
        let id = self.id(IdKind::Reaction);
        let reaction = Reaction {
            id,
            repo: repo.to_string(),
            comment_id,
            on_review_comment: review,
            content: content.to_string(),
            user,
        };
        let json = reaction_json(&reaction);
        self.reactions.push(reaction);
        Answer::ok(201, json)
    }

    fn list_review_comments(&self, repo: &str, pull: Option<u64>, query: &HashMap<String, String>) -> Answer {
        let since = query.get("since").and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        let comments: Vec<Value> = self
            .review_comments
            .iter()
            .filter(|c| c.repo == repo && Some(c.pull) == pull)
            .filter(|c| since.is_none_or(|s| c.updated_at >= s))
            .map(review_comment_json)
            .collect();
        Answer::ok(200, Value::Array(page(comments, query)))
    }

    fn create_review(&mut self, repo: &str, number: Option<u64>, body: &Value) -> Answer {
        let Some(pull) = number.and_then(|n| self.pulls.get(&(repo.to_string(), n))).cloned() else {
            return Answer::error(404, "Not Found");
        };
        let event = body["event"].as_str().unwrap_or("PENDING").to_string();
        let text = body["body"].as_str().unwrap_or("").to_string();
        if matches!(event.as_str(), "COMMENT" | "REQUEST_CHANGES") && text.is_empty() {
            return Answer::error(422, "Unprocessable Entity: body is required for this event");
        }
        if let Err(answer) = check_text("body", Some(&text), MAX_COMMENT_BODY) {
            return answer;
        }
        let commit_id = body["commit_id"].as_str().unwrap_or(&pull.head_sha).to_string();
        let comments = body["comments"].as_array().cloned().unwrap_or_default();
        for c in &comments {
            let (Some(path), Some(line)) = (c["path"].as_str(), c["line"].as_u64()) else {
                return Answer::error(422, "Unprocessable Entity: a comment needs path and line");
            };
            if let Some(commentable) = &pull.commentable
                && !commentable.get(path).is_some_and(|lines| lines.contains(&line))
            {
                return Answer::error(
                    422,
                    "Unprocessable Entity: Pull request review thread line must be part of the diff",
                );
            }
            // A multi-line comment: `start_line` before `line`, on the same side, in the diff too (GitHub
            // also wants both in one hunk; every line between them being commentable stands for that here).
            if let Some(start) = c.get("start_line").and_then(Value::as_u64) {
                let same_side = c["start_side"].as_str().unwrap_or("RIGHT") == c["side"].as_str().unwrap_or("RIGHT");
                let in_diff = pull
                    .commentable
                    .as_ref()
                    .is_none_or(|all| all.get(path).is_some_and(|lines| (start..=line).all(|l| lines.contains(&l))));
                if start >= line || !same_side || !in_diff {
                    return Answer::error(
                        422,
                        "Unprocessable Entity: Pull request review thread start line must be part of the same hunk \
                         as the line, and precede it",
                    );
                }
            }
            if c["body"].as_str().is_none_or(|b| b.len() > MAX_COMMENT_BODY) {
                return Answer::error(422, "Unprocessable Entity: body is too long (maximum is 65536 characters)");
            }
        }
        let id = self.id(IdKind::Review);
        let now = Utc::now();
        for c in &comments {
            let comment_id = self.id(IdKind::ReviewComment);
            self.review_comments.push(ReviewComment {
                id: comment_id,
                repo: repo.to_string(),
                pull: pull.number,
                review_id: Some(id),
                in_reply_to_id: None,
                path: c["path"].as_str().unwrap_or_default().to_string(),
                line: c["line"].as_u64(),
                start_line: c.get("start_line").and_then(Value::as_u64),
                side: c["side"].as_str().unwrap_or("RIGHT").to_string(),
                body: c["body"].as_str().unwrap_or_default().to_string(),
                commit_id: commit_id.clone(),
                user: User::bot(),
                resolved: false,
                created_at: now,
                updated_at: now,
            });
        }
        let review = Review {
            id,
            repo: repo.to_string(),
            pull: pull.number,
            commit_id: Some(commit_id),
            event,
            body: text,
            user: User::bot(),
        };
        let json = json!({
            "id": review.id,
            "node_id": format!("PRR_{}", review.id),
            "user": review.user.json(),
            "body": review.body,
            "state": if review.event == "COMMENT" { "COMMENTED" } else { "PENDING" },
            "commit_id": review.commit_id,
            "html_url": format!("https://github.com/{repo}/pull/{}#pullrequestreview-{}", pull.number, review.id),
            "pull_request_url": format!("https://api.github.com/repos/{repo}/pulls/{}", pull.number),
            "author_association": "NONE",
            "submitted_at": timestamp(now),
        });
        self.reviews.push(review);
        Answer::ok(200, json)
    }

    fn reply(&mut self, repo: &str, pull: Option<u64>, to: Option<u64>, body: &Value) -> Answer {
        let text = match comment_body(body) {
            Ok(text) => text,
            Err(answer) => return answer,
        };
        let Some(parent) =
            self.review_comments.iter().find(|c| c.repo == repo && Some(c.pull) == pull && Some(c.id) == to).cloned()
        else {
            return Answer::error(404, "Not Found");
        };
        let id = self.id(IdKind::ReviewComment);
        let now = Utc::now();
        let comment = ReviewComment {
            id,
            review_id: None,
            in_reply_to_id: Some(parent.in_reply_to_id.unwrap_or(parent.id)),
            body: text,
            user: User::bot(),
            created_at: now,
            updated_at: now,
            ..parent
        };
        let json = review_comment_json(&comment);
        self.review_comments.push(comment);
        Answer::ok(201, json)
    }
}

/// Applies a create or update body to a check run as GitHub does, or the 422 GitHub would answer.
fn apply_check_run_update(run: &mut CheckRun, body: &Value) -> Result<(), Answer> {
    if let Some(status) = body["status"].as_str() {
        run.status = status.to_string();
    }
    if let Some(conclusion) = body["conclusion"].as_str() {
        run.conclusion = Some(conclusion.to_string());
        run.status = "completed".to_string();
    }
    if run.status == "completed" && run.conclusion.is_none() {
        return Err(Answer::error(422, "Invalid request: conclusion is required when status is completed"));
    }
    if run.status == "completed" && run.completed_at.is_none() {
        run.completed_at = Some(Utc::now());
    }
    if let Some(output) = body.get("output") {
        let summary = output["summary"].as_str().unwrap_or("");
        check_texts("", body, &CHECK_RUN_LIMITS)?;
        let annotations = output["annotations"].as_array().cloned().unwrap_or_default();
        if annotations.len() > MAX_ANNOTATIONS_PER_REQUEST {
            return Err(Answer::error(422, "Invalid request: only 50 annotations are allowed per request"));
        }
        for annotation in &annotations {
            check_texts("annotation ", annotation, &ANNOTATION_LIMITS)?;
        }
        run.title = output["title"].as_str().map(str::to_string);
        if let Some(text) = output["text"].as_str() {
            run.text = Some(text.to_string());
        }
        run.summary = Some(summary.to_string());
        run.annotations.extend(annotations);
    }
    if let Some(actions) = body["actions"].as_array() {
        if actions.len() > 3 {
            return Err(Answer::error(422, "Invalid request: at most 3 actions"));
        }
        for action in actions {
            check_texts("action ", action, &ACTION_LIMITS)?;
        }
        run.actions = actions.clone();
    }
    Ok(())
}

fn comment_body(body: &Value) -> Result<String, Answer> {
    match body["body"].as_str() {
        Some(text) if text.len() > MAX_COMMENT_BODY => {
            Err(Answer::error(422, "Validation Failed: body is too long (maximum is 65536 characters)"))
        }
        Some(text) => Ok(text.to_string()),
        None => Err(Answer::error(422, "Invalid request: body is required")),
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One page of `items` by `per_page` (default 30, at most 100) and `page` (from 1).
fn page(items: Vec<Value>, query: &HashMap<String, String>) -> Vec<Value> {
    let per_page = query.get("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(30).clamp(1, 100);
    let page = query.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    items.into_iter().skip((page - 1) * per_page).take(per_page).collect()
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' if i + 3 <= bytes.len() => hex(bytes[i + 1]).zip(hex(bytes[i + 2])).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (decoded, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn repo_json(full_name: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, ""));
    json!({ "full_name": full_name, "name": name, "owner": { "login": owner } })
}

fn pull_json(repo: &str, pull: &Pull) -> Value {
    json!({
        "number": pull.number,
        "state": pull.state,
        "draft": pull.draft,
        "title": format!("Pull request {}", pull.number),
        "html_url": format!("https://github.com/{repo}/pull/{}", pull.number),
        "head": {
            "ref": pull.head_ref,
            "sha": pull.head_sha,
            "label": format!("{}:{}", pull.head_repo.as_deref().unwrap_or("ghost").split('/').next().unwrap_or(""), pull.head_ref),
            "repo": pull.head_repo.as_deref().map(repo_json),
        },
        "base": {
            "ref": pull.base_ref,
            "sha": pull.base_sha,
            "label": format!("{}:{}", repo.split('/').next().unwrap_or(""), pull.base_ref),
            "repo": repo_json(repo),
        },
    })
}

fn check_run_json(run: &CheckRun) -> Value {
    json!({
        "id": run.id,
        "node_id": format!("CR_{}", run.id),
        "name": run.name,
        "head_sha": run.head_sha,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": timestamp(run.started_at),
        "completed_at": run.completed_at.map(timestamp),
        "output": {
            "title": run.title,
            "summary": run.summary,
            "text": null,
            "annotations_count": run.annotations.len(),
            "annotations_url": format!("https://api.github.com/repos/{}/check-runs/{}/annotations", run.repo, run.id),
        },
        "app": { "id": TEST_APP_ID, "slug": "kpath" },
        "pull_requests": [],
    })
}

fn issue_comment_json(comment: &IssueComment) -> Value {
    json!({
        "id": comment.id,
        "node_id": format!("IC_{}", comment.id),
        "body": comment.body,
        "user": comment.user.json(),
        "html_url": format!("https://github.com/{}/pull/{}#issuecomment-{}", comment.repo, comment.number, comment.id),
        "created_at": timestamp(comment.created_at),
        "updated_at": timestamp(comment.updated_at),
        "author_association": "NONE",
    })
}

fn review_comment_json(comment: &ReviewComment) -> Value {
    json!({
        "id": comment.id,
        "node_id": format!("PRRC_{}", comment.id),
        "pull_request_review_id": comment.review_id,
        "in_reply_to_id": comment.in_reply_to_id,
        "path": comment.path,
        "line": comment.line,
        "start_line": comment.start_line,
        "side": comment.side,
        "body": comment.body,
        "commit_id": comment.commit_id,
        "user": comment.user.json(),
        "created_at": timestamp(comment.created_at),
        "updated_at": timestamp(comment.updated_at),
        "author_association": "NONE",
    })
}

fn reaction_json(reaction: &Reaction) -> Value {
    json!({
        "id": reaction.id,
        "node_id": format!("REA_{}", reaction.id),
        "content": reaction.content,
        "user": reaction.user.json(),
        "created_at": timestamp(Utc::now()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/vnd.github+json"));
        headers.insert("x-github-api-version", HeaderValue::from_static("2022-11-28"));
        headers.insert("user-agent", HeaderValue::from_static("test"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers
    }

    fn serve(world: &mut World, method: &str, path: &str, headers: &HeaderMap, body: &str) -> u16 {
        let uri: Uri = path.parse().expect("a path");
        world.serve(method, &uri, headers, body.as_bytes()).status
    }

    /// A world with an installation token, as the client holds it after the exchange.
    fn world_with_token() -> (World, HeaderMap) {
        let mut world = World::new();
        world.tokens.insert("ghs_test".to_string(), (TEST_INSTALLATION, Utc::now() + chrono::Duration::hours(1)));
        world.pulls.insert((TEST_REPO.to_string(), 1), Pull::new(1, "a", "b"));
        let mut headers = github_headers();
        headers.insert("authorization", HeaderValue::from_static("token ghs_test"));
        (world, headers)
    }

    #[test]
    fn requests_github_would_refuse_are_violations() {
        let (mut world, headers) = world_with_token();
        let misspelt =
            r#"{"name": "kpath", "head_sha": "abc", "output": {"title": "t", "summary": "s", "annotation": []}}"#;
        serve(&mut world, "POST", "/repos/octo/gitops/check-runs", &headers, misspelt);
        assert_eq!(world.violations.len(), 1, "{:?}", world.violations);
        assert!(world.violations[0].contains("annotation"), "{}", world.violations[0]);

        let (mut world, headers) = world_with_token();
        assert_eq!(serve(&mut world, "DELETE", "/repos/octo/gitops/check-runs/5", &headers, ""), 501);
        assert!(world.violations[0].contains("no DELETE operation"), "{:?}", world.violations);

        // In GitHub's description, but not served: recorded too, so no call goes untested.
        let (mut world, headers) = world_with_token();
        assert_eq!(serve(&mut world, "GET", "/repos/octo/gitops/issues/1/labels", &headers, ""), 501);
        assert_eq!(world.violations, ["GET /repos/octo/gitops/issues/1/labels: the fake GitHub does not serve this"]);
    }

    /// Every text field over GitHub's limit is answered 422, as GitHub does; at the limit it is taken.
    #[test]
    fn text_over_githubs_limits_is_refused() {
        let (mut world, headers) = world_with_token();
        let run = |name: &str, output: Value| {
            json!({ "name": name, "head_sha": "a".repeat(40), "status": "in_progress", "output": output }).to_string()
        };
        let created =
            |world: &mut World, body: &str| serve(world, "POST", "/repos/octo/gitops/check-runs", &headers, body);
        assert_eq!(created(&mut world, &run(&"n".repeat(256), json!({ "title": "t", "summary": "s" }))), 422);
        assert_eq!(created(&mut world, &run("kpath", json!({ "title": "t", "summary": "é".repeat(32_768) }))), 422);
        assert_eq!(created(&mut world, &run("kpath", json!({ "title": "t", "summary": "x".repeat(65_535) }))), 201);
        let annotation = |field: &str, text: String| {
            let mut a = json!({ "path": "a.yaml", "start_line": 1, "end_line": 1, "annotation_level": "notice", "message": "m" });
            a[field] = json!(text);
            run("kpath", json!({ "title": "t", "summary": "s", "annotations": [a] }))
        };
        assert_eq!(created(&mut world, &annotation("message", "m".repeat(64_001))), 422);
        assert_eq!(created(&mut world, &annotation("raw_details", "m".repeat(64_001))), 422);
        assert_eq!(created(&mut world, &annotation("title", "t".repeat(256))), 422);
        assert_eq!(created(&mut world, &annotation("message", "m".repeat(64_000))), 201);
        let with_action = |label: &str| {
            json!({
                "name": "kpath", "head_sha": "a".repeat(40), "status": "completed", "conclusion": "success",
                "actions": [{ "label": label, "description": "d", "identifier": "i" }],
            })
            .to_string()
        };
        assert_eq!(created(&mut world, &with_action(&"l".repeat(21))), 422);
        assert_eq!(created(&mut world, &with_action(&"l".repeat(20))), 201);
        let comment = |text: String| json!({ "body": text }).to_string();
        let comments = "/repos/octo/gitops/issues/1/comments";
        assert_eq!(serve(&mut world, "POST", comments, &headers, &comment("é".repeat(32_769))), 422);
        assert_eq!(serve(&mut world, "POST", comments, &headers, &comment("c".repeat(65_536))), 201);
        let review = json!({ "event": "COMMENT", "body": "r".repeat(65_537) }).to_string();
        assert_eq!(serve(&mut world, "POST", "/repos/octo/gitops/pulls/1/reviews", &headers, &review), 422);
    }

    #[test]
    fn github_headers_are_required() {
        let (mut world, _) = world_with_token();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("token ghs_test"));
        headers.append("x-github-api-version", HeaderValue::from_static("2022-11-28"));
        headers.append("x-github-api-version", HeaderValue::from_static("2022-11-28"));
        assert_eq!(serve(&mut world, "GET", "/repos/octo/gitops/pulls/1", &headers, ""), 200);
        let violations = world.violations.join("\n");
        assert!(violations.contains("Accept is []"), "{violations}");
        assert!(violations.contains("X-GitHub-Api-Version is [\"2022-11-28\", \"2022-11-28\"]"), "{violations}");
        assert!(violations.contains("no User-Agent"), "{violations}");
    }

    #[test]
    fn credentials_are_checked_as_github_does() {
        let (mut world, headers) = world_with_token();
        let mut bad = headers.clone();
        bad.insert("authorization", HeaderValue::from_static("token ghs_nope"));
        assert_eq!(serve(&mut world, "GET", "/repos/octo/gitops/pulls/1", &bad, ""), 401);
        assert_eq!(world.requests[0].auth, AuthKind::Invalid);
        assert_eq!(
            serve(&mut world, "GET", "/repos/other/repo/pulls/1", &headers, ""),
            404,
            "outside the installation"
        );
        assert_eq!(serve(&mut world, "GET", "/repos/octo/gitops/pulls/1", &headers, ""), 200);

        let jwt = |iss: Value, iat: i64, exp: i64| {
            let key =
                jsonwebtoken::EncodingKey::from_rsa_pem(TEST_ONLY_APP_PRIVATE_KEY.as_bytes()).expect("the test key");
            let claims = json!({ "iss": iss, "iat": iat, "exp": exp });
            jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::RS256), &claims, &key).expect("signs")
        };
        let now = Utc::now().timestamp();
        assert_eq!(world.verify_jwt(&jwt(json!(TEST_APP_ID), now - 60, now + 540)), Ok(()));
        assert_eq!(world.verify_jwt(&jwt(json!(TEST_APP_ID.to_string()), now - 60, now + 540)), Ok(()));
        assert!(world.verify_jwt(&jwt(json!(TEST_APP_ID + 1), now - 60, now + 540)).is_err(), "another App");
        assert!(world.verify_jwt(&jwt(json!(TEST_APP_ID), now + 60, now + 540)).is_err(), "issued in the future");
        assert!(world.verify_jwt(&jwt(json!(TEST_APP_ID), now - 60, now + 600)).is_err(), "lives over ten minutes");
        assert!(world.verify_jwt(&jwt(json!(TEST_APP_ID), now - 600, now - 1)).is_err(), "expired");
        assert!(world.verify_jwt("not.a.jwt").is_err());
    }

    #[tokio::test]
    async fn violations_are_reported() {
        let fake = FakeGitHub::start().await;
        assert_eq!(fake.violations_report(), None);
        fake.world().violations.push("GET /nope".to_string());
        assert_eq!(fake.violations_report().as_deref(), Some("requests GitHub would not accept:\n- GET /nope"));
    }

    #[test]
    fn queries_are_decoded_and_pages_cut() {
        let query = parse_query("since=2026-01-02T03%3A04%3A05Z&per_page=2&page=2&x=a+b&bad=%zz");
        assert_eq!(query["since"], "2026-01-02T03:04:05Z");
        assert_eq!((query["x"].as_str(), query["bad"].as_str()), ("a b", "%zz"));
        let items: Vec<Value> = (0..5).map(Value::from).collect();
        assert_eq!(page(items, &query), [json!(2), json!(3)]);
    }
}
