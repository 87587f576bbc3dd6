//! Failed sign-ins, counted per name and per address in a window, so guessing passwords is
//! slow whoever and wherever the guesser is. In memory only; bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed sign-ins allowed per name, and per address, in [`WINDOW_SECS`].
const FAILURES_PER_NAME: u32 = 5;
const FAILURES_PER_ADDRESS: u32 = 20;
const WINDOW_SECS: u64 = 15 * 60;

/// Failed sign-ins in the current window, per name and per address.
#[derive(Default)]
pub struct Limits {
    by_name: Mutex<HashMap<String, (u32, u64)>>,
    by_address: Mutex<HashMap<IpAddr, (u32, u64)>>,
}

impl Limits {
    /// `Err` with how many seconds are left when `name` or `address` failed too often.
    pub fn check(&self, name: &str, address: IpAddr, now: u64) -> Result<(), u64> {
        let left = |failures: Option<&(u32, u64)>, max: u32| {
            failures
                .filter(|(n, since)| *n >= max && now < since + WINDOW_SECS)
                .map(|(_, since)| since + WINDOW_SECS - now)
        };
        let by_name = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        let by_address = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        match left(by_name.get(name), FAILURES_PER_NAME)
            .or_else(|| left(by_address.get(&address), FAILURES_PER_ADDRESS))
        {
            Some(secs) => Err(secs),
            None => Ok(()),
        }
    }

    pub fn failed(&self, name: &str, address: IpAddr, now: u64) {
        fn count<K: std::hash::Hash + Eq>(map: &mut HashMap<K, (u32, u64)>, key: K, now: u64) {
            // Bounded: old windows go before the table grows past this.
            if map.len() >= 100_000 {
                map.retain(|_, (_, since)| now < *since + WINDOW_SECS);
            }
            let entry = map.entry(key).or_insert((0, now));
            if now >= entry.1 + WINDOW_SECS {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
        count(
            &mut self.by_name.lock().unwrap_or_else(|p| p.into_inner()),
            name.to_owned(),
            now,
        );
        count(
            &mut self.by_address.lock().unwrap_or_else(|p| p.into_inner()),
            address,
            now,
        );
    }

    pub fn succeeded(&self, name: &str) {
        self.by_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_per_name_and_per_address() {
        let limits = Limits::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..FAILURES_PER_NAME {
            assert!(limits.check("alice", a, 100).is_ok());
            limits.failed("alice", a, 100);
        }
        assert_eq!(limits.check("alice", b, 160), Err(WINDOW_SECS - 60));
        assert!(limits.check("bob", b, 160).is_ok());
        assert!(
            limits.check("alice", a, 100 + WINDOW_SECS).is_ok(),
            "a new window"
        );
        for n in 0..FAILURES_PER_ADDRESS {
            limits.failed(&format!("u{n}"), b, 200);
        }
        assert!(
            limits.check("carol", b, 200).is_err(),
            "one address, many names"
        );
        limits.succeeded("alice");
        assert!(limits.check("alice", a, 150).is_ok());
    }
}
