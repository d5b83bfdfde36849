//! The App benchmark: webhook acknowledgement latency under a steady load (with `hey`, a load tool from
//! Debian), and the time from a signed webhook to a completed check run for the demo pull request,
//! both against the fake GitHub of the test bed. Run by `scripts/bench --app-only`; prints figures.
//!
//! Usage: `bench_app [--hey PATH] [--rate N] [--seconds N] [--rounds N]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kpath::app::testing::fake_github::TEST_REPO;
use kpath::app::testing::testbed::{self, App};
use kpath::app::webhook;
use serde_json::json;

struct Options {
    hey: Option<PathBuf>,
    rate: u32,
    seconds: u32,
    rounds: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options { hey: None, rate: 500, seconds: 10, rounds: 10 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--hey" => options.hey = Some(PathBuf::from(value()?)),
            "--rate" => options.rate = value()?.parse().map_err(|_| "--rate takes a number".to_string())?,
            "--seconds" => options.seconds = value()?.parse().map_err(|_| "--seconds takes a number".to_string())?,
            "--rounds" => options.rounds = value()?.parse().map_err(|_| "--rounds takes a number".to_string())?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Opens a demo pull request and measures from sending its webhook to its completed check run.
async fn webhook_to_check_run(app: &App, number: u64) -> Duration {
    let changes = testbed::demo_changes();
    let changes: Vec<(&str, Option<&str>)> = changes.iter().map(|(p, c)| (p.as_str(), Some(c.as_str()))).collect();
    let head = app.push(number, &changes);
    app.set_pull(number, &head);
    let payload = app.pull_request_event("opened", number, &head);
    let started = Instant::now();
    let status = app.send("pull_request", &payload).await;
    assert_eq!(status, 202, "the webhook was not accepted");
    loop {
        let done = app.fake.world().check_runs.iter().any(|r| r.head_sha == head && r.status == "completed");
        if done {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `hey` against the webhook with `payload`; returns its report.
fn load(hey: &std::path::Path, url: &str, event: &str, payload: &serde_json::Value, o: &Options) -> String {
    let body = serde_json::to_vec(payload).expect("JSON");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &body).expect("write");
    let workers = 10;
    let output = std::process::Command::new(hey)
        .args(["-z", &format!("{}s", o.seconds), "-c", &workers.to_string()])
        .args(["-q", &(o.rate / workers).max(1).to_string(), "-m", "POST", "-T", "application/json"])
        .args(["-H", &format!("X-GitHub-Event: {event}")])
        .args(["-H", &format!("X-Hub-Signature-256: {}", webhook::sign(testbed::SECRET, &body))])
        .args(["-D", &file.path().to_string_lossy(), url])
        .output()
        .expect("hey runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The lines of hey's report worth printing.
fn summarise(report: &str) -> String {
    report
        .lines()
        .filter(|l| {
            let l = l.trim();
            l.starts_with("Requests/sec")
                || l.starts_with("50%")
                || l.starts_with("90%")
                || l.starts_with("99%")
                || l.starts_with("Slowest")
                || l.starts_with('[')
        })
        .map(|l| format!("    {}", l.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench_app: {e}");
            std::process::exit(2);
        }
    };
    let app = App::start().await;
    println!("kpath serve against the fake GitHub (every request checked against GitHub's OpenAPI description)");

    // 1. Signed webhook → completed check run, for the demo pull request (a chart, manifests, a Dockerfile).
    let mut times = Vec::new();
    for round in 0..o.rounds {
        times.push(webhook_to_check_run(&app, 100 + round as u64).await);
    }
    let cold = times[0];
    let mut warm = times[1..].to_vec();
    warm.sort();
    println!("\nwebhook → completed check run, demo pull request, {} rounds:", o.rounds);
    println!("  first (cold caches: fetch from scratch, charts rendered): {}", ms(cold));
    if !warm.is_empty() {
        println!(
            "  later pull requests: p50 {}, max {} (target ≤ 1.5 s)",
            ms(percentile(&warm, 0.5)),
            ms(*warm.last().unwrap_or(&cold))
        );
    }

    // 2. Acknowledgement latency under load.
    let Some(hey) = o.hey.clone() else {
        println!("\n(no --hey: acknowledgement latency not measured)");
        return;
    };
    let url = format!("http://{}/webhook", app.running.addr);
    let head = app.fake.world().pulls.get(&(TEST_REPO.to_string(), 100)).map(|p| p.head_sha.clone());
    let mut ignored = testbed::adapt(testbed::example("pull_request", "labeled"));
    ignored["pull_request"]["number"] = json!(100);
    let mut queued = app.pull_request_event("synchronize", 100, head.as_deref().unwrap_or_default());
    queued["number"] = json!(100);
    let size = serde_json::to_vec(&queued).map(|b| b.len()).unwrap_or(0);
    println!(
        "\nwebhook acknowledgement at {} requests/s for {} s (hey, 10 connections; body {} KB, signature checked, JSON parsed):",
        o.rate,
        o.seconds,
        size / 1024
    );
    let report = tokio::task::spawn_blocking({
        let (hey, url) = (hey.clone(), url.clone());
        let o = Options { hey: None, ..o };
        move || {
            let a = load(&hey, &url, "pull_request", &ignored, &o);
            let b = load(&hey, &url, "pull_request", &queued, &o);
            (a, b)
        }
    })
    .await
    .expect("load ran");
    println!("  an event kpath ignores (pull_request.labeled):\n{}", summarise(&report.0));
    println!(
        "  an event kpath accepts (pull_request.synchronize: 202, the job is offered to the queue, which drops repeats of a head):\n{}",
        summarise(&report.1)
    );
    app.running.idle().await;
    let open = app.fake.world().check_runs.iter().filter(|r| r.status != "completed").count();
    println!("\ncheck runs left in progress: {open}");
}
