//! The job queue: one lane per pull request. A newer head SHA replaces the job waiting in that lane
//! and cancels the one running (its results would be stale); the same head twice is one job; lanes
//! run in parallel up to a bound.
//!
//! One push announces its head more than once (`pull_request.synchronize`, then `check_suite.requested`,
//! which for a fork names no pull request and so lands in another lane): a head already taken for review
//! is not reviewed again unless someone asks (Re-run, `check_run`/`check_suite` rerequested,
//! `/kpath recheck`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};

use super::events::Event;
use super::recent::Recent;
use super::webhook::Sink;

/// How many reviewed heads are remembered.
const REMEMBERED_HEADS: usize = 10_000;

/// One lane: a pull request (or, when GitHub did not say which, a head SHA), or one comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lane {
    pub repo: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub lane: Lane,
    pub event: Event,
}

impl Job {
    pub fn from_event(event: Event) -> Option<Job> {
        let lane = match &event {
            Event::Review { repo, pull: Some(n), .. } => Lane { repo: repo.clone(), key: format!("pull/{n}") },
            Event::Review { repo, pull: None, head_sha, .. } => {
                Lane { repo: repo.clone(), key: format!("sha/{head_sha}") }
            }
            // Commands never supersede reviews or each other: each comment is its own lane.
            Event::Comment { repo, comment_id, .. } => {
                Lane { repo: repo.clone(), key: format!("comment/{comment_id}") }
            }
            Event::Installation { .. } => return None,
        };
        Some(Job { lane, event })
    }

    /// Asked for by someone (a Re-run button, a rerequest, `/kpath recheck`), not announced by a push.
    fn is_requested(&self) -> bool {
        matches!(self.event, Event::Review { requested: true, .. })
    }

    fn head(&self) -> Option<&str> {
        match &self.event {
            Event::Review { head_sha, .. } => Some(head_sha),
            _ => None,
        }
    }
}

/// Set when a newer head made this job's result stale. A processor checks it before posting.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Does the work of a job (review and post, answer a command).
pub trait Processor: Send + Sync + 'static {
    fn process(&self, job: Job, cancel: Cancel) -> impl Future<Output = ()> + Send;
}

struct Running {
    head: Option<String>,
    cancel: Cancel,
}

#[derive(Default)]
struct LaneState {
    running: Option<Running>,
    waiting: Option<Job>,
}

struct Inner<P> {
    processor: P,
    permits: Semaphore,
    lanes: Mutex<HashMap<Lane, LaneState>>,
    /// Notified when the last lane closes.
    idle: Notify,
    /// Heads taken for review: (repository, SHA).
    reviewed: Mutex<Recent<(String, String)>>,
}

pub struct Queue<P: Processor> {
    inner: Arc<Inner<P>>,
}

impl<P: Processor> Clone for Queue<P> {
    fn clone(&self) -> Self {
        Queue { inner: self.inner.clone() }
    }
}

impl<P: Processor> Queue<P> {
    /// A queue running at most `concurrency` jobs at once. Must be used inside a tokio runtime.
    pub fn new(processor: P, concurrency: usize) -> Self {
        Queue {
            inner: Arc::new(Inner {
                processor,
                permits: Semaphore::new(concurrency.max(1)),
                lanes: Mutex::new(HashMap::new()),
                idle: Notify::new(),
                reviewed: Mutex::new(Recent::new(REMEMBERED_HEADS)),
            }),
        }
    }

    pub fn push(&self, job: Job) {
        if let Some(head) = job.head() {
            let first = self.inner.reviewed.lock().map(|mut r| r.first_time((job.lane.repo.clone(), head.to_string())));
            if first.is_ok_and(|first| !first) && !job.is_requested() {
                return;
            }
        }
        let Ok(mut lanes) = self.inner.lanes.lock() else { return };
        let lane = lanes.entry(job.lane.clone()).or_default();
        match &lane.running {
            None => {
                let cancel = Cancel::default();
                lane.running = Some(Running { head: job.head().map(str::to_string), cancel: cancel.clone() });
                drop(lanes);
                self.start(job, cancel);
            }
            Some(running) => {
                if job.head().is_some() && running.head.as_deref() == job.head() {
                    // The same head is already being reviewed (e.g. pull_request.synchronize and
                    // check_suite.requested for one push).
                    return;
                }
                if job.head().is_some() {
                    running.cancel.cancel();
                }
                lane.waiting = Some(job);
            }
        }
    }

    /// Waits until no job is running or waiting (for a graceful shutdown: a job stopped half-way would
    /// leave its check run in progress).
    pub async fn drained(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.lanes.lock().map_or(true, |lanes| lanes.is_empty()) {
                return;
            }
            notified.await;
        }
    }

    fn start(&self, job: Job, cancel: Cancel) {
        let queue = self.clone();
        tokio::spawn(async move {
            let lane = job.lane.clone();
            if let Ok(_permit) = queue.inner.permits.acquire().await
                && !cancel.is_cancelled()
            {
                queue.inner.processor.process(job, cancel).await;
            }
            queue.finished(&lane);
        });
    }

    /// Starts the lane's waiting job, if any; otherwise closes the lane.
    fn finished(&self, lane: &Lane) {
        let Ok(mut lanes) = self.inner.lanes.lock() else { return };
        let next = lanes.get_mut(lane).and_then(|l| l.waiting.take());
        match next {
            Some(job) => {
                let cancel = Cancel::default();
                if let Some(state) = lanes.get_mut(lane) {
                    state.running = Some(Running { head: job.head().map(str::to_string), cancel: cancel.clone() });
                }
                drop(lanes);
                self.start(job, cancel);
            }
            None => {
                lanes.remove(lane);
                if lanes.is_empty() {
                    self.inner.idle.notify_waiters();
                }
            }
        }
    }
}

impl<P: Processor> Sink for Queue<P> {
    fn accept(&self, event: Event) {
        match Job::from_event(event) {
            Some(job) => self.push(job),
            None => tracing::info!("installation event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// Records what it did; the first job of each test waits at a gate so tests can interleave
    /// pushes deterministically (sync points, no sleeps).
    struct Recorder {
        log: mpsc::UnboundedSender<String>,
        gate: Arc<Notify>,
        gated: AtomicBool,
    }

    impl Processor for Recorder {
        async fn process(&self, job: Job, cancel: Cancel) {
            let head = job.head().unwrap_or("-").to_string();
            let _ = self.log.send(format!("start {head}"));
            if self.gated.swap(false, Ordering::SeqCst) {
                self.gate.notified().await;
            }
            let outcome = if cancel.is_cancelled() { "cancelled" } else { "posted" };
            let _ = self.log.send(format!("{outcome} {head}"));
        }
    }

    fn review(pull: u64, sha: &str) -> Job {
        review_for(Some(pull), sha, "pull_request.synchronize")
    }

    fn review_for(pull: Option<u64>, sha: &str, reason: &str) -> Job {
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

    #[tokio::test]
    async fn a_head_announced_again_is_not_reviewed_again_unless_asked() {
        let (processor, mut log, _gate) = recorder(false);
        let queue = Queue::new(processor, 2);
        queue.push(review(7, "aaa"));
        assert_eq!(log.recv().await.as_deref(), Some("start aaa"));
        assert_eq!(log.recv().await.as_deref(), Some("posted aaa"));
        queue.drained().await;
        // The push's check suite, after the review finished; and a fork's, which names no pull request.
        queue.push(review_for(Some(7), "aaa", "check_suite.requested"));
        queue.push(review_for(None, "aaa", "check_suite.requested"));
        queue.push(review_for(Some(7), "aaa", "check_run.requested_action"));
        assert_eq!(log.recv().await.as_deref(), Some("start aaa"), "the Re-run button runs");
        assert_eq!(log.recv().await.as_deref(), Some("posted aaa"));
        queue.drained().await;
        queue.push(review_for(Some(7), "aaa", "command.recheck"));
        assert_eq!(log.recv().await.as_deref(), Some("start aaa"), "so does /kpath recheck");
        assert_eq!(log.recv().await.as_deref(), Some("posted aaa"));
        queue.drained().await;
        assert!(log.try_recv().is_err(), "nothing else ran");
    }

    fn recorder(gated: bool) -> (Recorder, mpsc::UnboundedReceiver<String>, Arc<Notify>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let gate = Arc::new(Notify::new());
        (Recorder { log: tx, gate: gate.clone(), gated: AtomicBool::new(gated) }, rx, gate)
    }

    #[tokio::test]
    async fn a_newer_push_cancels_the_running_review_and_only_the_newest_posts() {
        let (processor, mut log, gate) = recorder(true);
        let queue = Queue::new(processor, 2);
        queue.push(review(7, "aaa"));
        assert_eq!(log.recv().await.as_deref(), Some("start aaa"));
        queue.push(review(7, "bbb"));
        queue.push(review(7, "ccc"));
        gate.notify_one();
        assert_eq!(log.recv().await.as_deref(), Some("cancelled aaa"));
        assert_eq!(log.recv().await.as_deref(), Some("start ccc"), "bbb was replaced while waiting");
        assert_eq!(log.recv().await.as_deref(), Some("posted ccc"));
    }

    #[tokio::test]
    async fn the_same_head_twice_is_one_job() {
        let (processor, mut log, gate) = recorder(true);
        let queue = Queue::new(processor, 2);
        queue.push(review(7, "aaa"));
        assert_eq!(log.recv().await.as_deref(), Some("start aaa"));
        queue.push(review(7, "aaa"));
        gate.notify_one();
        assert_eq!(log.recv().await.as_deref(), Some("posted aaa"));
        queue.push(review(8, "zzz"));
        assert_eq!(log.recv().await.as_deref(), Some("start zzz"), "nothing else ran in between");
    }

    #[tokio::test]
    async fn concurrency_is_bounded_and_lanes_are_independent() {
        let (processor, mut log, gate) = recorder(true);
        let queue = Queue::new(processor, 1);
        queue.push(review(1, "one"));
        assert_eq!(log.recv().await.as_deref(), Some("start one"));
        queue.push(review(2, "two"));
        // With one permit, pull 2 cannot start before pull 1 finishes.
        gate.notify_one();
        assert_eq!(log.recv().await.as_deref(), Some("posted one"));
        assert_eq!(log.recv().await.as_deref(), Some("start two"));
        assert_eq!(log.recv().await.as_deref(), Some("posted two"));
    }
}
