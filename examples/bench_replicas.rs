//! The replicas benchmark: three `kpath serve` replicas on one PostgreSQL against the fake GitHub of the test
//! bed; a burst of pull requests with two pushes each, spread over several installations, with one replica
//! killed mid-review. Prints the webhook acknowledgement latency (p50, p99, max), the throughput (reviews
//! completed per second) and checks the outcome: every newest head ends with exactly one completed check run,
//! one summary, and no comment twice. Run by `scripts/bench-replicas`, which starts the PostgreSQL server.
//!
//! Usage: `bench_replicas --database-url URL [--pulls N] [--installations N] [--concurrency N]`

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kpath::app::github::SUMMARY_MARKER;
use kpath::app::store::postgres::PgStore;
use kpath::app::testing::fake_github::{TEST_INSTALLATION, TEST_REPO};
use kpath::app::testing::testbed::{App, Options};
use serde_json::json;

struct Args {
    database_url: String,
    pulls: u64,
    installations: u64,
    concurrency: u32,
}

fn args() -> Result<Args, String> {
    let mut args = Args { database_url: String::new(), pulls: 200, installations: 4, concurrency: 2 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--database-url" => args.database_url = value()?,
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

async fn run(args: Args) {
    let options = Options {
        database_url: Some(args.database_url.clone()),
        extra_replicas: 2,
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
        let status = app.send("pull_request", payload).await;
        acks.push(sent.elapsed());
        assert!(status == 202 || status == 200, "webhook answered {status}");
        if killed_at.is_none() && i >= webhooks.len() / 4 && app.replicas[0].busy() > 0 {
            app.replicas[0].kill();
            killed_at = Some(started.elapsed());
        }
    }
    let burst = started.elapsed();

    let store = PgStore::connect(&args.database_url, 2).await.expect("connects");
    loop {
        let counts = store.counts().await.expect("counts");
        let open = app.fake.world().check_runs.iter().any(|r| r.status != "completed");
        if counts == (0, 0) && !open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    println!("replicas: 3 on one PostgreSQL, {} reviews at once each; one killed at {:?}", args.concurrency, killed_at);
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
