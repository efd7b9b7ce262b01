//! Connection admission for a listener: at most so many connections open in total and from
//! one client address. A connection over either cap is refused before any byte of it is read;
//! an admitted one holds an [`Admitted`] ticket whose drop frees its place. The HTTP listener
//! and the SIP/TCP listeners use it (each with its own `max_connections` and
//! `max_connections_per_address`).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Open connections of one listener (or a group of listeners sharing caps).
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_address: usize,
    table: Mutex<Table>,
}

/// Open connections, in total and per address, and how many closed since last asked.
#[derive(Debug, Default)]
struct Table {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
    closed: usize,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Caps of `max_total` connections and `max_per_address` from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_total,
            max_per_address,
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> parking_lot::MutexGuard<'_, Table> {
        self.table.lock()
    }

    /// Counts a new connection from `ip`, or `None` when a cap is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut t = self.table();
        let from_ip = t.by_address.get(&ip).copied().unwrap_or(0);
        if t.total >= self.max_total || from_ip >= self.max_per_address {
            return None;
        }
        t.total += 1;
        t.by_address.insert(ip, from_ip + 1);
        Some(Admitted {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().total
    }

    /// Connections closed since the last call (for memory housekeeping after many closed).
    pub fn take_closed(&self) -> usize {
        std::mem::take(&mut self.table().closed)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut t = self.admission.table();
        t.total = t.total.saturating_sub(1);
        t.closed += 1;
        if let Some(n) = t.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.by_address.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_in_total_and_per_address_and_a_drop_frees_a_place() {
        let a = Admission::new(3, 2);
        let ip1: IpAddr = [192, 0, 2, 1].into();
        let ip2: IpAddr = [192, 0, 2, 2].into();
        let first = a.admit(ip1);
        let second = a.admit(ip1);
        assert!(first.is_some() && second.is_some());
        assert!(a.admit(ip1).is_none(), "per-address cap");
        let third = a.admit(ip2);
        assert!(third.is_some());
        assert!(a.admit([192, 0, 2, 3].into()).is_none(), "total cap");
        assert_eq!(a.open(), 3);
        drop(first);
        assert_eq!(a.open(), 2);
        assert!(a.admit(ip1).is_some(), "the freed place is taken again");
        assert_eq!(a.take_closed(), 2, "the first and the one just dropped");
        assert_eq!(a.take_closed(), 0);
        drop((second, third));
        assert_eq!(a.open(), 0);
        assert!(a.table().by_address.is_empty(), "no address left behind");
    }
}
