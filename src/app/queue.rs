//! The job runner: takes jobs from the [`Store`] and runs them, at most `concurrency` at once, holding
//! each job's lease while it runs. The lane rules (one job per pull request at a time, a newer head
//! replaces the waiting job and cancels the running one, a head announced twice is reviewed once) are the
//! store's, so they hold across replicas when the store is PostgreSQL.
//!
//! Stopping ([`Queue::shutdown`]): no new job is taken; the running ones get until the deadline to finish;
//! the rest are handed back to the store (another replica takes them over, with their check runs) and,
//! when nobody else can run them (the in-process store), their check runs are completed as interrupted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;

use super::events::Event;
use super::store::{Claimed, Enqueued, Lease, Store, StoreError};

pub use super::store::Cancel;

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
    pub fn is_requested(&self) -> bool {
        matches!(self.event, Event::Review { requested: true, .. })
    }

    /// The head a review job reviews.
    pub fn head(&self) -> Option<&str> {
        match &self.event {
            Event::Review { head_sha, .. } => Some(head_sha),
            _ => None,
        }
    }
}

type Recorder = Box<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What a running job may tell the runner.
pub struct Control {
    pub cancel: Cancel,
    record: Recorder,
}

impl Control {
    /// Records the check run this job started, so a replica that takes the job over completes it.
    pub async fn record_check_run(&self, run: u64) {
        (self.record)(run).await;
    }
}

/// Does the work of a job (review and post, answer a command).
pub trait Processor: Send + Sync + 'static {
    fn process(&self, job: Claimed, control: Control) -> impl Future<Output = ()> + Send;

    /// A job that will not run: this process is stopping and no other replica will take it.
    fn interrupted(&self, job: Claimed) -> impl Future<Output = ()> + Send;
}

/// How the runner holds and looks for jobs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Jobs run at once by this replica.
    pub concurrency: usize,
    /// How long a claimed job is held without renewal: the longest a dead replica's job waits to be
    /// taken over. Renewed every third of it.
    pub lease: Duration,
    /// How often the store is asked for jobs other replicas stored.
    pub poll: Duration,
    /// This replica's name in the store.
    pub owner: String,
}

impl RunnerConfig {
    pub fn new(concurrency: usize) -> RunnerConfig {
        RunnerConfig {
            concurrency: concurrency.max(1),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            owner: replica_name(),
        }
    }
}

/// A name unique to this process: host, process id and a random part (a restarted pod may reuse both).
pub fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "kpath".to_string());
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').take(63).collect();
    format!("{host}/{}/{:08x}", std::process::id(), u32::from_le_bytes(random))
}

struct Inner<S, P> {
    store: Arc<S>,
    processor: P,
    config: RunnerConfig,
    permits: Arc<Semaphore>,
    /// Woken when a job was stored or finished here.
    wake: Notify,
    running: AtomicUsize,
    /// Claims in flight: a job claimed is no longer waiting in the store but not yet counted as running.
    claiming: AtomicUsize,
    /// Notified whenever a job ends.
    ended: Notify,
    /// True once no new job may start.
    stopping: watch::Sender<bool>,
    /// True once the running jobs must stop and be handed back.
    interrupt: watch::Sender<bool>,
}

pub struct Queue<S: Store, P: Processor> {
    inner: Arc<Inner<S, P>>,
}

impl<S: Store, P: Processor> Clone for Queue<S, P> {
    fn clone(&self) -> Self {
        Queue { inner: self.inner.clone() }
    }
}

impl<S: Store, P: Processor> Queue<S, P> {
    /// Starts taking jobs from `store`. Must be called inside a tokio runtime.
    pub fn start(store: Arc<S>, processor: P, config: RunnerConfig) -> Self {
        let queue = Queue {
            inner: Arc::new(Inner {
                store,
                processor,
                permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
                config,
                wake: Notify::new(),
                running: AtomicUsize::new(0),
                claiming: AtomicUsize::new(0),
                ended: Notify::new(),
                stopping: watch::channel(false).0,
                interrupt: watch::channel(false).0,
            }),
        };
        let looping = queue.clone();
        tokio::spawn(async move { looping.claim_loop().await });
        queue
    }

    pub fn store(&self) -> &Arc<S> {
        &self.inner.store
    }

    /// Stores a job and wakes the runner.
    pub async fn offer(&self, job: Job, delivery: Option<String>) -> Result<Enqueued, StoreError> {
        let outcome = self.inner.store.enqueue(job, delivery).await?;
        if outcome == Enqueued::Queued {
            self.inner.wake.notify_one();
        }
        Ok(outcome)
    }

    /// Jobs running in this replica.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Whether [`Queue::shutdown`] has begun.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stopping.borrow()
    }

    /// Waits until no job is running here and none is waiting in the store.
    pub async fn drained(&self) {
        loop {
            let ended = self.inner.ended.notified();
            let busy = self.running() + self.inner.claiming.load(Ordering::SeqCst);
            if busy == 0 && self.inner.store.waiting().await.is_ok_and(|n| n == 0) {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), ended).await;
        }
    }

    async fn claim_loop(&self) {
        let inner = &self.inner;
        let mut stopping = inner.stopping.subscribe();
        let mut last_prune = tokio::time::Instant::now();
        loop {
            if *stopping.borrow() {
                return;
            }
            let permit = tokio::select! {
                permit = inner.permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
                _ = stopping.changed() => return,
            };
            inner.claiming.fetch_add(1, Ordering::SeqCst);
            let claimed = inner.store.claim(&inner.config.owner, inner.config.lease).await;
            if let Ok(Some(claimed)) = claimed {
                self.spawn(claimed, permit);
                inner.claiming.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            inner.claiming.fetch_sub(1, Ordering::SeqCst);
            if let Err(error) = claimed {
                tracing::warn!("{error}; trying again");
            }
            drop(permit);
            if let Ok(waiting) = inner.store.waiting().await {
                super::metrics::queue_depth(usize::try_from(waiting).unwrap_or(usize::MAX));
            }
            if last_prune.elapsed() > PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                if let Err(error) = inner.store.prune(REMEMBER_FOR).await {
                    tracing::warn!("{error}");
                }
            }
            tokio::select! {
                () = inner.wake.notified() => {},
                () = tokio::time::sleep(inner.config.poll) => {},
                _ = stopping.changed() => return,
            }
        }
    }

    fn spawn(&self, claimed: Claimed, permit: OwnedSemaphorePermit) {
        let queue = self.clone();
        super::metrics::jobs_running(self.inner.running.fetch_add(1, Ordering::SeqCst) + 1);
        tokio::spawn(async move {
            queue.run(claimed).await;
            drop(permit);
            super::metrics::jobs_running(queue.inner.running.fetch_sub(1, Ordering::SeqCst).saturating_sub(1));
            queue.inner.ended.notify_waiters();
            // The lane may have a waiting job now.
            queue.inner.wake.notify_one();
        });
    }

    /// Runs one job; every log line written meanwhile carries the job's repository, pull request, head,
    /// delivery and attempt (a span; in JSON logs under `span`).
    async fn run(&self, claimed: Claimed) {
        let (pull, head) = match &claimed.job.event {
            Event::Review { pull, head_sha, .. } => (*pull, Some(head_sha.as_str())),
            Event::Comment { pull, .. } => (Some(*pull), None),
            Event::Installation { .. } => (None, None),
        };
        // Every field was checked when the event was read, and the delivery key is at most 71 characters.
        let span = tracing::info_span!(
            "job",
            job = claimed.id,
            repo = %claimed.job.lane.repo,
            pull,
            head,
            delivery = claimed.delivery.as_deref(),
            attempt = claimed.attempt,
        );
        self.run_in_span(claimed).instrument(span).await;
    }

    async fn run_in_span(&self, claimed: Claimed) {
        let inner = &self.inner;
        let (id, owner, lease) = (claimed.id, inner.config.owner.clone(), inner.config.lease);
        let cancel = claimed.cancel.clone();
        let store = inner.store.clone();
        let record_owner = owner.clone();
        let control = Control {
            cancel: cancel.clone(),
            record: Box::new(move |run| {
                let (store, owner) = (store.clone(), record_owner.clone());
                Box::pin(async move {
                    if let Err(error) = store.record_check_run(id, &owner, run).await {
                        tracing::warn!(job = id, run, "{error}");
                    }
                })
            }),
        };
        let heartbeat = async {
            let mut unreachable_since: Option<tokio::time::Instant> = None;
            loop {
                tokio::time::sleep(lease / 3).await;
                match inner.store.renew(id, &owner, lease).await {
                    Ok(Lease::Held { cancel: asked }) => {
                        unreachable_since = None;
                        if asked {
                            cancel.cancel();
                        }
                    }
                    Ok(Lease::Lost) => return HeartbeatEnd::Lost,
                    Err(error) => {
                        // Past the lease another replica may hold the job once the store is back: never post.
                        let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                        tracing::warn!(job = id, "{error}");
                        if since.elapsed() >= lease {
                            return HeartbeatEnd::StoreUnreachable;
                        }
                    }
                }
            }
        };
        let mut interrupt = inner.interrupt.subscribe();
        let interrupted = async move {
            let _ = interrupt.wait_for(|stop| *stop).await;
        };
        let process = inner.processor.process(claimed, control);
        tokio::pin!(process);
        tokio::select! {
            () = &mut process => {
                if let Err(error) = inner.store.finish(id, &owner).await {
                    tracing::warn!(job = id, "{error}");
                }
            }
            end = heartbeat => match end {
                HeartbeatEnd::Lost => {
                    cancel.cancel();
                    tracing::warn!(job = id, "the job's lease was lost; another replica runs it");
                }
                HeartbeatEnd::StoreUnreachable => {
                    // Nobody else can take the job while the store is down: the job goes on to its end
                    // without posting, so its check run says why instead of staying in progress. Once the
                    // store is back, the job's lapsed lease lets a replica review it again.
                    cancel.store_unreachable();
                    tracing::error!(job = id, "the job store did not answer for a whole lease; not posting");
                    process.await;
                }
            },
            () = interrupted => {
                cancel.cancel();
                if let Err(error) = inner.store.hand_back(id, &owner).await {
                    tracing::warn!(job = id, "{error}");
                }
            }
        }
    }

    /// Stops taking jobs, lets the running ones finish until `deadline`, hands the rest back, and
    /// completes the check runs of jobs nobody else will run within `orphans_within`.
    pub async fn shutdown(&self, deadline: Duration, orphans_within: Duration) {
        let inner = &self.inner;
        inner.stopping.send_replace(true);
        let finished = tokio::time::timeout(deadline, async {
            while self.running() > 0 {
                let ended = inner.ended.notified();
                if self.running() == 0 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), ended).await;
            }
        })
        .await;
        if finished.is_err() {
            tracing::warn!(running = self.running(), "shutdown deadline reached; handing the running jobs back");
            inner.interrupt.send_replace(true);
            while self.running() > 0 {
                let ended = inner.ended.notified();
                if self.running() == 0 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), ended).await;
            }
        }
        let orphans = inner.store.orphans().await;
        if orphans.is_empty() {
            return;
        }
        tracing::info!(jobs = orphans.len(), "completing the check runs of jobs left unrun");
        let told = async {
            for orphan in orphans {
                inner.processor.interrupted(orphan).await;
            }
        };
        if tokio::time::timeout(orphans_within, told).await.is_err() {
            tracing::warn!("could not tell GitHub about every interrupted job in time");
        }
    }
}

/// Why a job's lease renewal stopped.
enum HeartbeatEnd {
    /// Another replica holds the job now.
    Lost,
    /// The store did not answer for a whole lease.
    StoreUnreachable,
}

/// How often old delivery ids and reviewed heads are forgotten, and after how long.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const REMEMBER_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
