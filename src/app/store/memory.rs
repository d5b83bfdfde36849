//! The in-process job store: the default for a single replica. Jobs live in this process only: a crash
//! loses the waiting ones, and at shutdown the jobs left are reported as orphans (their check runs are
//! completed as interrupted). Several replicas need the PostgreSQL store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Cancel, Claimed, Enqueued, JobId, Lease, Store, StoreError};
use crate::app::queue::{Job, Lane};
use crate::app::recent::Recent;

/// How many reviewed heads and delivery ids are remembered.
const REMEMBERED: usize = 10_000;

struct Held {
    claimed: Claimed,
    owner: Option<String>,
    until: Instant,
}

#[derive(Default)]
struct LaneState {
    running: Option<Held>,
    waiting: Option<Claimed>,
}

struct State {
    next: JobId,
    lanes: HashMap<Lane, LaneState>,
    /// Lanes in the order their waiting job arrived, for fair claiming.
    order: Vec<Lane>,
    reviewed: Recent<(String, String)>,
    deliveries: Recent<String>,
    budgets: HashMap<u64, (Instant, u32)>,
}

pub struct MemoryStore {
    state: Mutex<State>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            state: Mutex::new(State {
                next: 1,
                lanes: HashMap::new(),
                order: Vec::new(),
                reviewed: Recent::new(REMEMBERED),
                deliveries: Recent::new(REMEMBERED),
                budgets: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn same_owner(held: &Held, owner: &str) -> bool {
    held.owner.as_deref() == Some(owner)
}

impl Store for MemoryStore {
    async fn enqueue(&self, job: Job, delivery: Option<String>) -> Result<Enqueued, StoreError> {
        let mut state = self.state();
        if let Some(delivery) = &delivery
            && !state.deliveries.first_time(delivery.clone())
        {
            return Ok(Enqueued::Redelivery);
        }
        if let Some(head) = job.head() {
            let first = state.reviewed.first_time((job.lane.repo.clone(), head.to_string()));
            if !first && !job.is_requested() {
                return Ok(Enqueued::Dropped);
            }
        }
        let id = state.next;
        state.next += 1;
        let lane_key = job.lane.clone();
        let lane = state.lanes.entry(lane_key.clone()).or_default();
        if let Some(running) = &lane.running {
            if job.head().is_some() && running.claimed.job.head() == job.head() {
                return Ok(Enqueued::Dropped);
            }
            if job.head().is_some() {
                running.claimed.cancel.cancel();
            }
        }
        let had_waiting = lane.waiting.is_some();
        lane.waiting = Some(Claimed { id, job, check_run: None, attempt: 0, cancel: Cancel::default(), delivery });
        if !had_waiting {
            state.order.push(lane_key);
        }
        Ok(Enqueued::Queued)
    }

    async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        // A job handed back (or whose holder stopped renewing) first: it may have a check run in progress.
        for lane in state.lanes.values_mut() {
            if let Some(held) = &mut lane.running
                && held.until <= now
            {
                held.owner = Some(owner.to_string());
                held.until = now + lease;
                held.claimed.attempt += 1;
                return Ok(Some(held.claimed.clone()));
            }
        }
        let position = state
            .order
            .iter()
            .position(|lane| state.lanes.get(lane).is_some_and(|l| l.running.is_none() && l.waiting.is_some()));
        let Some(position) = position else { return Ok(None) };
        let lane_key = state.order.remove(position);
        let Some(lane) = state.lanes.get_mut(&lane_key) else { return Ok(None) };
        let Some(mut claimed) = lane.waiting.take() else { return Ok(None) };
        claimed.attempt += 1;
        lane.running = Some(Held { claimed: claimed.clone(), owner: Some(owner.to_string()), until: now + lease });
        Ok(Some(claimed))
    }

    async fn renew(&self, id: JobId, owner: &str, lease: Duration) -> Result<Lease, StoreError> {
        let mut state = self.state();
        for lane in state.lanes.values_mut() {
            if let Some(held) = &mut lane.running
                && held.claimed.id == id
            {
                if !same_owner(held, owner) {
                    return Ok(Lease::Lost);
                }
                held.until = Instant::now() + lease;
                return Ok(Lease::Held { cancel: held.claimed.cancel.is_cancelled() });
            }
        }
        Ok(Lease::Lost)
    }

    async fn record_check_run(&self, id: JobId, owner: &str, run: u64) -> Result<(), StoreError> {
        let mut state = self.state();
        for lane in state.lanes.values_mut() {
            if let Some(held) = &mut lane.running
                && held.claimed.id == id
                && same_owner(held, owner)
            {
                held.claimed.check_run = Some(run);
            }
        }
        Ok(())
    }

    async fn finish(&self, id: JobId, owner: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        let mut emptied = None;
        for (key, lane) in state.lanes.iter_mut() {
            if lane.running.as_ref().is_some_and(|h| h.claimed.id == id && same_owner(h, owner)) {
                lane.running = None;
                if lane.waiting.is_none() {
                    emptied = Some(key.clone());
                }
                break;
            }
        }
        if let Some(key) = emptied {
            state.lanes.remove(&key);
        }
        Ok(())
    }

    async fn hand_back(&self, id: JobId, owner: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        for lane in state.lanes.values_mut() {
            if let Some(held) = &mut lane.running
                && held.claimed.id == id
                && same_owner(held, owner)
            {
                held.owner = None;
                held.until = Instant::now();
            }
        }
        Ok(())
    }

    async fn waiting(&self) -> Result<u64, StoreError> {
        Ok(self.state().lanes.values().filter(|l| l.waiting.is_some()).count() as u64)
    }

    async fn take_posting(&self, installation: u64, per_minute: u32) -> Result<Option<Duration>, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        let (start, used) = state.budgets.entry(installation).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(60) {
            (*start, *used) = (now, 0);
        }
        *used += 1;
        Ok((*used > per_minute.max(1)).then(|| Duration::from_secs(60).saturating_sub(now.duration_since(*start))))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn prune(&self, _age: Duration) -> Result<(), StoreError> {
        // Bounded by count instead (`Recent`).
        Ok(())
    }

    async fn orphans(&self) -> Vec<Claimed> {
        let mut state = self.state();
        let mut left = Vec::new();
        for (_, lane) in state.lanes.drain() {
            left.extend(lane.running.filter(|h| h.owner.is_none()).map(|h| h.claimed));
            left.extend(lane.waiting);
        }
        state.order.clear();
        left
    }
}
