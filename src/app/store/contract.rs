//! The store contract, run against both stores: the in-process one and PostgreSQL (a fresh database
//! per test on the server `scripts/test` starts; `KPATH_TEST_DATABASE_URL` names it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::memory::MemoryStore;
use super::postgres::PgStore;
use super::{Claimed, Enqueued, Lease, Store};
use crate::app::events::Event;
use crate::app::queue::{Control, Job, Processor, Queue, RunnerConfig};

/// A new, empty database on the test server; its URL.
pub async fn fresh_database() -> String {
    let admin = std::env::var("KPATH_TEST_DATABASE_URL").unwrap_or_default();
    assert!(
        !admin.is_empty(),
        "KPATH_TEST_DATABASE_URL is not set: run `bash scripts/test`, which starts a PostgreSQL server for the tests"
    );
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("randomness");
    let name = format!("kpath_test_{}", u64::from_le_bytes(random));
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&admin).await.expect("the test server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("create database");
    pool.close().await;
    // The admin URL names the `postgres` database: the same server, the new database.
    match admin.split_once('?') {
        Some((base, query)) => format!("{}/{name}?{query}", base.rsplit_once('/').map_or(base, |(b, _)| b)),
        None => format!("{}/{name}", admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b)),
    }
}

pub async fn pg_store() -> PgStore {
    PgStore::connect(&fresh_database().await, 8).await.expect("connects and migrates")
}

pub fn review(pull: Option<u64>, sha: &str, reason: &str) -> Job {
    let requested = matches!(reason, "check_run.requested_action" | "command.recheck");
    Job::from_event(Event::Review {
        repo: "acme/shop".into(),
        installation: Some(1),
        pull,
        head_sha: sha.into(),
        requested,
        reason: reason.into(),
    })
    .expect("a job")
}

fn push(pull: u64, sha: &str) -> Job {
    review(Some(pull), sha, "pull_request.synchronize")
}

const LEASE: Duration = Duration::from_secs(30);

fn head(c: &Claimed) -> &str {
    c.job.head().unwrap_or("-")
}

/// Every store runs the same checks.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn in_memory() {
                super::$name(super::MemoryStore::new()).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                super::$name(super::pg_store().await).await;
            }
        }
    };
}

both!(lanes_run_one_job_and_a_newer_head_replaces_the_waiting_one);
async fn lanes_run_one_job_and_a_newer_head_replaces_the_waiting_one(store: impl Store) {
    assert_eq!(store.enqueue(push(7, "aaa"), Some("d1".into())).await.expect("stored"), Enqueued::Queued);
    let first = store.claim("r1", LEASE).await.expect("claims").expect("a job");
    assert_eq!((head(&first), first.attempt), ("aaa", 1));
    assert!(store.claim("r2", LEASE).await.expect("claims").is_none(), "the lane is busy");
    store.enqueue(push(7, "bbb"), Some("d2".into())).await.expect("stored");
    assert_eq!(store.renew(first.id, "r1", LEASE).await.expect("renews"), Lease::Held { cancel: true });
    store.enqueue(push(7, "ccc"), Some("d3".into())).await.expect("stored");
    assert_eq!(store.waiting().await.expect("counts"), 1, "ccc replaced bbb");
    assert!(store.claim("r2", LEASE).await.expect("claims").is_none(), "still busy");
    store.finish(first.id, "r1").await.expect("finishes");
    let next = store.claim("r2", LEASE).await.expect("claims").expect("the waiting job");
    assert_eq!(head(&next), "ccc");
    assert!(!next.cancel.is_cancelled());
    // Another pull request is another lane.
    store.enqueue(push(8, "zzz"), None).await.expect("stored");
    let other = store.claim("r1", LEASE).await.expect("claims").expect("another lane");
    assert_eq!(head(&other), "zzz");
}

both!(heads_and_deliveries_are_taken_once);
async fn heads_and_deliveries_are_taken_once(store: impl Store) {
    assert_eq!(store.enqueue(push(7, "aaa"), Some("d1".into())).await.expect("stored"), Enqueued::Queued);
    assert_eq!(store.enqueue(push(7, "aaa"), Some("d1".into())).await.expect("stored"), Enqueued::Redelivery);
    let job = store.claim("r1", LEASE).await.expect("claims").expect("a job");
    // The push's check suite, and a fork's (no pull request named): the same head, not asked again.
    let suite = review(Some(7), "aaa", "check_suite.requested");
    assert_eq!(store.enqueue(suite, Some("d2".into())).await.expect("stored"), Enqueued::Dropped);
    let fork = review(None, "aaa", "check_suite.requested");
    assert_eq!(store.enqueue(fork, Some("d3".into())).await.expect("stored"), Enqueued::Dropped);
    store.finish(job.id, "r1").await.expect("finishes");
    // Asked for: runs again.
    let rerun = review(Some(7), "aaa", "check_run.requested_action");
    assert_eq!(store.enqueue(rerun, Some("d4".into())).await.expect("stored"), Enqueued::Queued);
    let again = store.claim("r1", LEASE).await.expect("claims").expect("the re-run");
    assert_eq!(head(&again), "aaa");
    // While it runs, the same head asked again is the job already running.
    let recheck = review(Some(7), "aaa", "command.recheck");
    assert_eq!(store.enqueue(recheck, Some("d5".into())).await.expect("stored"), Enqueued::Dropped);
}

both!(a_dead_holders_job_is_taken_over_with_its_check_run);
async fn a_dead_holders_job_is_taken_over_with_its_check_run(store: impl Store) {
    store.enqueue(push(7, "aaa"), None).await.expect("stored");
    let short = Duration::from_millis(200);
    let first = store.claim("dead", short).await.expect("claims").expect("a job");
    let run = 5_000_000_000u64; // GitHub's ids are past 2^32.
    store.record_check_run(first.id, "dead", run).await.expect("records");
    assert!(store.claim("alive", LEASE).await.expect("claims").is_none(), "the lease still holds");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = store.claim("alive", LEASE).await.expect("claims").expect("taken over");
    assert_eq!((taken.id, taken.check_run, taken.attempt), (first.id, Some(run), 2));
    assert_eq!(store.renew(first.id, "dead", LEASE).await.expect("answers"), Lease::Lost, "the old holder lost it");
    store.finish(first.id, "dead").await.expect("answers");
    assert_eq!(store.renew(taken.id, "alive", LEASE).await.expect("renews"), Lease::Held { cancel: false });
    // Handed back at shutdown: taken at once by another replica.
    store.hand_back(taken.id, "alive").await.expect("hands back");
    let again = store.claim("third", LEASE).await.expect("claims").expect("handed back");
    assert_eq!((again.id, again.check_run, again.attempt), (first.id, Some(run), 3));
}

both!(posting_budget_is_per_installation_and_minute);
async fn posting_budget_is_per_installation_and_minute(store: impl Store) {
    for _ in 0..3 {
        assert_eq!(store.take_posting(1, 3).await.expect("counts"), None);
    }
    let wait = store.take_posting(1, 3).await.expect("counts").expect("over the budget");
    assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50), "{wait:?}");
    assert_eq!(store.take_posting(3_000_000_000, 3).await.expect("counts"), None, "another installation");
    store.ping().await.expect("answers");
    store.prune(Duration::from_secs(3600)).await.expect("prunes");
}

/// Records what it did; the first job waits at a gate so tests can interleave offers without sleeping.
struct Recorder {
    log: mpsc::UnboundedSender<String>,
    gate: Arc<Notify>,
    gated: AtomicBool,
    /// The gated job waits (up to a long bound) for its cancellation, which reaches it through its
    /// lease renewal on PostgreSQL.
    await_cancel: bool,
}

impl Processor for Recorder {
    async fn process(&self, job: Claimed, control: Control) {
        let head = job.job.head().unwrap_or("-").to_string();
        let _ = self.log.send(format!("start {head}"));
        if self.gated.swap(false, Ordering::SeqCst) {
            self.gate.notified().await;
            if self.await_cancel {
                let cancelled = async {
                    while !control.cancel.is_cancelled() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), cancelled).await;
            }
        }
        let outcome = if control.cancel.is_store_unreachable() {
            "store-lost"
        } else if control.cancel.is_cancelled() {
            "cancelled"
        } else {
            "posted"
        };
        let _ = self.log.send(format!("{outcome} {head}"));
    }

    async fn interrupted(&self, job: Claimed) {
        let _ = self.log.send(format!("interrupted {}", job.job.head().unwrap_or("-")));
    }
}

fn recorder(gated: bool) -> (Recorder, mpsc::UnboundedReceiver<String>, Arc<Notify>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Notify::new());
    (Recorder { log: tx, gate: gate.clone(), gated: AtomicBool::new(gated), await_cancel: false }, rx, gate)
}

fn config(concurrency: usize) -> RunnerConfig {
    RunnerConfig {
        lease: Duration::from_millis(600),
        poll: Duration::from_millis(20),
        ..RunnerConfig::new(concurrency)
    }
}

both!(a_newer_push_cancels_the_running_review_and_only_the_newest_posts);
async fn a_newer_push_cancels_the_running_review_and_only_the_newest_posts(store: impl Store) {
    let (mut processor, mut log, gate) = recorder(true);
    processor.await_cancel = true;
    let queue = Queue::start(Arc::new(store), processor, config(2));
    queue.offer(push(7, "aaa"), None).await.expect("stored");
    assert_eq!(log.recv().await.as_deref(), Some("start aaa"));
    queue.offer(push(7, "bbb"), None).await.expect("stored");
    queue.offer(push(7, "ccc"), None).await.expect("stored");
    gate.notify_one();
    assert_eq!(log.recv().await.as_deref(), Some("cancelled aaa"));
    assert_eq!(log.recv().await.as_deref(), Some("start ccc"), "bbb was replaced while waiting");
    assert_eq!(log.recv().await.as_deref(), Some("posted ccc"));
    queue.drained().await;
}

both!(concurrency_is_bounded_and_lanes_are_independent);
async fn concurrency_is_bounded_and_lanes_are_independent(store: impl Store) {
    let (processor, mut log, gate) = recorder(true);
    let queue = Queue::start(Arc::new(store), processor, config(1));
    queue.offer(push(1, "one"), None).await.expect("stored");
    assert_eq!(log.recv().await.as_deref(), Some("start one"));
    queue.offer(push(2, "two"), None).await.expect("stored");
    gate.notify_one();
    assert_eq!(log.recv().await.as_deref(), Some("posted one"), "with one permit, pull 2 waits for pull 1");
    assert_eq!(log.recv().await.as_deref(), Some("start two"));
    assert_eq!(log.recv().await.as_deref(), Some("posted two"));
}

mod shutdown_hands_back_what_did_not_finish {
    #[tokio::test]
    async fn in_memory() {
        super::shutdown_hands_back_what_did_not_finish(super::MemoryStore::new(), false).await;
    }
    #[tokio::test]
    async fn on_postgres() {
        super::shutdown_hands_back_what_did_not_finish(super::pg_store().await, true).await;
    }
}
async fn shutdown_hands_back_what_did_not_finish(store: impl Store, durable: bool) {
    let (processor, mut log, _gate) = recorder(true);
    let store = Arc::new(store);
    let queue = Queue::start(store.clone(), processor, config(1));
    queue.offer(push(1, "stuck"), None).await.expect("stored");
    assert_eq!(log.recv().await.as_deref(), Some("start stuck"));
    queue.offer(push(2, "queued"), None).await.expect("stored");
    queue.shutdown(Duration::from_millis(100), Duration::from_secs(5)).await;
    assert_eq!(queue.running(), 0, "the stuck job was stopped");
    let mut told: Vec<String> = Vec::new();
    while let Ok(line) = log.try_recv() {
        told.push(line);
    }
    told.sort();
    if durable {
        // Both stay stored for the other replicas: the stuck one handed back, claimable at once.
        assert!(told.is_empty(), "{told:?}");
        let taken = store.claim("other", LEASE).await.expect("claims").expect("handed back");
        assert_eq!((taken.job.head(), taken.attempt), (Some("stuck"), 2));
        assert_eq!(store.waiting().await.expect("counts"), 1);
    } else {
        // In-process, nobody else will run them: both are reported interrupted.
        assert_eq!(told, ["interrupted queued", "interrupted stuck"]);
    }
}

/// The in-process store, whose lease renewals fail while `down` is set: a database that stopped answering.
#[derive(Default)]
struct Unreachable {
    inner: MemoryStore,
    down: AtomicBool,
}

impl Store for Unreachable {
    async fn enqueue(&self, job: Job, delivery: Option<String>) -> Result<Enqueued, super::StoreError> {
        self.inner.enqueue(job, delivery).await
    }
    async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, super::StoreError> {
        self.inner.claim(owner, lease).await
    }
    async fn renew(&self, id: super::JobId, owner: &str, lease: Duration) -> Result<Lease, super::StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(super::StoreError("connection refused".to_string()));
        }
        self.inner.renew(id, owner, lease).await
    }
    async fn record_check_run(&self, id: super::JobId, owner: &str, run: u64) -> Result<(), super::StoreError> {
        self.inner.record_check_run(id, owner, run).await
    }
    async fn finish(&self, id: super::JobId, owner: &str) -> Result<(), super::StoreError> {
        self.inner.finish(id, owner).await
    }
    async fn hand_back(&self, id: super::JobId, owner: &str) -> Result<(), super::StoreError> {
        self.inner.hand_back(id, owner).await
    }
    async fn waiting(&self) -> Result<u64, super::StoreError> {
        self.inner.waiting().await
    }
    async fn take_posting(&self, installation: u64, per_minute: u32) -> Result<Option<Duration>, super::StoreError> {
        self.inner.take_posting(installation, per_minute).await
    }
    async fn ping(&self) -> Result<(), super::StoreError> {
        self.inner.ping().await
    }
    async fn prune(&self, age: Duration) -> Result<(), super::StoreError> {
        self.inner.prune(age).await
    }
    async fn orphans(&self) -> Vec<Claimed> {
        self.inner.orphans().await
    }
}

/// A store that stops answering for a whole lease: the job does not post, but it runs to its end (so its
/// check run says why instead of staying in progress).
#[tokio::test]
async fn a_store_unreachable_for_a_lease_stops_posting_but_lets_the_job_end() {
    let store = Arc::new(Unreachable::default());
    let (mut processor, mut log, gate) = recorder(true);
    processor.await_cancel = true;
    let queue = Queue::start(store.clone(), processor, config(1));
    queue.offer(push(1, "aaa"), None).await.expect("stored");
    assert_eq!(log.recv().await.as_deref(), Some("start aaa"));
    store.down.store(true, Ordering::SeqCst);
    gate.notify_one();
    assert_eq!(log.recv().await.as_deref(), Some("store-lost aaa"));
}
