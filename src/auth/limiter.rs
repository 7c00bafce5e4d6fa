//! Login brute-force limits: more than 5 failures for one username, or 20 from
//! one client address, within 15 minutes, and further attempts get 429 until
//! the oldest counted failure leaves the window.
//!
//! Memory is bounded: each map holds at most `MAX_KEYS` keys; when full, the
//! key whose latest failure is oldest is evicted. A sprayer of usernames is
//! itself held back by the per-address limit.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_FAILURES_PER_USERNAME: usize = 5;
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
const MAX_KEYS: usize = 10_000;

struct Failures<K> {
    limit: usize,
    map: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn new(limit: usize) -> Self {
        Failures { limit, map: HashMap::new() }
    }

    /// `Err(wait)` when the key is over its limit.
    fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        let Some(q) = self.map.get_mut(key) else { return Ok(()) };
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() < self.limit {
            return Ok(());
        }
        // Blocked until enough failures age out to bring the count under the limit.
        let release = q[q.len() - self.limit] + WINDOW;
        Err(release.saturating_duration_since(now).max(Duration::from_secs(1)))
    }

    fn record(&mut self, key: &K, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= MAX_KEYS {
            self.prune(now);
            if self.map.len() >= MAX_KEYS {
                let oldest = self.map.iter().min_by_key(|(_, q)| q.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.map.remove(&k);
                }
            }
        }
        let q = self.map.entry(key.clone()).or_default();
        q.push_back(now);
        // Only the newest `limit` failures matter for the decision.
        while q.len() > self.limit {
            q.pop_front();
        }
    }

    fn prune(&mut self, now: Instant) {
        self.map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
    }
}

pub struct LoginLimiter {
    inner: Mutex<(Failures<String>, Failures<IpAddr>)>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            inner: Mutex::new((Failures::new(MAX_FAILURES_PER_USERNAME), Failures::new(MAX_FAILURES_PER_ADDRESS))),
        }
    }
}

/// The key an address is limited under: one IPv6 host usually holds a whole
/// /64, so counting its addresses one by one would let it try 2^64 times.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl LoginLimiter {
    /// `Err(wait)` when either the username or the address is blocked.
    pub fn check(&self, username: &String, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let by_name = g.0.check(username, now);
        let by_addr = g.1.check(&address_key(addr), now);
        match (by_name, by_addr) {
            (Ok(()), Ok(())) => Ok(()),
            (a, b) => Err(a.err().unwrap_or_default().max(b.err().unwrap_or_default())),
        }
    }

    pub fn record_failure(&self, username: &String, addr: IpAddr, now: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.record(username, now);
        g.1.record(&address_key(addr), now);
    }

    pub fn prune(&self, now: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.prune(now);
        g.1.prune(now);
    }

    #[cfg(test)]
    fn keys(&self) -> (usize, usize) {
        let g = self.inner.lock().unwrap();
        (g.0.map.len(), g.1.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn username_limit_and_window() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let u = "alice".to_string();
        for i in 0..5 {
            assert!(l.check(&u, A, t0).is_ok(), "attempt {i}");
            l.record_failure(&u, A, t0 + Duration::from_secs(i));
        }
        let wait = l.check(&u, A, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, WINDOW - Duration::from_secs(10));
        assert!(l.check(&u, A, t0 + WINDOW - Duration::from_secs(1)).is_err());
        assert!(l.check(&u, A, t0 + WINDOW).is_ok(), "the oldest failure has left the window");
        assert!(l.check(&"bob".to_string(), A, t0).is_ok(), "other names are unaffected");
    }

    #[test]
    fn address_limit_spans_usernames() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..20 {
            l.record_failure(&format!("user{i}"), A, t0);
        }
        assert!(l.check(&"fresh".to_string(), A, t0).is_err());
        let other = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
        assert!(l.check(&"fresh".to_string(), other, t0).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_per_64_prefix() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let base: u128 = 0x2001_0db8_0000_0001 << 64;
        for i in 0..20u128 {
            l.record_failure(&format!("user{i}"), IpAddr::V6((base + i).into()), t0);
        }
        assert!(l.check(&"fresh".to_string(), IpAddr::V6((base + 999).into()), t0).is_err(), "same /64");
        let elsewhere = IpAddr::V6(((base + (1 << 64)) + 1).into());
        assert!(l.check(&"fresh".to_string(), elsewhere, t0).is_ok(), "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), A, "v4-mapped is the v4 address");
    }

    #[test]
    fn memory_is_bounded_under_spraying() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 500) {
            let addr = IpAddr::V6(std::net::Ipv6Addr::from((i as u128) << 64));
            l.record_failure(&format!("u{i}"), addr, t0 + Duration::from_millis(i as u64));
        }
        let (names, addrs) = l.keys();
        assert!(names <= MAX_KEYS && addrs <= MAX_KEYS, "{names} {addrs}");
        l.prune(t0 + WINDOW + Duration::from_secs(60));
        assert_eq!(l.keys(), (0, 0));
    }
}
