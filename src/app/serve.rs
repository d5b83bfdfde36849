//! `kpath serve`: the GitHub App's server. Reads its settings (flags, else `KPATH_*` environment
//! variables), then serves the webhook, `/healthz` and `/readyz`, and runs the job queue until SIGINT/SIGTERM.
//!
//! A missing or malformed setting stops startup with one line naming it. The App's private key and
//! the webhook secret are held as [`SecretString`]s: never logged, never in an error message.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helm::binary::human_duration;
use crate::quantity::parse_duration_ms;

use super::github::{self, PostingBudget, RetryPolicy};
use super::queue::{Job, Queue, RunnerConfig};
use super::server::{self, Limits};
use super::store::memory::MemoryStore;
use super::store::postgres::PgStore;
use super::store::{Enqueued, Store, StoreError};
use super::webhook::{self, Sink, WebhookState};
use super::worker::{Worker, WorkerConfig};

/// The flags of `kpath serve`; each falls back to its environment variable.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// The GitHub App's id [env: KPATH_APP_ID]
    #[arg(long, value_name = "ID")]
    pub app_id: Option<String>,
    /// The App's private key, a PEM file [env: KPATH_PRIVATE_KEY_PATH, or KPATH_PRIVATE_KEY holding the PEM]
    #[arg(long, value_name = "PATH")]
    pub private_key_path: Option<PathBuf>,
    /// A file holding the webhook secret [env: KPATH_WEBHOOK_SECRET holding the secret]
    #[arg(long, value_name = "PATH")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Address to listen on [env: KPATH_LISTEN] [default: 0.0.0.0:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The webhook's path [env: KPATH_WEBHOOK_PATH] [default: /webhook]
    #[arg(long, value_name = "PATH")]
    pub webhook_path: Option<String>,
    /// GitHub's REST API [env: KPATH_GITHUB_API] [default: https://api.github.com; GitHub Enterprise
    /// Server: https://HOST/api/v3]
    #[arg(long, value_name = "URL")]
    pub github_api: Option<String>,
    /// Where fetched repositories and rendered charts are kept [env: KPATH_CACHE_DIR] [default:
    /// ~/.cache/kpath]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Reviews run at once [env: KPATH_CONCURRENCY] [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<String>,
    /// The helm binary [env: KPATH_HELM] [default: `helm` on PATH]
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,
    /// The kubectl whose built-in kustomize renders Kustomizations [env: KPATH_KUBECTL] [default: `kubectl` on PATH]
    #[arg(long, value_name = "PATH")]
    pub kubectl: Option<PathBuf>,
    /// Chart repositories (Helm HTTP or `oci://`) kpath may download charts from, as URL prefixes; repeat the
    /// flag [env: KPATH_ALLOW_CHART_SOURCES, comma-separated] [default: none]
    #[arg(long = "allow-chart-source", value_name = "PREFIX")]
    pub allow_chart_source: Vec<String>,
    /// The longest one render may take, whatever a repository's `helm.timeout` asks
    /// [env: KPATH_MAX_RENDER_TIMEOUT] [default: 60s]
    #[arg(long, value_name = "DURATION")]
    pub max_render_timeout: Option<String>,
    /// The most output one render may write, whatever a repository's `helm.maxOutput` asks
    /// [env: KPATH_MAX_RENDER_OUTPUT] [default: 256Mi]
    #[arg(long, value_name = "SIZE")]
    pub max_render_output: Option<String>,
    /// The most renders one review runs at once, whatever a repository's `helm.concurrency` asks
    /// [env: KPATH_MAX_RENDER_CONCURRENCY] [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub max_render_concurrency: Option<String>,
    /// The most memory one render may use (Helm's heap; two renders may run within twice that)
    /// [env: KPATH_MAX_RENDER_MEMORY] [default: 384Mi]
    #[arg(long, value_name = "SIZE")]
    pub max_render_memory: Option<String>,

    // What one client may hold of the webhook server (src/app/server.rs).
    /// How long a client may take to send a request's headers, and so how long a connection may sit idle
    /// (`500ms`, `10s`, `1m`; a bare number is seconds) [env: KPATH_HEADER_TIMEOUT] [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// How long a client may take to send a request's body once its headers are in [env:
    /// KPATH_BODY_TIMEOUT] [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub body_timeout: Option<String>,
    /// Connections served at once; more are closed as they arrive [env: KPATH_MAX_CONNECTIONS] [default: 512]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<String>,

    // Shared state and stopping (src/app/store/, src/app/queue.rs).
    /// PostgreSQL shared by every replica (`postgres://USER:PASSWORD@HOST/DB`); without it jobs are kept in
    /// this process and only one replica may run [env: KPATH_DATABASE_URL]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// On SIGTERM, how long running reviews may take to finish before they are handed back; keep it below
    /// the pod's termination grace period [env: KPATH_SHUTDOWN_DEADLINE] [default: 20s]
    #[arg(long, value_name = "DURATION")]
    pub shutdown_deadline: Option<String>,
    /// How long a replica holds a job without renewing it: a dead replica's job is taken over after this
    /// [env: KPATH_LEASE] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub lease: Option<String>,
    /// Content-creating GitHub requests per installation and minute, for all replicas together (GitHub's
    /// secondary rate limit is about 80) [env: KPATH_POSTING_BUDGET] [default: 80]
    #[arg(long, value_name = "N")]
    pub posting_budget: Option<String>,

    /// How log lines are written: `json` (one object per line) or `text` [env: KPATH_LOG_FORMAT] [default: json,
    /// or text when stderr is a terminal]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// The server's settings, resolved and checked.
pub struct Settings {
    pub app_id: u64,
    pub private_key: SecretString,
    pub webhook_secret: SecretString,
    pub listen: SocketAddr,
    pub webhook_path: String,
    pub api: String,
    /// Where repositories are fetched from, derived from the API.
    pub git_base: String,
    pub cache_dir: PathBuf,
    pub concurrency: usize,
    pub helm: Option<PathBuf>,
    pub kubectl: Option<PathBuf>,
    /// Chart sources kpath may download from.
    pub allowed_chart_sources: Vec<String>,
    /// Bounds on what a repository's `.kpath.yml` may ask for.
    pub ceilings: crate::config::Ceilings,
    /// Timeouts and the connection cap of the server.
    pub limits: Limits,
    /// The shared PostgreSQL store; `None`: in-process.
    pub database_url: Option<SecretString>,
    pub shutdown_deadline: Duration,
    pub lease: Duration,
    pub posting_budget: u32,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("app_id", &self.app_id)
            .field("listen", &self.listen)
            .field("webhook_path", &self.webhook_path)
            .field("api", &self.api)
            .field("git_base", &self.git_base)
            .field("cache_dir", &self.cache_dir)
            .field("concurrency", &self.concurrency)
            .field("helm", &self.helm)
            .field("ceilings", &self.ceilings)
            .field("limits", &self.limits)
            .field("database", &self.database_url.is_some())
            .field("shutdown_deadline", &self.shutdown_deadline)
            .field("lease", &self.lease)
            .field("posting_budget", &self.posting_budget)
            .finish_non_exhaustive()
    }
}

/// A setting that is missing or malformed: `NAME (--flag) problem`.
#[derive(Debug, thiserror::Error)]
#[error("{name} {problem}")]
pub struct SettingError {
    pub name: String,
    pub problem: String,
}

fn problem(name: &str, flag: &str, problem: impl Into<String>) -> SettingError {
    SettingError { name: format!("{name} (--{flag})"), problem: problem.into() }
}

impl Settings {
    /// Resolves `args`, falling back to `env` (the process environment in production).
    pub fn resolve(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, SettingError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        // Every required setting that is missing is named at once, so a first deployment is fixed in one go.
        let mut missing: Vec<SettingError> = Vec::new();
        if args.app_id.is_none() && var("KPATH_APP_ID").is_none() {
            missing.push(problem("KPATH_APP_ID", "app-id", "is not set"));
        }
        if args.private_key_path.is_none()
            && var("KPATH_PRIVATE_KEY_PATH").is_none()
            && var("KPATH_PRIVATE_KEY").is_none()
        {
            missing.push(problem("KPATH_PRIVATE_KEY_PATH", "private-key-path", "is not set (nor KPATH_PRIVATE_KEY)"));
        }
        if args.webhook_secret_file.is_none() && var("KPATH_WEBHOOK_SECRET").is_none() {
            missing.push(problem("KPATH_WEBHOOK_SECRET", "webhook-secret-file", "is not set"));
        }
        if missing.len() > 1 {
            let rest: Vec<String> = missing[1..].iter().map(|e| e.to_string()).collect();
            let first = &missing[0];
            return Err(SettingError {
                name: first.name.clone(),
                problem: format!("{}; {}", first.problem, rest.join("; ")),
            });
        }

        let app_id = args.app_id.clone().or_else(|| var("KPATH_APP_ID")).ok_or_else(|| {
            problem("KPATH_APP_ID", "app-id", "is not set: the GitHub App's numeric id, from its settings page")
        })?;
        let app_id = match app_id.trim().parse::<u64>() {
            Ok(id) if id > 0 => id,
            _ => return Err(problem("KPATH_APP_ID", "app-id", format!("must be a positive number, not {app_id:?}"))),
        };

        let private_key = match (&args.private_key_path, var("KPATH_PRIVATE_KEY_PATH"), var("KPATH_PRIVATE_KEY")) {
            (Some(path), _, _) => read_secret(path, "KPATH_PRIVATE_KEY_PATH", "private-key-path")?,
            (None, Some(path), _) => read_secret(Path::new(&path), "KPATH_PRIVATE_KEY_PATH", "private-key-path")?,
            (None, None, Some(pem)) => SecretString::from(pem),
            (None, None, None) => {
                return Err(problem(
                    "KPATH_PRIVATE_KEY_PATH",
                    "private-key-path",
                    "is not set (nor KPATH_PRIVATE_KEY): the App's private key, the .pem file GitHub generated",
                ));
            }
        };
        if octocrab::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes()).is_err() {
            let what = "is not a PEM-encoded RSA private key (as GitHub generates for Apps)";
            return Err(if args.private_key_path.is_some() || var("KPATH_PRIVATE_KEY_PATH").is_some() {
                problem("KPATH_PRIVATE_KEY_PATH", "private-key-path", what)
            } else {
                SettingError { name: "KPATH_PRIVATE_KEY".to_string(), problem: what.to_string() }
            });
        }

        let webhook_secret = match (&args.webhook_secret_file, var("KPATH_WEBHOOK_SECRET")) {
            (Some(path), _) => read_secret(path, "KPATH_WEBHOOK_SECRET", "webhook-secret-file")?,
            (None, Some(secret)) => SecretString::from(secret),
            (None, None) => {
                return Err(problem(
                    "KPATH_WEBHOOK_SECRET",
                    "webhook-secret-file",
                    "is not set: the secret entered in the App's webhook settings",
                ));
            }
        };
        if webhook_secret.expose_secret().trim().is_empty() {
            return Err(problem("KPATH_WEBHOOK_SECRET", "webhook-secret-file", "is empty"));
        }

        let listen = args.listen.clone().or_else(|| var("KPATH_LISTEN")).unwrap_or_else(|| "0.0.0.0:8080".into());
        let listen: SocketAddr = listen.trim().parse().map_err(|_| {
            problem(
                "KPATH_LISTEN",
                "listen",
                format!("must be an address and port such as 0.0.0.0:8080, not {listen:?}"),
            )
        })?;

        let webhook_path = args.webhook_path.clone().or_else(|| var("KPATH_WEBHOOK_PATH")).unwrap_or("/webhook".into());
        if !webhook_path.starts_with('/') || webhook_path.contains(['?', '#', ' ', '{', '}', '*']) {
            return Err(problem(
                "KPATH_WEBHOOK_PATH",
                "webhook-path",
                format!("must be a plain path such as /webhook, not {webhook_path:?}"),
            ));
        }

        let api = args
            .github_api
            .clone()
            .or_else(|| var("KPATH_GITHUB_API"))
            .unwrap_or_else(|| "https://api.github.com".into());
        let api = api.trim().trim_end_matches('/').to_string();
        github::parse_api(&api)
            .map_err(|e| problem("KPATH_GITHUB_API", "github-api", format!("is not usable: {e}")))?;
        let git_base = git_base(&api);

        let cache_dir =
            args.cache_dir.clone().or_else(|| var("KPATH_CACHE_DIR").map(PathBuf::from)).unwrap_or_else(|| {
                env("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .unwrap_or_else(std::env::temp_dir)
                    .join("kpath")
            });

        let concurrency = match args.concurrency.clone().or_else(|| var("KPATH_CONCURRENCY")) {
            None => std::thread::available_parallelism().map_or(2, usize::from),
            Some(n) => match n.trim().parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => n,
                _ => {
                    return Err(problem(
                        "KPATH_CONCURRENCY",
                        "concurrency",
                        format!("must be a number from 1 to 256, not {n:?}"),
                    ));
                }
            },
        };

        let helm = args.helm.clone().or_else(|| var("KPATH_HELM").map(PathBuf::from));
        if let Some(path) = &helm
            && !path.is_file()
        {
            return Err(problem("KPATH_HELM", "helm", format!("{} is not a file", path.display())));
        }
        let kubectl = args.kubectl.clone().or_else(|| var("KPATH_KUBECTL").map(PathBuf::from));
        if let Some(path) = &kubectl
            && !path.is_file()
        {
            return Err(problem("KPATH_KUBECTL", "kubectl", format!("{} is not a file", path.display())));
        }

        let allowed_chart_sources: Vec<String> = if args.allow_chart_source.is_empty() {
            var("KPATH_ALLOW_CHART_SOURCES")
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default()
        } else {
            args.allow_chart_source.clone()
        };
        let ceilings = crate::config::Ceilings::resolve(
            [
                args.max_render_timeout.as_deref(),
                args.max_render_output.as_deref(),
                args.max_render_concurrency.as_deref(),
                args.max_render_memory.as_deref(),
            ],
            &var,
        )
        .map_err(|e| {
            let flag = e.name.trim_start_matches("KPATH_").to_ascii_lowercase().replace('_', "-");
            problem(e.name, &flag, e.problem)
        })?;
        let limits = resolve_limits(args, &var)?;
        let database_url = match args.database_url.clone().or_else(|| var("KPATH_DATABASE_URL")) {
            None => None,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(SecretString::from(url.trim().to_string()))
            }
            Some(_) => {
                return Err(problem(
                    "KPATH_DATABASE_URL",
                    "database-url",
                    "must be a postgres:// or postgresql:// URL",
                ));
            }
        };
        let shutdown_deadline = duration_setting(
            &args.shutdown_deadline,
            &var,
            ("KPATH_SHUTDOWN_DEADLINE", "shutdown-deadline"),
            Duration::from_secs(20),
            (Duration::from_secs(1), Duration::from_secs(600)),
        )?;
        let lease = duration_setting(
            &args.lease,
            &var,
            ("KPATH_LEASE", "lease"),
            Duration::from_secs(30),
            (Duration::from_millis(300), Duration::from_secs(600)),
        )?;
        let posting_budget = match args.posting_budget.clone().or_else(|| var("KPATH_POSTING_BUDGET")) {
            None => 80,
            Some(n) => match n.trim().parse::<u32>() {
                Ok(n) if (1..=100_000).contains(&n) => n,
                _ => {
                    return Err(problem(
                        "KPATH_POSTING_BUDGET",
                        "posting-budget",
                        format!("must be a number from 1 to 100000, not {n:?}"),
                    ));
                }
            },
        };

        Ok(Settings {
            app_id,
            private_key,
            webhook_secret,
            listen,
            webhook_path,
            api,
            git_base,
            cache_dir,
            concurrency,
            helm,
            kubectl,
            allowed_chart_sources,
            ceilings,
            limits,
            database_url,
            shutdown_deadline,
            lease,
            posting_budget,
        })
    }
}

/// A duration setting from its flag, else its variable (a bare number is seconds), else `default`, within
/// `range`.
fn duration_setting(
    flag_value: &Option<String>,
    var: &dyn Fn(&str) -> Option<String>,
    (name, flag): (&str, &str),
    default: Duration,
    range: (Duration, Duration),
) -> Result<Duration, SettingError> {
    let Some(text) = flag_value.clone().or_else(|| var(name)) else { return Ok(default) };
    let seconds = text.trim().parse::<u64>().ok().and_then(|s| s.checked_mul(1000));
    match seconds.or_else(|| parse_duration_ms(&text)).map(Duration::from_millis) {
        Some(d) if (range.0..=range.1).contains(&d) => Ok(d),
        _ => Err(problem(
            name,
            flag,
            format!(
                "must be a duration from {} to {} (such as 20s), not {text:?}",
                human_duration(range.0),
                human_duration(range.1)
            ),
        )),
    }
}

/// The server's timeouts and connection cap, each from its flag, else its variable, else the default.
fn resolve_limits(args: &ServeArgs, var: &dyn Fn(&str) -> Option<String>) -> Result<Limits, SettingError> {
    let defaults = Limits::default();
    let header_timeout = duration_setting(
        &args.header_timeout,
        var,
        ("KPATH_HEADER_TIMEOUT", "header-timeout"),
        defaults.header_timeout,
        TIMEOUT_RANGE,
    )?;
    let body_timeout = duration_setting(
        &args.body_timeout,
        var,
        ("KPATH_BODY_TIMEOUT", "body-timeout"),
        defaults.body_timeout,
        TIMEOUT_RANGE,
    )?;
    let max_connections = match args.max_connections.clone().or_else(|| var("KPATH_MAX_CONNECTIONS")) {
        None => defaults.max_connections,
        Some(n) => match n.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_CONNECTIONS_CEILING).contains(&n) => n,
            _ => {
                return Err(problem(
                    "KPATH_MAX_CONNECTIONS",
                    "max-connections",
                    format!("must be a number from 1 to {MAX_CONNECTIONS_CEILING}, not {n:?}"),
                ));
            }
        },
    };
    Ok(Limits { header_timeout, body_timeout, max_connections })
}

/// The shortest and longest header and body timeouts accepted.
const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));
/// The most connections that may be allowed (each holds a file descriptor and up to 64 KiB of buffers).
const MAX_CONNECTIONS_CEILING: usize = 65_536;

fn read_secret(path: &Path, name: &str, flag: &str) -> Result<SecretString, SettingError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SecretString::from(text.trim_end_matches(['\n', '\r']).to_string())),
        Err(e) => Err(problem(name, flag, format!("cannot be read from {}: {e}", path.display()))),
    }
}

/// Where git fetches go, for an API base: github.com for api.github.com, the server itself for GitHub
/// Enterprise Server (`https://HOST/api/v3` → `https://HOST`), and a local fake serves both.
pub fn git_base(api: &str) -> String {
    let api = api.trim_end_matches('/');
    if api == "https://api.github.com" {
        "https://github.com".to_string()
    } else if let Some(host) = api.strip_suffix("/api/v3") {
        host.to_string()
    } else {
        api.to_string()
    }
}

/// The job runner as the server sees it, whatever its store.
trait Runner: Send + Sync {
    fn drained(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    fn shutdown(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    fn is_stopping(&self) -> bool;
    fn running(&self) -> usize;
    fn ping(&self) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>>;
}

/// How long, after the shutdown deadline, GitHub is told about the jobs nobody will run.
const ORPHANS_WITHIN: Duration = Duration::from_secs(5);

impl<S: Store> Runner for Queue<S, Worker> {
    fn drained(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(Queue::drained(self))
    }
    fn shutdown(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(Queue::shutdown(self, deadline, ORPHANS_WITHIN))
    }
    fn is_stopping(&self) -> bool {
        Queue::is_stopping(self)
    }
    fn running(&self) -> usize {
        Queue::running(self)
    }
    fn ping(&self) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> {
        Box::pin(self.store().ping())
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stopped: tokio::task::JoinHandle<()>,
    runner: Arc<dyn Runner>,
}

impl Running {
    /// Waits until the server stops taking webhooks and the job runner has stopped (see
    /// [`Queue::shutdown`]).
    pub async fn wait(self) -> std::io::Result<()> {
        let served = self.task.await.map_err(std::io::Error::other)?;
        self.stopped.await.map_err(std::io::Error::other)?;
        served
    }

    /// Waits until no job is running or waiting.
    pub async fn idle(&self) {
        self.runner.drained().await;
    }

    /// Jobs running in this replica now.
    pub fn busy(&self) -> usize {
        self.runner.running()
    }
}

/// The queue as the webhook's sink: a job is stored before the webhook is answered.
struct QueueSink<S: Store>(Queue<S, Worker>);

impl<S: Store> Sink for QueueSink<S> {
    async fn accept(&self, event: super::events::Event, delivery: Option<String>) -> Result<Enqueued, StoreError> {
        if self.0.is_stopping() {
            // Refused, so GitHub's redelivery (or another replica) takes it.
            return Err(StoreError("this replica is shutting down".to_string()));
        }
        match Job::from_event(event) {
            Some(job) => self.0.offer(job, delivery).await,
            None => {
                tracing::info!("installation event");
                Ok(Enqueued::Dropped)
            }
        }
    }
}

/// The posting budget, counted in the store (shared by every replica with PostgreSQL).
struct StoreBudget<S: Store> {
    store: Arc<S>,
    per_minute: u32,
}

impl<S: Store> PostingBudget for StoreBudget<S> {
    fn take(&self, installation: u64) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // A few rounds at most: the wait is until the current minute ends.
            for _ in 0..3 {
                match self.store.take_posting(installation, self.per_minute).await {
                    Ok(None) => return,
                    Ok(Some(wait)) => {
                        tracing::info!(
                            installation,
                            wait_ms = wait.as_millis() as u64,
                            "posting budget spent; waiting"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    Err(error) => {
                        tracing::warn!(installation, "{error}; posting without the shared budget");
                        return;
                    }
                }
            }
        })
    }
}

/// Starts serving on `listener` (the caller bound it) with `retry` for GitHub calls. Must run in a
/// tokio runtime; `shutdown` stops taking webhooks and jobs, then stops the runner (see
/// [`Queue::shutdown`]).
pub async fn start(
    settings: Settings,
    retry: RetryPolicy,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Running> {
    match settings.database_url.clone() {
        Some(url) => {
            let connections = u32::try_from(settings.concurrency * 2 + 4).unwrap_or(u32::MAX);
            let store = PgStore::connect(url.expose_secret(), connections).await.map_err(std::io::Error::other)?;
            start_with(Arc::new(store), settings, retry, listener, shutdown).await
        }
        None => start_with(Arc::new(MemoryStore::new()), settings, retry, listener, shutdown).await,
    }
}

async fn start_with<S: Store>(
    store: Arc<S>,
    settings: Settings,
    retry: RetryPolicy,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Running> {
    std::fs::create_dir_all(&settings.cache_dir)?;
    super::metrics::install();
    let addr = listener.local_addr()?;
    let (resubmit, mut resubmitted) = mpsc::unbounded_channel();
    let key = octocrab::EncodingKey::from_rsa_pem(settings.private_key.expose_secret().as_bytes())
        .map_err(|_| std::io::Error::other("the App's private key is not a PEM-encoded RSA key"))?;
    let budget: Arc<dyn PostingBudget> =
        Arc::new(StoreBudget { store: store.clone(), per_minute: settings.posting_budget });
    let worker = Worker::new(
        WorkerConfig {
            api: settings.api.clone(),
            app_id: settings.app_id,
            private_key: settings.private_key,
            git_base: settings.git_base.clone(),
            cache_dir: settings.cache_dir.clone(),
            helm: settings.helm.clone(),
            kubectl: settings.kubectl.clone(),
            github_host: crate::gitops::repo::normalise(&format!("{}/x/y", settings.git_base))
                .and_then(|u| u.split('/').next().map(str::to_string))
                .unwrap_or_else(|| "github.com".to_string()),
            allowed_chart_sources: settings.allowed_chart_sources.clone(),
            ceilings: settings.ceilings,
            retry,
            budget: Some(budget),
        },
        resubmit,
    );
    let config = RunnerConfig { lease: settings.lease, ..RunnerConfig::new(settings.concurrency) };
    let queue = Queue::start(store, worker, config);
    let feedback = queue.clone();
    tokio::spawn(async move {
        while let Some(event) = resubmitted.recv().await {
            if let Some(job) = Job::from_event(event)
                && let Err(error) = feedback.offer(job, None).await
            {
                tracing::error!("/kpath recheck: {error}");
            }
        }
    });
    let runner: Arc<dyn Runner> = Arc::new(queue.clone());
    let state = Arc::new(WebhookState::new(settings.webhook_secret, QueueSink(queue)));
    let readiness = Arc::new(Readiness { runner: runner.clone(), app_id: settings.app_id, key });
    let app: Router = webhook::router(&settings.webhook_path, state)
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(super::metrics::router())
        .route("/readyz", get(move || readyz(readiness.clone())));
    // One signal, two listeners: the server stops taking connections, the runner stops taking jobs.
    let (signal, _) = tokio::sync::watch::channel(false);
    let server_signal = signal.subscribe();
    let runner_signal = signal.subscribe();
    tokio::spawn(async move {
        shutdown.await;
        signal.send_replace(true);
    });
    let wait_for = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let task = tokio::spawn(server::serve(listener, app, settings.limits, wait_for(server_signal)));
    let stopping = runner.clone();
    let deadline = settings.shutdown_deadline;
    let stopped = tokio::spawn(async move {
        wait_for(runner_signal).await;
        stopping.shutdown(deadline).await;
    });
    Ok(Running { addr, task, stopped, runner })
}

/// What `/readyz` checks: the App's key signs a token, the store answers, the replica is not stopping.
/// GitHub itself is never called (an outage there must not take every replica out of the Service).
struct Readiness {
    runner: Arc<dyn Runner>,
    app_id: u64,
    key: octocrab::EncodingKey,
}

async fn readyz(readiness: Arc<Readiness>) -> (axum::http::StatusCode, String) {
    let mut problems = Vec::new();
    if readiness.runner.is_stopping() {
        problems.push("shutting down".to_string());
    }
    if octocrab::auth::create_jwt(octocrab::models::AppId(readiness.app_id), &readiness.key).is_err() {
        problems.push("the App's private key cannot sign a token".to_string());
    }
    match tokio::time::timeout(Duration::from_secs(2), readiness.runner.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => problems.push(error.to_string()),
        Err(_) => problems.push("the job store did not answer within 2s".to_string()),
    }
    if problems.is_empty() {
        (axum::http::StatusCode::OK, "ok\n".to_string())
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", problems.join("; ")))
    }
}

/// `kpath serve`: binds, serves until SIGINT or SIGTERM.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Directories a killed kpath left behind (its helm processes died with it).
    let swept = crate::cleanup::sweep_stale();
    if swept > 0 {
        tracing::info!(swept, "kpath serve: removed temporary directories of kpath processes that were killed");
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("KPATH_LISTEN (--listen): cannot listen on {}: {e}", settings.listen))?;
    tracing::info!(
        listen = %settings.listen,
        webhook = settings.webhook_path,
        api = settings.api,
        concurrency = settings.concurrency,
        cache = %settings.cache_dir.display(),
        app_id = settings.app_id,
        header_timeout_ms = settings.limits.header_timeout.as_millis() as u64,
        body_timeout_ms = settings.limits.body_timeout.as_millis() as u64,
        max_connections = settings.limits.max_connections,
        store = if settings.database_url.is_some() { "postgres" } else { "in-process" },
        shutdown_deadline_ms = settings.shutdown_deadline.as_millis() as u64,
        "kpath serve: ready"
    );
    let running = start(settings, RetryPolicy::default(), listener, shutdown_signal())
        .await
        .map_err(|e| anyhow::anyhow!("KPATH_DATABASE_URL (--database-url): {e}"))?;
    running.wait().await?;
    tracing::info!("kpath serve: stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    // The running reviews get until the shutdown deadline, then are handed back; a second signal stops
    // at once: helm is killed and the temporary directories are removed.
    crate::cleanup::exit_on_signals();
    tracing::info!("kpath serve: stopping: no new jobs; running reviews get until the shutdown deadline");
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::app::testing::fake_github::TEST_ONLY_APP_PRIVATE_KEY;

    fn complete() -> HashMap<&'static str, String> {
        HashMap::from([
            ("KPATH_APP_ID", "4242".to_string()),
            ("KPATH_PRIVATE_KEY", TEST_ONLY_APP_PRIVATE_KEY.to_string()),
            ("KPATH_WEBHOOK_SECRET", "hook-secret-value".to_string()),
        ])
    }

    fn resolve(env: &HashMap<&'static str, String>, args: &ServeArgs) -> Result<Settings, String> {
        Settings::resolve(args, &|name| env.get(name).cloned()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_derived_settings() {
        let settings = resolve(&complete(), &ServeArgs::default()).expect("valid");
        assert_eq!(settings.app_id, 4242);
        assert_eq!(settings.listen, "0.0.0.0:8080".parse().expect("address"));
        assert_eq!(settings.webhook_path, "/webhook");
        assert_eq!(settings.api, "https://api.github.com");
        assert_eq!(settings.git_base, "https://github.com");
        assert!(settings.concurrency >= 1);
        assert_eq!(settings.limits, Limits::default());
        assert_eq!(
            (settings.limits.header_timeout, settings.limits.body_timeout, settings.limits.max_connections),
            (Duration::from_secs(5), Duration::from_secs(10), 512)
        );
        assert_eq!(git_base("https://ghe.example.com/api/v3/"), "https://ghe.example.com");
        assert_eq!(git_base("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }

    #[test]
    fn flags_win_over_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "from-a-file\n").expect("write");
        let args = ServeArgs {
            app_id: Some("7".into()),
            webhook_secret_file: Some(secret),
            listen: Some("127.0.0.1:9999".into()),
            concurrency: Some("3".into()),
            header_timeout: Some("500ms".into()),
            ..ServeArgs::default()
        };
        let mut env = complete();
        env.insert("KPATH_HEADER_TIMEOUT", "1h".to_string());
        env.insert("KPATH_BODY_TIMEOUT", "45".to_string());
        env.insert("KPATH_MAX_CONNECTIONS", "8".to_string());
        let settings = resolve(&env, &args).expect("valid");
        assert_eq!(
            settings.limits,
            Limits {
                header_timeout: Duration::from_millis(500),
                body_timeout: Duration::from_secs(45),
                max_connections: 8
            }
        );
        assert_eq!((settings.app_id, settings.concurrency), (7, 3));
        assert_eq!(settings.ceilings, crate::config::Ceilings::default());
        let ceilings = ServeArgs { max_render_timeout: Some("30s".into()), ..args.clone() };
        env.insert("KPATH_MAX_RENDER_TIMEOUT", "5m".to_string());
        env.insert("KPATH_MAX_RENDER_MEMORY", "512Mi".to_string());
        let with_ceilings = resolve(&env, &ceilings).expect("valid");
        assert_eq!(with_ceilings.ceilings.render_timeout, Duration::from_secs(30), "the flag wins");
        assert_eq!(with_ceilings.ceilings.render_memory, 512 << 20);
        assert_eq!(settings.webhook_secret.expose_secret(), "from-a-file");
        assert_eq!(settings.listen.port(), 9999);
    }

    /// Each missing or malformed setting stops startup with one line that names it.
    #[test]
    fn bad_settings_are_named_in_one_line() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("KPATH_APP_ID", None, "KPATH_APP_ID (--app-id) is not set"),
            ("KPATH_APP_ID", Some("abc"), "KPATH_APP_ID (--app-id) must be a positive number"),
            ("KPATH_PRIVATE_KEY", None, "KPATH_PRIVATE_KEY_PATH (--private-key-path) is not set"),
            ("KPATH_PRIVATE_KEY", Some("-----BEGIN RSA PRIVATE KEY-----\nnope"), "KPATH_PRIVATE_KEY is not a PEM"),
            ("KPATH_WEBHOOK_SECRET", None, "KPATH_WEBHOOK_SECRET (--webhook-secret-file) is not set"),
            ("KPATH_LISTEN", Some("8080"), "KPATH_LISTEN (--listen) must be an address"),
            ("KPATH_GITHUB_API", Some("http://github.example.com"), "KPATH_GITHUB_API (--github-api) is not usable"),
            ("KPATH_CONCURRENCY", Some("0"), "KPATH_CONCURRENCY (--concurrency) must be a number"),
            ("KPATH_HELM", Some("/nonexistent/helm"), "KPATH_HELM (--helm) /nonexistent/helm is not a file"),
            ("KPATH_WEBHOOK_PATH", Some("webhook"), "KPATH_WEBHOOK_PATH (--webhook-path) must be a plain path"),
            ("KPATH_HEADER_TIMEOUT", Some("99999999999999999999h"), "KPATH_HEADER_TIMEOUT (--header-timeout) must be"),
            ("KPATH_HEADER_TIMEOUT", Some("10 parsecs"), "KPATH_HEADER_TIMEOUT (--header-timeout) must be a duration"),
            ("KPATH_BODY_TIMEOUT", Some("0"), "KPATH_BODY_TIMEOUT (--body-timeout) must be a duration"),
            ("KPATH_BODY_TIMEOUT", Some("2h"), "KPATH_BODY_TIMEOUT (--body-timeout) must be a duration"),
            ("KPATH_MAX_CONNECTIONS", Some("0"), "KPATH_MAX_CONNECTIONS (--max-connections) must be a number"),
            ("KPATH_MAX_CONNECTIONS", Some("1e9"), "KPATH_MAX_CONNECTIONS (--max-connections) must be a number"),
            (
                "KPATH_MAX_RENDER_TIMEOUT",
                Some("99999999999999999999h"),
                "KPATH_MAX_RENDER_TIMEOUT (--max-render-timeout)",
            ),
            ("KPATH_MAX_RENDER_OUTPUT", Some("lots"), "KPATH_MAX_RENDER_OUTPUT (--max-render-output)"),
            ("KPATH_MAX_RENDER_CONCURRENCY", Some("0"), "KPATH_MAX_RENDER_CONCURRENCY (--max-render-concurrency)"),
            ("KPATH_MAX_RENDER_MEMORY", Some("1Mi"), "KPATH_MAX_RENDER_MEMORY (--max-render-memory)"),
        ];
        for (name, value, expected) in cases {
            let mut env = complete();
            match value {
                Some(v) => env.insert(name, v.to_string()),
                None => env.remove(name),
            };
            let error = resolve(&env, &ServeArgs::default()).expect_err(name);
            assert!(error.starts_with(expected), "{name}: {error}");
            assert!(!error.contains('\n'), "one line: {error}");
            assert!(!error.contains("hook-secret-value") && !error.contains("MIIE"), "no secret in: {error}");
        }
        // Several missing settings are named at once, on one line.
        let mut nothing = complete();
        for name in ["KPATH_APP_ID", "KPATH_PRIVATE_KEY", "KPATH_WEBHOOK_SECRET"] {
            nothing.remove(name);
        }
        let error = resolve(&nothing, &ServeArgs::default()).expect_err("nothing set");
        for name in ["KPATH_APP_ID (--app-id)", "KPATH_PRIVATE_KEY_PATH (--private-key-path)", "KPATH_WEBHOOK_SECRET"] {
            assert!(error.contains(name), "{name} in: {error}");
        }
        assert!(!error.contains('\n'), "one line: {error}");
        let missing_file = ServeArgs { private_key_path: Some("/nonexistent/key.pem".into()), ..ServeArgs::default() };
        let error = resolve(&complete(), &missing_file).expect_err("unreadable");
        assert!(
            error.starts_with("KPATH_PRIVATE_KEY_PATH (--private-key-path) cannot be read from /nonexistent/key.pem")
        );
    }

    /// SIGTERM with GitHub unreachable and reviews queued: the replica stops within its deadline plus the
    /// few seconds for telling GitHub, instead of starting every queued review.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_with_github_unreachable_is_bounded() {
        use http_body_util::{BodyExt, Full};
        // A GitHub that accepts connections and never answers.
        let blackhole = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let github = blackhole.local_addr().expect("address");
        let held = tokio::spawn(async move {
            let mut connections = Vec::new();
            while let Ok((socket, _)) = blackhole.accept().await {
                connections.push(socket);
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = complete();
        env.insert("KPATH_GITHUB_API", format!("http://{github}"));
        env.insert("KPATH_CACHE_DIR", dir.path().to_string_lossy().into_owned());
        env.insert("KPATH_CONCURRENCY", "2".to_string());
        env.insert("KPATH_SHUTDOWN_DEADLINE", "1s".to_string());
        let settings = resolve(&env, &ServeArgs::default()).expect("valid");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = start(settings, RetryPolicy::default(), listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("starts");
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        for n in 1..=10u64 {
            let payload = serde_json::json!({
                "action": "opened",
                "number": n,
                "repository": { "full_name": "octo/gitops" },
                "installation": { "id": 77 },
                "pull_request": { "number": n, "state": "open", "head": { "sha": format!("{n:040x}") } },
            });
            let body = serde_json::to_vec(&payload).expect("JSON");
            let request = http::Request::post(format!("http://{}/webhook", running.addr))
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", format!("d-{n}"))
                .header("x-hub-signature-256", webhook::sign("hook-secret-value", &body))
                .body(Full::new(axum::body::Bytes::from(body)))
                .expect("request");
            let response = client.request(request).await.expect("answered");
            assert_eq!(response.status(), 202, "stored before it is answered");
            let _ = response.into_body().collect().await;
        }
        let _ = stop.send(());
        // Deadline 1 s, then at most 5 s to tell GitHub about the rest: well under a 30 s grace period.
        let waited = tokio::time::timeout(Duration::from_secs(15), running.wait()).await;
        assert!(waited.is_ok(), "the replica stopped in time");
        held.abort();
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let settings = resolve(&complete(), &ServeArgs::default()).expect("valid");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hook-secret-value") && !shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("4242"));
    }
}
