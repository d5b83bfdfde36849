//! Where `kpath serve` keeps its jobs and what must survive a replica: the [`Store`] trait, with an
//! in-process implementation ([`memory::MemoryStore`], one replica) and a PostgreSQL one
//! ([`postgres::PgStore`], any number of replicas sharing one database).
//!
//! The contract, the same for both (tested against both by [`contract`]):
//! - **Lanes.** A job belongs to a lane: a pull request, or a head SHA when GitHub named no pull request,
//!   or one comment. A lane runs one job at a time and keeps at most one waiting job: a newer head
//!   replaces the waiting job and asks the running one to stop (its result would be stale); the head
//!   already running is not queued again.
//! - **Heads announced twice.** One push announces its head more than once (`pull_request.synchronize`,
//!   then `check_suite.requested`); a head already taken for review is not reviewed again unless someone
//!   asked (Re-run, a rerequest, `/kpath recheck`).
//! - **Deliveries.** A webhook delivery id is stored with its job, in the same step: a redelivery is
//!   dropped, and a delivery whose job could not be stored is not remembered (GitHub may redeliver it).
//! - **Leases.** A claimed job is held by one replica for a lease it renews. When the replica dies, the
//!   lease runs out and another replica takes the job over, with the check run the first one started,
//!   so the run is completed and no second run is created for that head.
//! - **Posting budget.** Content-creating requests to GitHub are counted per installation and minute,
//!   for all replicas together (GitHub's secondary rate limits).

pub mod memory;
pub mod postgres;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::queue::Job;

/// A stored job's id.
pub type JobId = i64;

/// Why the store could not do what was asked (the database is down, a query failed).
#[derive(Debug, thiserror::Error)]
#[error("the job store is unavailable: {0}")]
pub struct StoreError(pub String);

/// What became of an offered job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; a replica will run it.
    Queued,
    /// This delivery was stored before.
    Redelivery,
    /// Not needed: its head is already being reviewed or was reviewed, and nobody asked again.
    Dropped,
}

/// Set when a newer head made a job's result stale, or the job's lease was lost. A processor checks it
/// before posting.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    stop: Arc<AtomicBool>,
    /// The store stopped answering for a whole lease: the job must not post (another replica may take it
    /// over once the store is back), but its check run should say why rather than stay in progress.
    store_lost: Arc<AtomicBool>,
}

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn cancel(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Cancels because the job store could not be reached for a whole lease.
    pub fn store_unreachable(&self) {
        self.store_lost.store(true, Ordering::SeqCst);
        self.cancel();
    }

    pub fn is_store_unreachable(&self) -> bool {
        self.store_lost.load(Ordering::SeqCst)
    }
}

/// A job a replica holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: JobId,
    pub job: Job,
    /// The check run a previous holder started for this job (a take-over completes it).
    pub check_run: Option<u64>,
    /// How many times the job was claimed, this time included (more than one: taken over).
    pub attempt: u32,
    /// Raised when the job should stop (a newer head; the lease was lost).
    pub cancel: Cancel,
    /// The webhook delivery that stored the job (for its log lines), when there was one.
    pub delivery: Option<String>,
}

/// The state of a held lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still held; `cancel`: a newer head asked the job to stop.
    Held { cancel: bool },
    /// Another replica took the job over (this one was too slow to renew): stop without posting.
    Lost,
}

/// The job store. Every method is one short transaction; none waits for a job to run.
pub trait Store: Send + Sync + 'static {
    /// Stores `job` (durably, for the PostgreSQL store) before the webhook is answered. `delivery` is
    /// GitHub's delivery id (bounded by the caller), remembered with the job.
    fn enqueue(&self, job: Job, delivery: Option<String>) -> impl Future<Output = Result<Enqueued, StoreError>> + Send;

    /// The next job no replica holds whose lane is free (or whose holder's lease ran out), held by `owner`
    /// for `lease`.
    fn claim(&self, owner: &str, lease: Duration) -> impl Future<Output = Result<Option<Claimed>, StoreError>> + Send;

    /// Extends the lease of a held job.
    fn renew(&self, id: JobId, owner: &str, lease: Duration) -> impl Future<Output = Result<Lease, StoreError>> + Send;

    /// Records the check run started for a held job, so a take-over completes it.
    fn record_check_run(&self, id: JobId, owner: &str, run: u64)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The job is done: its lane is free for the waiting job.
    fn finish(&self, id: JobId, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives a held job back unfinished (shutting down): another replica may take it at once.
    fn hand_back(&self, id: JobId, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Jobs stored and not yet claimed.
    fn waiting(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts one content-creating request of `installation` against `per_minute`; how long to wait first
    /// when the budget of the current minute is spent.
    fn take_posting(
        &self,
        installation: u64,
        per_minute: u32,
    ) -> impl Future<Output = Result<Option<Duration>, StoreError>> + Send;

    /// Whether the store answers (for `/readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets delivery ids and reviewed heads older than `age`.
    fn prune(&self, age: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The jobs that nobody will run once this process stops (the in-process store's waiting and
    /// handed-back jobs); empty for a durable store, where they stay for the other replicas.
    fn orphans(&self) -> impl Future<Output = Vec<Claimed>> + Send;
}

#[cfg(test)]
pub mod contract;
