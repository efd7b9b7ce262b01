//! The last agent each customer talked to (by calling number), for Route Agent's "last called
//! agent". In memory and bounded: the oldest numbers are forgotten past the cap.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

/// Numbers remembered at most.
pub const CAPACITY: usize = 100_000;

/// Number → agent id of the last conversation.
#[derive(Debug, Default)]
pub struct LastAgents {
    inner: Mutex<(HashMap<String, String>, VecDeque<String>)>,
}

impl LastAgents {
    /// Remembers that `number` talked to `agent`.
    pub fn record(&self, number: &str, agent: &str) {
        if number.is_empty() {
            return;
        }
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        if map.insert(number.to_string(), agent.to_string()).is_none() {
            order.push_back(number.to_string());
            while order.len() > CAPACITY {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// The agent `number` last talked to.
    pub fn get(&self, number: &str) -> Option<String> {
        self.inner.lock().0.get(number).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_conversation_wins_and_the_map_is_bounded() {
        let l = LastAgents::default();
        l.record("+331", "alice");
        l.record("+331", "bob");
        assert_eq!(l.get("+331").as_deref(), Some("bob"));
        for i in 0..CAPACITY {
            l.record(&format!("n{i}"), "carol");
        }
        assert_eq!(l.get("+331"), None);
        assert_eq!(l.inner.lock().0.len(), CAPACITY);
    }
}
