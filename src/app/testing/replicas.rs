//! Several replicas of `kpath serve` on one PostgreSQL store, against the fake GitHub: a burst of pull
//! requests with two pushes each, over two installations, while one replica is killed mid-review. Every
//! pull request's newest head must end with exactly one completed check run, one review and one summary,
//! and no comment twice.

#![cfg(test)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use super::fake_github::{TEST_INSTALLATION, TEST_REPO};
use super::testbed::{App, Options};
use crate::app::github::SUMMARY_MARKER;
use crate::app::store::contract::fresh_database;
use crate::app::store::postgres::PgStore;

/// Past 2^32, as github.com's ids are.
const SECOND_INSTALLATION: u64 = 5_000_000_001;
const PULLS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_killed_every_newest_head_reviewed_once() {
    let _ = tracing_subscriber::fmt().with_ansi(false).with_env_filter("kpath=info").with_test_writer().try_init();
    let url = fresh_database().await;
    let options = Options {
        database_url: Some(url.clone()),
        extra_replicas: 2,
        settings: vec![("KPATH_LEASE", "3s".to_string()), ("KPATH_POSTING_BUDGET", "100000".to_string())],
    };
    let mut app = App::start_with(options).await;
    app.fake.world().installations.insert(SECOND_INSTALLATION, [TEST_REPO.to_string()].into());
    let checkout = app.read("apps/checkout/deployment.yaml");

    // Two pushes per pull request, both announced; the second moves the pull request.
    let mut newest = HashMap::new();
    let mut killed = false;
    for number in 1..=PULLS {
        let installation = if number % 2 == 0 { SECOND_INSTALLATION } else { TEST_INSTALLATION };
        let first = checkout.replacen("spec:\n", &format!("spec:\n  replicas: {}\n", number + 1), 1);
        let second = first.replace("memory: 512Mi", "memory: 700Mi");
        for content in [first, second] {
            let head = app.push(number, &[("apps/checkout/deployment.yaml", Some(&content))]);
            app.set_pull(number, &head);
            let mut payload = app.pull_request_event("synchronize", number, &head);
            payload["installation"] =
                json!({ "id": installation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc=" });
            assert_eq!(app.send("pull_request", &payload).await, 202, "stored before it is answered");
            newest.insert(number, head);
        }
        // Kill a replica while it holds a review (its jobs are taken over once their lease runs out).
        if !killed && number >= 4 {
            let busy = tokio::time::timeout(Duration::from_secs(60), async {
                while app.replicas[0].busy() == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            if busy.is_ok() {
                app.replicas[0].kill();
                killed = true;
            }
        }
    }
    assert!(killed, "a replica was killed while it held a review");

    // Settled: nothing stored, no run in progress.
    let store = PgStore::connect(&url, 2).await.expect("connects");
    let settled = tokio::time::timeout(Duration::from_secs(600), app.settled(&store)).await;
    assert!(settled.is_ok(), "the jobs settled: {:?}", store.counts().await);
    app.running.idle().await;
    assert!(app.replicas.iter().all(|r| r.busy() == 0), "every replica is idle");

    let world = app.fake.world();
    for (number, head) in &newest {
        let runs: Vec<_> = world.check_runs.iter().filter(|r| &r.head_sha == head).collect();
        assert_eq!(runs.len(), 1, "#{number}: one check run for the newest head: {runs:?}");
        assert_eq!(runs[0].status, "completed");
        // One review of the newest head, unless the first push's review already holds every comment (a
        // review posts only comments not on the pull request yet).
        let of_newest =
            world.reviews.iter().filter(|r| r.pull == *number && r.commit_id.as_ref() == Some(head)).count();
        let all = world.reviews.iter().filter(|r| r.pull == *number).count();
        assert!(of_newest <= 1 && all >= 1, "#{number}: {of_newest} reviews of the newest head, {all} in all");
        let summaries =
            world.issue_comments.iter().filter(|c| c.number == *number && c.body.contains(SUMMARY_MARKER)).count();
        assert_eq!(summaries, 1, "#{number}: one summary");
        let mut seen = HashSet::new();
        for comment in world.review_comments.iter().filter(|c| c.pull == *number && c.in_reply_to_id.is_none()) {
            assert!(seen.insert((comment.path.clone(), comment.line, comment.body.clone())), "#{number}: twice");
        }
    }
    // A head's run is never created twice, even by two replicas.
    let mut heads = HashSet::new();
    for run in &world.check_runs {
        assert!(heads.insert(run.head_sha.clone()), "two runs for {}", run.head_sha);
    }
    drop(world);
    app.assert_clean();
}
