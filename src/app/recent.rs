//! A bounded memory of recently seen items (delivery ids, reviewed heads): remembers the last N,
//! forgets the oldest first.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

pub struct Recent<T> {
    capacity: usize,
    seen: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: Hash + Eq + Clone> Recent<T> {
    pub fn new(capacity: usize) -> Recent<T> {
        Recent { capacity: capacity.max(1), seen: HashSet::new(), order: VecDeque::new() }
    }

    /// Records `item`; false when it was already remembered.
    pub fn first_time(&mut self, item: T) -> bool {
        if self.seen.contains(&item) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(item.clone());
        self.order.push_back(item);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_items_and_forgets_the_oldest() {
        let mut recent = Recent::new(3);
        assert!(recent.first_time("a"));
        assert!(!recent.first_time("a"));
        for item in ["b", "c", "d"] {
            assert!(recent.first_time(item));
        }
        assert_eq!(recent.len(), 3);
        assert!(recent.first_time("a"), "the oldest was forgotten");
        assert!(!recent.first_time("d"));
    }
}
