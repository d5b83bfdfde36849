//! `kpath setup`: registers kpath as a GitHub App through GitHub's manifest flow, from the operator's own
//! machine, and leaves the App's credentials in files ready for a Kubernetes Secret.
//!
//! The flow (<https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest>):
//! the operator's browser posts the manifest to GitHub's "new App" form with a random `state`; GitHub
//! registers the App and sends the browser back to `redirect_url` with a one-hour `code` and the `state`;
//! `POST /app-manifests/{code}/conversions` (no authentication: the code is the credential) answers with
//! the App's id, private key and webhook secret.
//!
//! Why a separate, short-lived command rather than pages of `kpath serve`: a page that mints App
//! credentials must never be reachable by whoever can reach the webhook. `kpath setup` listens on a loopback
//! address only (the callback page and the browser's redirect are plain HTTP), answers only requests whose
//! `Host` is that address (a DNS-rebinding page cannot read the state), accepts one successful callback
//! (then 410 Gone) and exits.
//!
//! What the operator gets: the private key **and** the webhook secret are written to files created with
//! mode 0600 (never overwriting an existing file), and the page and the terminal show the App's id, slug and
//! address and a `kubectl create secret` command that reads both files (`--from-file`). Neither secret is
//! ever shown: on a page it would stay in the browser's memory, a screenshot or a shared screen, and in a
//! `--from-literal` argument it would land in the shell's history and in every local user's `ps`. The
//! webhook secret needs no more care than the key already does, so it goes beside it. GitHub's OAuth
//! `client_secret` is dropped: kpath signs in no users.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::Uri;
use http_body_util::BodyExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use crate::yaml::{self, Node, NodeKind};

/// The App's manifest, built into the binary.
const MANIFEST: &str = include_str!("../../app-manifest.yml");
/// The file the App's private key is written to, in `--out`.
pub const KEY_FILE: &str = "kpath-private-key.pem";
/// The file the App's webhook secret is written to, in `--out`.
pub const SECRET_FILE: &str = "kpath-webhook-secret";
/// How long `kpath setup` waits for a registration: GitHub's codes live an hour, and a page holding a
/// valid `state` should not outlive the operator's session.
const LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How long the conversion request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// GitHub's answer is a few KiB; anything past this is not GitHub.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The longest code accepted. GitHub's codes are short (20 bytes in hex); the bound only keeps nonsense out
/// of the URL.
const MAX_CODE: usize = 100;
/// GitHub limits an App's name to 34 characters.
const MAX_NAME: usize = 34;
const MEDIA_TYPE: &str = "application/vnd.github+json";
const API_VERSION: &str = "2022-11-28";
const AGENT: &str = concat!("kpath/", env!("CARGO_PKG_VERSION"));

/// `kpath setup`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct SetupArgs {
    /// Where GitHub will reach `kpath serve` (https://HOST[/PATH]): the App's homepage; webhooks go to
    /// URL/webhook.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Register the App for this organisation instead of your own account.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// The loopback address the setup page listens on; GitHub sends your browser back to it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// GitHub's web address (GitHub Enterprise Server: https://HOST).
    #[arg(long, value_name = "URL", default_value = "https://github.com")]
    pub github: String,
    /// GitHub's REST API (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, value_name = "URL", default_value = "https://api.github.com")]
    pub github_api: String,
    /// The App's name (unique on GitHub; GitHub's form lets you change it).
    #[arg(long, default_value = "kpath")]
    pub name: String,
    /// The directory the private key and webhook secret files are written to (mode 0600).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// The namespace in the printed `kubectl create secret` command.
    #[arg(long, value_name = "NAMESPACE", default_value = "kpath")]
    pub namespace: String,
    /// The Secret's name in the printed `kubectl create secret` command.
    #[arg(long, value_name = "NAME", default_value = "kpath")]
    pub secret: String,
}

/// Why `kpath setup` cannot start or finish.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A flag's value is unusable.
    #[error("--{flag}: {problem}")]
    Flag { flag: &'static str, problem: String },
    /// The built-in manifest does not parse (a build from a broken `app-manifest.yml`).
    #[error("app-manifest.yml: {0}")]
    Manifest(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot read random bytes for the state: {0}")]
    Random(String),
    /// The callback failed in a way that cannot be retried (the App exists, its credentials were lost).
    #[error("{0}")]
    Failed(String),
    #[error("no App was registered within {} minutes; run `kpath setup` again", LIFETIME.as_secs() / 60)]
    Expired,
    #[error("interrupted")]
    Interrupted,
}

fn flag(flag: &'static str, problem: impl Into<String>) -> SetupError {
    SetupError::Flag { flag, problem: problem.into() }
}

/// The checked flags: everything the server needs but the address it is bound to.
#[derive(Debug, Clone)]
pub struct Plan {
    url: String,
    org: Option<String>,
    listen: SocketAddr,
    github: String,
    api: String,
    name: String,
    key_path: PathBuf,
    secret_path: PathBuf,
    namespace: String,
    secret: String,
}

impl Plan {
    /// Checks the flags, and that the output files can be created (so no credentials are lost to an
    /// existing file after GitHub hands them out once).
    pub fn new(args: &SetupArgs) -> Result<Plan, SetupError> {
        let url = https_url(&args.url).map_err(|e| flag("url", e))?;
        let github = https_url(&args.github).map_err(|e| flag("github", e))?;
        let api = args.github_api.trim().trim_end_matches('/').to_string();
        super::github::parse_api(&api).map_err(|e| flag("github-api", e))?;
        if let Some(org) = &args.org
            && !is_login(org)
        {
            return Err(flag("org", format!("{org:?} is not a GitHub organisation name")));
        }
        if !args.listen.ip().is_loopback() {
            return Err(flag(
                "listen",
                format!(
                    "{} is not a loopback address: the setup pages are plain HTTP and lead to the App's \
                     credentials, so they are served on this machine only (reach a remote one with `ssh -L`)",
                    args.listen
                ),
            ));
        }
        let name = args.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(flag("name", format!("GitHub takes an App name of 1 to {MAX_NAME} characters")));
        }
        for (value, what) in [(&args.namespace, "namespace"), (&args.secret, "secret")] {
            if !is_dns_label(value) {
                return Err(flag(what, format!("{value:?} is not a Kubernetes name (lower-case DNS label)")));
            }
        }
        let out = std::fs::canonicalize(&args.out).map_err(|e| flag("out", format!("{}: {e}", args.out.display())))?;
        if !out.is_dir() {
            return Err(flag("out", format!("{} is not a directory", out.display())));
        }
        let (key_path, secret_path) = (out.join(KEY_FILE), out.join(SECRET_FILE));
        for path in [&key_path, &secret_path] {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(flag("out", format!("{} already exists: move it away first", path.display())));
            }
        }
        Ok(Plan {
            url,
            org: args.org.clone(),
            listen: args.listen,
            github,
            api,
            name: name.to_string(),
            key_path,
            secret_path,
            namespace: args.namespace.clone(),
            secret: args.secret.clone(),
        })
    }
}

/// `https://HOST[/PATH]` without a trailing slash, query, fragment or credentials.
fn https_url(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    let uri: Uri = text.parse().map_err(|_| format!("{text:?} is not a URL"))?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    if uri.scheme_str() != Some("https") || uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?} is not an https:// URL"));
    }
    if authority.contains('@') || uri.query().is_some() || text.contains(['#', '"', '<', '>', ' ']) {
        return Err(format!("{text:?}: give the address only, without credentials, query or fragment"));
    }
    Ok(text.to_string())
}

/// A GitHub login: letters, digits and inner hyphens, at most 39 characters.
fn is_login(text: &str) -> bool {
    (1..=39).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A Kubernetes object name that is also safe unquoted on a command line.
fn is_dns_label(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// Whether `code` can be a code of GitHub's manifest flow: short and alphanumeric. Anything else never
/// reaches a URL.
pub fn is_code(code: &str) -> bool {
    (1..=MAX_CODE).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What the operator needs once the App is registered; no secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub id: u64,
    pub slug: String,
    pub html_url: String,
    pub key_path: PathBuf,
    /// `None` when GitHub handed out no webhook secret (the manifest always asks for a webhook, so not
    /// expected); the operator then sets one in the App's settings.
    pub secret_path: Option<PathBuf>,
    /// The `kubectl create secret generic …` command that stores both files.
    pub command: String,
}

/// Where the one registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    /// A callback is exchanging its code; any other callback is refused.
    Converting,
    Done,
}

struct Shared {
    plan: Plan,
    /// Bound address: what the redirect URL names, and the `Host` requests must carry.
    addr: SocketAddr,
    state: String,
    /// The manifest as JSON, with the flags filled in.
    manifest: String,
    phase: Mutex<Phase>,
    outcome: watch::Sender<Option<Result<Registered, String>>>,
}

impl Shared {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running setup server.
pub struct Running {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    outcome: watch::Receiver<Option<Result<Registered, String>>>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The page to open in a browser.
    pub fn page_url(&self) -> String {
        format!("http://{}/setup", self.addr)
    }

    /// The manifest as it is posted to GitHub.
    pub fn manifest(&self) -> &str {
        &self.shared.manifest
    }

    /// Waits for the registration (or its failure), then stops the server, letting the last page finish.
    pub async fn finished(mut self) -> Result<Registered, SetupError> {
        let outcome = loop {
            if let Some(outcome) = self.outcome.borrow_and_update().clone() {
                break outcome;
            }
            if self.outcome.changed().await.is_err() {
                break Err("the setup server stopped".to_string());
            }
        };
        let _ = self.shutdown.send(true);
        // Browsers keep connections open; the last page has been answered, so do not wait long for them.
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server).await.is_err() {
            self.server.abort();
        }
        outcome.map_err(SetupError::Failed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Binds the setup server and starts serving.
pub async fn start(plan: Plan) -> Result<Running, SetupError> {
    let listener = tokio::net::TcpListener::bind(plan.listen)
        .await
        .map_err(|source| SetupError::Listen { addr: plan.listen, source })?;
    let addr = listener.local_addr().map_err(|source| SetupError::Listen { addr: plan.listen, source })?;
    let manifest = manifest(&plan, &format!("http://{addr}/setup/callback"))?.to_string();
    let state = random_state()?;
    let (outcome_tx, outcome) = watch::channel(None);
    let shared =
        Arc::new(Shared { plan, addr, state, manifest, phase: Mutex::new(Phase::Waiting), outcome: outcome_tx });
    let router = Router::new()
        .route("/setup", get(setup_page))
        .route("/setup/callback", get(callback))
        .fallback(not_found)
        .with_state(shared.clone());
    let (shutdown, mut stop) = watch::channel(false);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await;
    });
    Ok(Running { addr, shared, outcome, shutdown, server })
}

/// `kpath setup`: serves the pages until the App is registered; exit 0 then, 2 on a bad flag, 1 otherwise.
pub fn command(args: &SetupArgs) -> ExitCode {
    let plan = match Plan::new(args) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: kpath setup: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: kpath setup: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(plan)) {
        Ok(registered) => {
            eprintln!("Registered GitHub App {} (id {}): {}", registered.slug, registered.id, registered.html_url);
            eprintln!("Private key written to {} (mode 0600)", registered.key_path.display());
            match &registered.secret_path {
                Some(path) => eprintln!("Webhook secret written to {} (mode 0600)", path.display()),
                None => eprintln!("GitHub gave no webhook secret: set one in the App's settings"),
            }
            eprintln!(
                "Store them as the Secret `kpath serve` reads, then delete both files:\n  {}",
                registered.command
            );
            eprintln!("Then install the App on the repositories to review: {}/installations/new", registered.html_url);
            ExitCode::SUCCESS
        }
        Err(error @ SetupError::Listen { .. }) => {
            eprintln!("error: kpath setup: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: kpath setup: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(plan: Plan) -> Result<Registered, SetupError> {
    let running = start(plan).await?;
    eprintln!("Open {} in a browser signed in to GitHub, and register the App there.", running.page_url());
    tokio::select! {
        outcome = tokio::time::timeout(LIFETIME, running.finished()) => outcome.unwrap_or(Err(SetupError::Expired)),
        _ = tokio::signal::ctrl_c() => Err(SetupError::Interrupted),
    }
}

/// The built-in manifest as JSON, with the flags and `redirect_url` filled in.
fn manifest(plan: &Plan, redirect_url: &str) -> Result<Value, SetupError> {
    let root = yaml::parse_single(MANIFEST)
        .map_err(|e| SetupError::Manifest(format!("line {}: {}", e.pos.line, e.message)))?
        .ok_or_else(|| SetupError::Manifest("empty".to_string()))?;
    let mut manifest = to_json(&root).map_err(SetupError::Manifest)?;
    let Value::Object(fields) = &mut manifest else {
        return Err(SetupError::Manifest("not a mapping".to_string()));
    };
    fields.insert("name".into(), json!(plan.name));
    fields.insert("url".into(), json!(plan.url));
    fields.insert("redirect_url".into(), json!(redirect_url));
    let hook = fields.entry("hook_attributes").or_insert_with(|| json!({}));
    match hook {
        Value::Object(hook) => {
            hook.insert("url".into(), json!(format!("{}/webhook", plan.url)));
        }
        _ => return Err(SetupError::Manifest("hook_attributes is not a mapping".to_string())),
    }
    Ok(manifest)
}

/// A YAML node as JSON, scalars read as Kubernetes reads them (`true`, numbers, strings).
fn to_json(node: &Node) -> Result<Value, String> {
    Ok(match &node.kind {
        NodeKind::Map(entries) => {
            let mut map = Map::new();
            for entry in entries {
                let key =
                    entry.key.as_key().ok_or_else(|| format!("line {}: a key is not text", entry.key.pos.line))?;
                map.insert(key.to_string(), to_json(&entry.value)?);
            }
            Value::Object(map)
        }
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        NodeKind::Scalar(scalar) => match scalar.value() {
            yaml::Value::Null => Value::Null,
            yaml::Value::Bool(b) => Value::Bool(b),
            yaml::Value::Int(i) => {
                json!(i64::try_from(i).map_err(|_| format!("line {}: {i} is out of range", node.pos.line))?)
            }
            yaml::Value::Float(f) => {
                json!(serde_json::Number::from_f64(f).ok_or_else(|| format!("line {}: {f}", node.pos.line))?)
            }
            yaml::Value::Str(s) => Value::String(s.to_string()),
        },
    })
}

/// 32 bytes from the operating system's CSPRNG, in hex.
fn random_state() -> Result<String, SetupError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SetupError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Text for an HTML element or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A word for a POSIX shell: single-quoted unless it is plainly safe.
fn shell_word(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A page, with headers that keep it out of caches, frames and `Referer`s (the callback's address holds
/// the code and the state).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<h1>{}</h1>\n{body}\n</body>\n</html>\n",
        escape(title),
        escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    );
    response
}

/// Whether the request names this server as its host: a page on another origin that rebinds its name to
/// 127.0.0.1 sends its own name, and is refused.
fn host_is_ours(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let port = shared.addr.port();
    host == shared.addr.to_string() || host == format!("localhost:{port}")
}

fn misdirected() -> Response {
    page(
        StatusCode::MISDIRECTED_REQUEST,
        "Wrong address",
        "<p>Open this page by its loopback address, as <code>kpath setup</code> printed it.</p>",
    )
}

async fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, "Not found", "<p>kpath setup serves <code>/setup</code> only.</p>")
}

async fn setup_page(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !host_is_ours(&shared, &headers) {
        return misdirected();
    }
    if *shared.phase() == Phase::Done {
        return gone();
    }
    let plan = &shared.plan;
    let action = match &plan.org {
        Some(org) => format!("{}/organizations/{org}/settings/apps/new?state={}", plan.github, shared.state),
        None => format!("{}/settings/apps/new?state={}", plan.github, shared.state),
    };
    let owner = plan.org.as_deref().map_or("your account".to_string(), |org| format!("the organisation {org}"));
    let body = format!(
        "<p>This registers the GitHub App <b>{name}</b> for {owner}, with kpath's permissions and events. GitHub \
         will send its webhooks to <code>{hook}</code>.</p>\n\
         <form action=\"{action}\" method=\"post\">\n\
         <input type=\"hidden\" name=\"manifest\" value=\"{manifest}\">\n\
         <button type=\"submit\">Register on GitHub</button>\n\
         </form>\n\
         <p>GitHub then sends you back here, and kpath setup writes the App's private key and webhook secret, \
         readable by you only, to <code>{out}</code>.</p>",
        name = escape(&plan.name),
        owner = escape(&owner),
        hook = escape(&format!("{}/webhook", plan.url)),
        action = escape(&action),
        manifest = escape(&shared.manifest),
        out = escape(&plan.key_path.parent().unwrap_or(&plan.key_path).display().to_string()),
    );
    page(StatusCode::OK, "Register kpath on GitHub", &body)
}

fn gone() -> Response {
    page(
        StatusCode::GONE,
        "Already registered",
        "<p>This setup has registered its App; its callback works once. Run <code>kpath setup</code> again to \
         register another.</p>",
    )
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !host_is_ours(&shared, &headers) {
        return misdirected();
    }
    if *shared.phase() != Phase::Waiting {
        return gone();
    }
    let (code, state) = match query {
        Ok(Query(CallbackQuery { code, state })) => (code.unwrap_or_default(), state.unwrap_or_default()),
        Err(_) => (String::new(), String::new()),
    };
    // In constant time, so the answer's timing says nothing about how much of a guess was right.
    if !bool::from(state.as_bytes().ct_eq(shared.state.as_bytes())) {
        return page(
            StatusCode::BAD_REQUEST,
            "Wrong state",
            "<p>This answer does not come from the registration this setup started. Start again from \
             <a href=\"/setup\">/setup</a>.</p>",
        );
    }
    if !is_code(&code) {
        return page(
            StatusCode::BAD_REQUEST,
            "Malformed code",
            "<p>GitHub's code is a short string of letters and digits; this one is not.</p>",
        );
    }
    {
        let mut phase = shared.phase();
        if *phase != Phase::Waiting {
            return gone();
        }
        *phase = Phase::Converting;
    }
    let app = match convert(&shared.plan.api, &code).await {
        Ok(app) => app,
        Err(error) => {
            // Nothing was handed out (or nothing arrived): the operator may register again.
            *shared.phase() = Phase::Waiting;
            eprintln!("kpath setup: {error}");
            return page(
                StatusCode::BAD_GATEWAY,
                "GitHub did not hand out the App's credentials",
                &format!(
                    "<p>{}</p><p>Codes work once and expire after an hour. If GitHub registered the App anyway, \
                     delete it in your GitHub settings, then start again from <a href=\"/setup\">/setup</a>.</p>",
                    escape(&error)
                ),
            );
        }
    };
    let outcome = store(&shared.plan, app);
    *shared.phase() = Phase::Done;
    let response = match &outcome {
        Ok(registered) => page(StatusCode::OK, "kpath is registered on GitHub", &success_body(registered)),
        Err(error) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The credentials could not be saved",
            &format!(
                "<p>{}</p><p>In the App's settings on GitHub, generate a new private key and set a new webhook \
             secret.</p>",
                escape(error)
            ),
        ),
    };
    let _ = shared.outcome.send(Some(outcome));
    response
}

fn success_body(registered: &Registered) -> String {
    let link = |url: &str, text: &str| {
        if url.starts_with("https://") || url.starts_with("http://") {
            format!("<a href=\"{}\" rel=\"noreferrer\">{}</a>", escape(url), escape(text))
        } else {
            escape(text)
        }
    };
    let secret = match &registered.secret_path {
        Some(path) => format!("<li>the webhook secret: <code>{}</code></li>", escape(&path.display().to_string())),
        None => "<li>GitHub gave no webhook secret: set one in the App's settings.</li>".to_string(),
    };
    format!(
        "<dl>\n<dt>App</dt><dd>{app}</dd>\n<dt>App id</dt><dd><code>{id}</code></dd>\n</dl>\n\
         <p>kpath setup wrote, readable by you only:</p>\n<ul>\n\
         <li>the private key: <code>{key}</code></li>\n{secret}\n</ul>\n\
         <p>Store them as the Secret <code>kpath serve</code> reads, then delete both files:</p>\n\
         <pre>{command}</pre>\n\
         <p>Then deploy kpath and {install}.</p>\n\
         <p>kpath setup has stopped; this page is not shown again.</p>",
        app = link(&registered.html_url, &registered.slug),
        id = registered.id,
        key = escape(&registered.key_path.display().to_string()),
        command = escape(&registered.command),
        install = link(&format!("{}/installations/new", registered.html_url), "install the App on your repositories"),
    )
}

/// The App as GitHub hands it out; the secrets never leave [`SecretString`]s.
struct Converted {
    id: u64,
    slug: String,
    html_url: String,
    pem: SecretString,
    webhook_secret: Option<SecretString>,
}

/// Writes the App's key and webhook secret to their files and builds the `kubectl` command.
fn store(plan: &Plan, app: Converted) -> Result<Registered, String> {
    let saved = format!("GitHub registered the App {} (id {}, {})", app.slug, app.id, app.html_url);
    write_private(&plan.key_path, app.pem.expose_secret().as_bytes()).map_err(|e| {
        format!("{saved}, but its private key could not be written to {}: {e}", plan.key_path.display())
    })?;
    let secret_path = match &app.webhook_secret {
        Some(secret) => {
            write_private(&plan.secret_path, secret.expose_secret().as_bytes()).map_err(|e| {
                format!("{saved}, but its webhook secret could not be written to {}: {e}", plan.secret_path.display())
            })?;
            Some(plan.secret_path.clone())
        }
        None => None,
    };
    let mut command = format!(
        "kubectl -n {} create secret generic {} --from-literal=app-id={} --from-file=private-key.pem={}",
        plan.namespace,
        plan.secret,
        app.id,
        shell_word(&plan.key_path.display().to_string())
    );
    if let Some(path) = &secret_path {
        command.push_str(&format!(" --from-file=webhook-secret={}", shell_word(&path.display().to_string())));
    }
    Ok(Registered {
        id: app.id,
        slug: app.slug,
        html_url: app.html_url,
        key_path: plan.key_path.clone(),
        secret_path,
        command,
    })
}

/// Creates `path` with mode 0600, failing if anything (a file, a symbolic link) is already there.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    // The umask only removes bits; set the mode outright anyway, so it is exactly 0600.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `POST {api}/app-manifests/{code}/conversions`
/// (<https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest>): no authentication and no
/// body; 201 with the App, its private key and its webhook secret.
///
/// Its own small HTTPS client rather than [`GitHub`](super::github::GitHub): that client is an
/// installation's, built from an App id and key, which do not exist yet.
async fn convert(api: &str, code: &str) -> Result<Converted, String> {
    if !is_code(code) {
        return Err("the code is malformed".to_string());
    }
    let (_, https) = super::github::parse_api(api)?;
    let operation = "exchanging GitHub's code for the App's credentials";
    let uri: Uri = format!("{}/app-manifests/{code}/conversions", api.trim_end_matches('/'))
        .parse()
        .map_err(|_| format!("{operation}: {api:?} does not make a URL"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(super::github::tls_config(https)?)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<hyper::body::Bytes>>(connector);
    let request = http::Request::post(uri)
        .header(header::ACCEPT, MEDIA_TYPE)
        .header("x-github-api-version", API_VERSION)
        .header(header::USER_AGENT, AGENT)
        .body(http_body_util::Empty::new())
        .map_err(|e| format!("{operation}: {e}"))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| format!("{operation}: {}", causes(&e)))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("{operation}: reading GitHub's answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{operation}: GitHub did not answer within {} s", REQUEST_TIMEOUT.as_secs()))??;
    if status != StatusCode::CREATED {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(|m| m.chars().take(300).collect::<String>()))
            .unwrap_or_default();
        return Err(format!("{operation}: GitHub answered {status} {message}").trim_end().to_string());
    }
    // Read into plain strings only long enough to wrap them; the raw form is never printed.
    #[derive(Deserialize)]
    struct Raw {
        id: u64,
        slug: String,
        html_url: String,
        pem: String,
        webhook_secret: Option<String>,
    }
    let raw: Raw = serde_json::from_slice(&body)
        .map_err(|e| format!("{operation}: GitHub's answer is not an App with its key: {}", json_problem(&e)))?;
    Ok(Converted {
        id: raw.id,
        slug: raw.slug,
        html_url: raw.html_url,
        pem: SecretString::from(raw.pem),
        webhook_secret: raw.webhook_secret.filter(|s| !s.is_empty()).map(SecretString::from),
    })
}

/// What kind of JSON error, without serde's excerpt of the input (which could quote the key).
fn json_problem(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        serde_json::error::Category::Data => "fields are missing or of the wrong type",
    }
}

/// An error and its causes on one line (hyper's own message is only "client error (Connect)").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use http_body_util::Empty;
    use hyper::body::Bytes;

    use super::*;
    use crate::app::testing::fake_github::{FakeGitHub, TEST_ONLY_APP_PRIVATE_KEY};

    fn args(api: &str, out: &Path) -> SetupArgs {
        SetupArgs {
            url: "https://kpath.example.com/".to_string(),
            org: None,
            listen: "127.0.0.1:0".parse().expect("an address"),
            github: "https://github.com".to_string(),
            github_api: api.to_string(),
            name: "kpath".to_string(),
            out: out.to_path_buf(),
            namespace: "kpath".to_string(),
            secret: "kpath".to_string(),
        }
    }

    async fn started(args: &SetupArgs) -> Running {
        start(Plan::new(args).expect("the flags are valid")).await.expect("the server starts")
    }

    /// GETs `path` from the setup server, with `host` as the Host header when given; (status, body).
    async fn get(addr: SocketAddr, path: &str, host: Option<&str>) -> (u16, String) {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Empty<Bytes>>();
        let mut request = http::Request::get(format!("http://{addr}{path}"));
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let response = client.request(request.body(Empty::new()).expect("a request")).await.expect("an answer");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("a body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn unescape(text: &str) -> String {
        text.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// The form's action and its `manifest` field, unescaped.
    fn form(page: &str) -> (String, Value) {
        let attribute = |name: &str| {
            let start = page.find(name).unwrap_or_else(|| panic!("no {name} in {page}")) + name.len();
            let end = start + page[start..].find('"').expect("the attribute ends");
            unescape(&page[start..end])
        };
        let action = attribute("<form action=\"");
        let manifest = attribute("name=\"manifest\" value=\"");
        (action, serde_json::from_str(&manifest).expect("the manifest is JSON"))
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("the file exists").permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_page_posts_the_filled_manifest_to_github_with_the_state() {
        let out = tempfile::tempdir().expect("a temporary directory");
        let running = started(&args("https://api.github.com", out.path())).await;
        let (status, page) = get(running.addr, "/setup", None).await;
        assert_eq!(status, 200, "{page}");
        let (action, manifest) = form(&page);
        let state = &running.shared.state;
        assert_eq!(state.len(), 64);
        assert_eq!(action, format!("https://github.com/settings/apps/new?state={state}"));
        assert!(page.contains("method=\"post\""), "{page}");
        assert_eq!(manifest["url"], "https://kpath.example.com");
        assert_eq!(manifest["hook_attributes"]["url"], "https://kpath.example.com/webhook");
        assert_eq!(manifest["hook_attributes"]["active"], true);
        assert_eq!(manifest["redirect_url"], format!("http://{}/setup/callback", running.addr));
        assert_eq!(manifest["public"], false);
        assert_eq!(manifest["default_permissions"]["checks"], "write");
        assert!(manifest.get("setup_url").is_none() && manifest.get("setup_on_update").is_none());
        assert_eq!(serde_json::from_str::<Value>(running.manifest()).ok(), Some(manifest));
        // The manifest's quotes are escaped: the attribute holds all of it.
        assert!(!page.contains("{\"name\""), "{page}");
    }

    #[tokio::test]
    async fn an_organisations_app_is_registered_on_its_settings_page() {
        let out = tempfile::tempdir().expect("a temporary directory");
        let mut args = args("https://ghe.example.com/api/v3", out.path());
        args.org = Some("acme-ops".to_string());
        args.github = "https://ghe.example.com".to_string();
        let running = started(&args).await;
        let (_, page) = get(running.addr, "/setup", None).await;
        let (action, _) = form(&page);
        let state = &running.shared.state;
        assert_eq!(action, format!("https://ghe.example.com/organizations/acme-ops/settings/apps/new?state={state}"));
        assert!(page.contains("the organisation acme-ops"), "{page}");
    }

    #[tokio::test]
    async fn two_setups_have_different_states() {
        let out = tempfile::tempdir().expect("a temporary directory");
        let one = started(&args("https://api.github.com", out.path())).await;
        let two = started(&args("https://api.github.com", out.path())).await;
        assert_ne!(one.shared.state, two.shared.state);
    }

    #[tokio::test]
    async fn a_wrong_state_is_refused_before_github_is_asked() {
        let fake = FakeGitHub::start().await;
        let out = tempfile::tempdir().expect("a temporary directory");
        let running = started(&args(fake.url(), out.path())).await;
        let code = fake.manifest_code();
        let state = running.shared.state.clone();
        // The real state with its last digit changed (never the same digit: one state in sixteen ends in `0`).
        let last = if state.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &state[..63]);
        assert_ne!(wrong, state);
        for query in [format!("code={code}&state={wrong}"), format!("code={code}"), format!("code={code}&state=")] {
            let (status, page) = get(running.addr, &format!("/setup/callback?{query}"), None).await;
            assert_eq!(status, 400, "{query}: {page}");
            assert!(page.contains("Wrong state"), "{page}");
        }
        assert!(fake.requests().is_empty());
        // A refused callback does not spend the setup's one registration.
        let (status, _) = get(running.addr, &format!("/setup/callback?code={code}&state={state}"), None).await;
        assert_eq!(status, 200);
        fake.assert_no_violations();
    }

    #[tokio::test]
    async fn the_callback_converts_the_code_once_and_writes_the_credentials_to_private_files() {
        let fake = FakeGitHub::start().await;
        let out = tempfile::tempdir().expect("a temporary directory");
        let running = started(&args(fake.url(), out.path())).await;
        let code = fake.manifest_code();
        let callback = format!("/setup/callback?code={code}&state={}", running.shared.state);
        let (status, page) = get(running.addr, &callback, None).await;
        assert_eq!(status, 200, "{page}");

        let conversions = fake.requests_to("POST", "/app-manifests/");
        assert_eq!(conversions.len(), 1);
        assert_eq!(conversions[0].path, format!("/app-manifests/{code}/conversions"));
        assert_eq!((conversions[0].status, conversions[0].auth_scheme.as_deref()), (201, None));
        let id = fake.world().apps.first().copied().expect("an App was registered");
        assert!(id > u64::from(u32::MAX >> 1), "{id}");

        let out = std::fs::canonicalize(out.path()).expect("the directory");
        let (key, secret) = (out.join(KEY_FILE), out.join(SECRET_FILE));
        assert_eq!(std::fs::read_to_string(&key).ok().as_deref(), Some(TEST_ONLY_APP_PRIVATE_KEY));
        assert_eq!(std::fs::read_to_string(&secret).ok(), Some(format!("fake-webhook-secret-{id}")));
        assert_eq!((mode(&key), mode(&secret)), (0o600, 0o600));

        let command = format!(
            "kubectl -n kpath create secret generic kpath --from-literal=app-id={id} \
             --from-file=private-key.pem={} --from-file=webhook-secret={}",
            key.display(),
            secret.display()
        );
        assert!(page.contains(&escape(&command)), "{page}");
        assert!(page.contains(&format!("<code>{id}</code>")), "{page}");
        assert!(page.contains("https://github.com/apps/kpath/installations/new"), "{page}");
        for secret in ["PRIVATE KEY", "MIIEpAIBAAKCAQEA", "fake-webhook-secret", "fake-client-secret"] {
            assert!(!page.contains(secret), "the page shows {secret}: {page}");
        }

        // Once only, whatever is sent.
        let (status, page) = get(running.addr, &callback, None).await;
        assert_eq!(status, 410, "{page}");
        let (status, _) = get(running.addr, &format!("/setup/callback?code={}", fake.manifest_code()), None).await;
        assert_eq!(status, 410);
        assert_eq!(fake.requests_to("POST", "/app-manifests/").len(), 1);

        let registered = running.finished().await.expect("registered");
        assert_eq!((registered.id, registered.slug.as_str(), registered.command), (id, "kpath", command));
        assert_eq!(registered.key_path, key);
        fake.assert_no_violations();
    }

    #[tokio::test]
    async fn a_malformed_code_is_refused_and_never_reaches_github() {
        let fake = FakeGitHub::start().await;
        let out = tempfile::tempdir().expect("a temporary directory");
        let running = started(&args(fake.url(), out.path())).await;
        let state = running.shared.state.clone();
        for code in ["", "..%2F..%2Fapp", "abc%2Fdef", "abc-def", "abc%20def", "%C3%A9t%C3%A9", &"a".repeat(101)] {
            let (status, page) = get(running.addr, &format!("/setup/callback?code={code}&state={state}"), None).await;
            assert_eq!(status, 400, "{code}: {page}");
            assert!(page.contains("Malformed code"), "{page}");
        }
        assert!(fake.requests().is_empty());
        assert!(std::fs::read_dir(out.path()).expect("the directory").next().is_none());
        fake.assert_no_violations();
    }

    #[tokio::test]
    async fn a_code_github_refuses_is_a_bad_gateway_and_the_operator_may_try_again() {
        let fake = FakeGitHub::start().await;
        let out = tempfile::tempdir().expect("a temporary directory");
        let running = started(&args(fake.url(), out.path())).await;
        let state = running.shared.state.clone();
        let (status, page) = get(running.addr, &format!("/setup/callback?code=deadbeef&state={state}"), None).await;
        assert_eq!(status, 502, "{page}");
        assert!(page.contains("404"), "{page}");
        assert!(std::fs::read_dir(out.path()).expect("the directory").next().is_none());
        let code = fake.manifest_code();
        let (status, page) = get(running.addr, &format!("/setup/callback?code={code}&state={state}"), None).await;
        assert_eq!(status, 200, "{page}");
        fake.assert_no_violations();
    }

    #[tokio::test]
    async fn requests_naming_another_host_are_refused() {
        let fake = FakeGitHub::start().await;
        let out = tempfile::tempdir().expect("a temporary directory");
        let running = started(&args(fake.url(), out.path())).await;
        let port = running.addr.port();
        let rebound = format!("attacker.example:{port}");
        let (status, page) = get(running.addr, "/setup", Some(&rebound)).await;
        assert_eq!(status, 421);
        assert!(!page.contains(&running.shared.state));
        let callback = format!("/setup/callback?code={}&state={}", fake.manifest_code(), running.shared.state);
        assert_eq!(get(running.addr, &callback, Some(&rebound)).await.0, 421);
        assert!(fake.requests().is_empty());
        assert_eq!(get(running.addr, "/setup", Some(&format!("localhost:{port}"))).await.0, 200);
        assert_eq!(get(running.addr, "/nothing", None).await.0, 404);
    }

    #[test]
    fn flags_are_checked_before_anything_is_served() {
        let out = tempfile::tempdir().expect("a temporary directory");
        let problem = |change: &dyn Fn(&mut SetupArgs)| {
            let mut args = args("https://api.github.com", out.path());
            change(&mut args);
            match Plan::new(&args) {
                Ok(_) => panic!("accepted: {args:?}"),
                Err(error) => error.to_string(),
            }
        };
        assert!(problem(&|a| a.listen = "0.0.0.0:3000".parse().expect("an address")).starts_with("--listen"));
        assert!(problem(&|a| a.url = "http://kpath.example.com".into()).starts_with("--url"));
        assert!(problem(&|a| a.url = "https://user:pw@kpath.example.com".into()).starts_with("--url"));
        assert!(problem(&|a| a.url = "https://kpath.example.com/?x=1".into()).starts_with("--url"));
        assert!(problem(&|a| a.github_api = "http://api.example.com".into()).starts_with("--github-api"));
        assert!(problem(&|a| a.org = Some("acme/../x".into())).starts_with("--org"));
        assert!(problem(&|a| a.name = "k".repeat(35)).starts_with("--name"));
        assert!(problem(&|a| a.secret = "Kpath App".into()).starts_with("--secret"));
        assert!(problem(&|a| a.out = out.path().join("missing")).starts_with("--out"));
        std::fs::write(out.path().join(KEY_FILE), "old key").expect("a file");
        let error = problem(&|_| {});
        assert!(error.contains("already exists"), "{error}");
    }

    #[test]
    fn codes_are_short_and_alphanumeric() {
        assert!(is_code("a180b1a3d263c81bc6441d7b990bae27d4c10679"));
        for bad in ["", "a/b", "a b", "a-b", "a.b", "é", "a%2F"] {
            assert!(!is_code(bad), "{bad}");
        }
        assert!(!is_code(&"a".repeat(MAX_CODE + 1)));
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(shell_word("/home/op/kpath-private-key.pem"), "/home/op/kpath-private-key.pem");
        assert_eq!(shell_word("/tmp/it's here"), r"'/tmp/it'\''s here'");
        assert_eq!(shell_word("$(rm -rf ~)"), "'$(rm -rf ~)'");
    }
}
