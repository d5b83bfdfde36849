//! The replicas benchmark: three `kpath serve` replicas on one PostgreSQL against the fake GitHub of the test
//! bed; a burst of pull requests with two pushes each, spread over several installations, with one replica
//! killed mid-review. Prints the webhook acknowledgement latency (p50, p99, max), the throughput (reviews
//! completed per second) and checks the outcome: every newest head ends with exactly one completed check run,
//! one summary, and no comment twice. Run by `scripts/bench-replicas`, which starts the PostgreSQL server.
//!
//! With `--kpath BIN`, the two other replicas are `kpath serve` processes of that binary, and the one killed
//! gets a real SIGKILL; without it they run in this process, each in its own runtime, and killing one drops
//! its runtime.
//!
//! Usage: `bench_replicas --database-url URL [--kpath BIN] [--pulls N] [--installations N] [--concurrency N]`

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kpath::app::github::SUMMARY_MARKER;
use kpath::app::store::postgres::PgStore;
use kpath::app::testing::fake_github::{TEST_APP_ID, TEST_INSTALLATION, TEST_ONLY_APP_PRIVATE_KEY, TEST_REPO};
use kpath::app::testing::testbed::{App, Options, SECRET};
use kpath::app::webhook;
use serde_json::json;

struct Args {
    database_url: String,
    kpath: Option<std::path::PathBuf>,
    pulls: u64,
    installations: u64,
    concurrency: u32,
}

fn args() -> Result<Args, String> {
    let mut args = Args { database_url: String::new(), kpath: None, pulls: 200, installations: 4, concurrency: 2 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--database-url" => args.database_url = value()?,
            "--kpath" => args.kpath = Some(std::path::PathBuf::from(value()?)),
            "--pulls" => args.pulls = value()?.parse().map_err(|_| "--pulls takes a number".to_string())?,
            "--installations" => {
                args.installations = value()?.parse().map_err(|_| "--installations takes a number".to_string())?
            }
            "--concurrency" => {
                args.concurrency = value()?.parse().map_err(|_| "--concurrency takes a number".to_string())?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.database_url.is_empty() {
        return Err("--database-url is required (scripts/bench-replicas starts a server)".to_string());
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("bench_replicas: {error}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run(args));
}

/// A `kpath serve` process on the shared store, against the fake GitHub.
struct Process {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_replica(kpath: &std::path::Path, app: &App, args: &Args, n: usize) -> Process {
    // A free port, taken by kpath right after (nothing else binds ports here meanwhile).
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let cache = app.dir.path().join(format!("process-cache-{n}"));
    let child = std::process::Command::new(kpath)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KPATH_APP_ID", TEST_APP_ID.to_string())
        .env("KPATH_PRIVATE_KEY", TEST_ONLY_APP_PRIVATE_KEY)
        .env("KPATH_WEBHOOK_SECRET", SECRET)
        .env("KPATH_GITHUB_API", app.fake.url())
        .env("KPATH_LISTEN", addr.to_string())
        .env("KPATH_CACHE_DIR", &cache)
        .env("KPATH_CONCURRENCY", args.concurrency.to_string())
        .env("KPATH_HELM", std::env::var_os("KPATH_HELM").unwrap_or_default())
        .env("KPATH_DATABASE_URL", &args.database_url)
        .env("KPATH_LEASE", "5s")
        .env("KPATH_POSTING_BUDGET", "100000")
        .env("KPATH_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("kpath serve starts");
    Process { child, addr }
}

async fn healthy(addr: std::net::SocketAddr) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("kpath serve on {addr} did not start");
}

/// `kpath_jobs_running` as the replica at `addr` reports it.
async fn jobs_running(addr: std::net::SocketAddr) -> u64 {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = http::Request::get(format!("http://{addr}/metrics"))
        .body(Full::new(axum::body::Bytes::new()))
        .expect("request");
    let Ok(response) = client.request(request).await else { return 0 };
    let Ok(body) = response.into_body().collect().await else { return 0 };
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("kpath_jobs_running ").and_then(|v| v.trim().parse::<f64>().ok()))
        .map_or(0, |v| v as u64)
}

/// Sends a signed webhook to `addr`; returns the status.
async fn send_to(addr: std::net::SocketAddr, delivery: &str, payload: &serde_json::Value) -> u16 {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let body = serde_json::to_vec(payload).expect("JSON");
    let request = http::Request::post(format!("http://{addr}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", webhook::sign(SECRET, &body))
        .body(Full::new(axum::body::Bytes::from(body)))
        .expect("request");
    let response = client.request(request).await.expect("the replica answers");
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

async fn run(args: Args) {
    let in_process = if args.kpath.is_some() { 0 } else { 2 };
    let options = Options {
        database_url: Some(args.database_url.clone()),
        extra_replicas: in_process,
        settings: vec![
            ("KPATH_LEASE", "5s".to_string()),
            ("KPATH_POSTING_BUDGET", "100000".to_string()),
            ("KPATH_CONCURRENCY", args.concurrency.to_string()),
        ],
    };
    let mut app = App::start_with(options).await;
    // Installations past 2^32, as github.com's ids are, all covering the test repository.
    let installations: Vec<u64> =
        std::iter::once(TEST_INSTALLATION).chain((1..args.installations).map(|i| 5_000_000_000 + i)).collect();
    for id in &installations {
        app.fake.world().installations.insert(*id, [TEST_REPO.to_string()].into());
    }
    let checkout = app.read("apps/checkout/deployment.yaml");
    let mut processes: Vec<Option<Process>> = Vec::new();
    if let Some(kpath) = &args.kpath {
        for n in 0..2 {
            let process = spawn_replica(kpath, &app, &args, n);
            healthy(process.addr).await;
            processes.push(Some(process));
        }
    }

    // Every push is made first (git work, not measured); then the webhooks are sent as a burst.
    let mut webhooks = Vec::new();
    let mut newest = HashMap::new();
    for number in 1..=args.pulls {
        let first = checkout.replacen("spec:\n", &format!("spec:\n  replicas: {}\n", number % 7 + 2), 1);
        let second = first.replace("memory: 512Mi", "memory: 700Mi");
        let installation = installations[(number as usize) % installations.len()];
        for content in [first, second] {
            let head = app.push(number, &[("apps/checkout/deployment.yaml", Some(&content))]);
            let mut payload = app.pull_request_event("synchronize", number, &head);
            payload["installation"] = json!({ "id": installation, "node_id": "MDIzOkludGVncmF0aW9uNzc=" });
            webhooks.push((number, head.clone(), payload));
            newest.insert(number, head);
        }
    }
    for (number, head) in &newest {
        app.set_pull(*number, head);
    }

    let started = Instant::now();
    let mut acks = Vec::with_capacity(webhooks.len());
    let mut killed_at = None;
    for (i, (_, _, payload)) in webhooks.iter().enumerate() {
        let sent = Instant::now();
        // Spread over the live replicas, as a Service does.
        let live: Vec<std::net::SocketAddr> = processes.iter().flatten().map(|p| p.addr).collect();
        let status = match i % (live.len() + 1) {
            0 => app.send("pull_request", payload).await,
            k => send_to(live[k - 1], &format!("bench-{i}"), payload).await,
        };
        acks.push(sent.elapsed());
        assert!(status == 202 || status == 200, "webhook answered {status}");
        if killed_at.is_none() && i >= webhooks.len() / 4 {
            if let Some(slot) = processes.first_mut() {
                // A real SIGKILL while it holds reviews (its own `/metrics` says so): its jobs are taken over
                // once their leases run out.
                let busy = match slot.as_ref() {
                    Some(process) => jobs_running(process.addr).await > 0,
                    None => false,
                };
                if busy && let Some(mut process) = slot.take() {
                    let _ = process.child.kill();
                    let _ = process.child.wait();
                    killed_at = Some(started.elapsed());
                }
            } else if app.replicas[0].busy() > 0 {
                app.replicas[0].kill();
                killed_at = Some(started.elapsed());
            }
        }
    }
    let burst = started.elapsed();

    let store = PgStore::connect(&args.database_url, 2).await.expect("connects");
    app.settled(&store).await;
    let settled = started.elapsed();

    let world = app.fake.world();
    let mut wrong = Vec::new();
    for (number, head) in &newest {
        let runs = world.check_runs.iter().filter(|r| &r.head_sha == head && r.status == "completed").count();
        let summaries =
            world.issue_comments.iter().filter(|c| c.number == *number && c.body.contains(SUMMARY_MARKER)).count();
        let mut seen = HashSet::new();
        let twice = world
            .review_comments
            .iter()
            .filter(|c| c.pull == *number && c.in_reply_to_id.is_none())
            .any(|c| !seen.insert((c.path.clone(), c.line, c.body.clone())));
        if runs != 1 || summaries != 1 || twice {
            wrong.push(format!("#{number}: {runs} runs, {summaries} summaries, a comment twice: {twice}"));
        }
    }
    let reviews_completed = world.check_runs.iter().filter(|r| r.status == "completed").count();
    drop(world);
    let violations = app.fake.world().violations.len();

    acks.sort();
    let how = if args.kpath.is_some() { "two of them processes, one sent SIGKILL" } else { "one runtime dropped" };
    println!("replicas: 3 on one PostgreSQL, {} reviews at once each; {how} at {:?}", args.concurrency, killed_at);
    println!(
        "burst: {} pull requests × 2 pushes over {} installations = {} webhooks in {:.2} s",
        args.pulls,
        installations.len(),
        webhooks.len(),
        burst.as_secs_f64()
    );
    println!(
        "webhook acknowledgement (stored in PostgreSQL before the answer): p50 {}, p99 {}, max {}",
        ms(percentile(&acks, 0.5)),
        ms(percentile(&acks, 0.99)),
        ms(acks.last().copied().unwrap_or_default())
    );
    println!(
        "settled in {:.1} s: {} check runs completed ({:.1} per second)",
        settled.as_secs_f64(),
        reviews_completed,
        reviews_completed as f64 / settled.as_secs_f64()
    );
    println!("outcome: {} pull requests wrong, {} requests GitHub would refuse", wrong.len(), violations);
    for line in wrong.iter().take(10) {
        println!("  {line}");
    }
    if !wrong.is_empty() || violations > 0 {
        std::process::exit(1);
    }
}
