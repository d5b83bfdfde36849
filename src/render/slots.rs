//! Bounds how many renders run at once, across renderers: each render holds a [`Slot`] while its tool
//! runs, so the memory limits of `helm.memoryTotal` hold whatever mix of Helm and Kustomize renders runs.

use std::sync::{Condvar, Mutex, OnceLock};

/// A place among the renders running at once; freed when dropped.
pub struct Slot(());

static RUNNING: OnceLock<(Mutex<usize>, Condvar)> = OnceLock::new();

/// How many renders may run at once: as many as fit in `memory_total` at `memory_per_render` each, and no
/// more than `concurrency` (at least one).
pub fn limit(memory_total: u64, memory_per_render: u64, concurrency: usize) -> usize {
    let by_memory = memory_total / memory_per_render.max(1);
    usize::try_from(by_memory).unwrap_or(usize::MAX).min(concurrency).max(1)
}

impl Slot {
    /// Waits until fewer than `limit` renders run, then takes a place.
    pub fn acquire(limit: usize) -> Slot {
        let (lock, cv) = RUNNING.get_or_init(|| (Mutex::new(0), Condvar::new()));
        let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= limit {
            running = cv.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot(())
    }
}

impl Slot {
    /// Takes a place if fewer than `limit` renders run now; `None` (without waiting) otherwise.
    pub fn try_acquire(limit: usize) -> Option<Slot> {
        let (lock, _) = RUNNING.get_or_init(|| (Mutex::new(0), Condvar::new()));
        let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
        if *running >= limit {
            return None;
        }
        *running += 1;
        Some(Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((lock, cv)) = RUNNING.get() {
            let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
            *running = running.saturating_sub(1);
            cv.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_smaller_of_memory_and_concurrency() {
        assert_eq!(limit(768 << 20, 384 << 20, 8), 2);
        assert_eq!(limit(768 << 20, 384 << 20, 1), 1);
        assert_eq!(limit(0, 384 << 20, 8), 1);
        assert_eq!(limit(1 << 30, 0, 3), 3);
    }
}
