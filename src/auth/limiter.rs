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

struct Entry {
    /// Failures (and attempts still in progress) inside the window, oldest first.
    times: VecDeque<Instant>,
    /// Already refused since it last passed: only the first refusal of a
    /// block is worth an audit row.
    refused: bool,
}

struct Failures<K> {
    limit: usize,
    map: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn new(limit: usize) -> Self {
        Failures { limit, map: HashMap::new() }
    }

    fn check(&mut self, key: &K, now: Instant) -> Result<(), Blocked> {
        let Some(e) = self.map.get_mut(key) else { return Ok(()) };
        while e.times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            e.times.pop_front();
        }
        if e.times.len() < self.limit {
            e.refused = false;
            return Ok(());
        }
        // Blocked until enough failures age out to bring the count under the limit.
        let release = e.times[e.times.len() - self.limit] + WINDOW;
        let first = !std::mem::replace(&mut e.refused, true);
        Err(Blocked { wait: release.saturating_duration_since(now).max(Duration::from_secs(1)), first })
    }

    /// Only called after `check` passed, so the entry stays within its limit.
    fn record(&mut self, key: &K, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= MAX_KEYS {
            self.prune(now);
            if self.map.len() >= MAX_KEYS {
                let oldest = self.map.iter().min_by_key(|(_, e)| e.times.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.map.remove(&k);
                }
            }
        }
        let e = self.map.entry(key.clone()).or_insert_with(|| Entry { times: VecDeque::new(), refused: false });
        e.times.push_back(now);
    }

    fn forget(&mut self, key: &K, at: Instant) {
        if let Some(e) = self.map.get_mut(key) {
            if let Some(i) = e.times.iter().rposition(|t| *t == at) {
                e.times.remove(i);
            }
            if e.times.is_empty() {
                self.map.remove(key);
            }
        }
    }

    fn prune(&mut self, now: Instant) {
        self.map.retain(|_, e| e.times.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
    }
}

/// A refused attempt: how long until one is allowed again, and whether this
/// is the first refusal of this block (later ones are not audited, so a
/// blocked client cannot grow the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub wait: Duration,
    pub first: bool,
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

/// The key a username is limited under: case-insensitive like the store, and
/// bounded (no user has a longer name, so longer ones may share a key).
fn username_key(username: &str) -> String {
    username.chars().take(super::USERNAME_MAX).collect::<String>().to_lowercase()
}

/// An attempt in progress, already counted as a failure so that concurrent
/// guesses cannot slip past the limit while bcrypt runs. Dropping it keeps
/// the failure; [`Attempt::succeeded`] takes it back.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    name: String,
    addr: IpAddr,
    at: Instant,
}

impl Attempt<'_> {
    pub fn succeeded(self) {
        let mut g = self.limiter.lock();
        g.0.forget(&self.name, self.at);
        g.1.forget(&self.addr, self.at);
    }
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Failures<String>, Failures<IpAddr>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refused when the username or the address is over its limit; otherwise
    /// the attempt is counted until it succeeds.
    pub fn begin(&self, username: &str, addr: IpAddr, now: Instant) -> Result<Attempt<'_>, Blocked> {
        let (name, addr) = (username_key(username), address_key(addr));
        let mut g = self.lock();
        // Check both, so each notes its own refusal.
        match (g.0.check(&name, now), g.1.check(&addr, now)) {
            (Ok(()), Ok(())) => {}
            (Err(a), Err(b)) => return Err(Blocked { wait: a.wait.max(b.wait), first: a.first || b.first }),
            (Err(blocked), _) | (_, Err(blocked)) => return Err(blocked),
        }
        g.0.record(&name, now);
        g.1.record(&addr, now);
        Ok(Attempt { limiter: self, name, addr, at: now })
    }

    pub fn prune(&self, now: Instant) {
        let mut g = self.lock();
        g.0.prune(now);
        g.1.prune(now);
    }

    #[cfg(test)]
    fn keys(&self) -> (usize, usize) {
        let g = self.lock();
        (g.0.map.len(), g.1.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    /// A failed attempt.
    fn fail(l: &LoginLimiter, name: &str, addr: IpAddr, at: Instant) {
        drop(l.begin(name, addr, at).expect("not blocked"));
    }

    #[test]
    fn username_limit_and_window() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..5 {
            fail(&l, "alice", A, t0 + Duration::from_secs(i));
        }
        let blocked = l.begin("Alice", A, t0 + Duration::from_secs(10)).err().expect("blocked, whatever the case");
        assert_eq!(blocked, Blocked { wait: WINDOW - Duration::from_secs(10), first: true });
        let again = l.begin("alice", A, t0 + WINDOW - Duration::from_secs(1)).err().expect("still blocked");
        assert!(!again.first, "only the first refusal of a block is reported as first");
        assert!(l.begin("alice", A, t0 + WINDOW).is_ok(), "the oldest failure has left the window");
        assert!(l.begin("bob", A, t0).is_ok(), "other names are unaffected");
    }

    #[test]
    fn attempts_in_flight_count_and_success_gives_them_back() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        // Five guesses running at once (bcrypt is slow): a sixth is refused
        // before any of them has finished.
        let running: Vec<_> = (0..5).map(|i| l.begin("carol", A, t0 + Duration::from_millis(i)).unwrap()).collect();
        assert!(l.begin("carol", A, t0 + Duration::from_millis(9)).is_err());
        for a in running {
            a.succeeded();
        }
        assert!(l.begin("carol", A, t0 + Duration::from_millis(10)).is_ok(), "successes are not failures");
    }

    #[test]
    fn overlong_usernames_share_one_bounded_key() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let long = "x".repeat(100_000);
        for i in 0..5 {
            fail(&l, &format!("{long}{i}"), IpAddr::V4(std::net::Ipv4Addr::from(i as u32)), t0);
        }
        assert!(l.begin(&long, IpAddr::V4(std::net::Ipv4Addr::from(99)), t0).is_err());
        assert!(l.lock().0.map.keys().all(|k| k.len() <= crate::auth::USERNAME_MAX));
    }

    #[test]
    fn address_limit_spans_usernames() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..20 {
            fail(&l, &format!("user{i}"), A, t0);
        }
        assert!(l.begin("fresh", A, t0).is_err());
        let other = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
        assert!(l.begin("fresh", other, t0).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_per_64_prefix() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let base: u128 = 0x2001_0db8_0000_0001 << 64;
        for i in 0..20u128 {
            fail(&l, &format!("user{i}"), IpAddr::V6((base + i).into()), t0);
        }
        assert!(l.begin("fresh", IpAddr::V6((base + 999).into()), t0).is_err(), "same /64");
        let elsewhere = IpAddr::V6(((base + (1 << 64)) + 1).into());
        assert!(l.begin("fresh", elsewhere, t0).is_ok(), "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), A, "v4-mapped is the v4 address");
    }

    #[test]
    fn memory_is_bounded_under_spraying() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 500) {
            let addr = IpAddr::V6(std::net::Ipv6Addr::from((i as u128) << 64));
            fail(&l, &format!("u{i}"), addr, t0 + Duration::from_millis(i as u64));
        }
        let (names, addrs) = l.keys();
        assert!(names <= MAX_KEYS && addrs <= MAX_KEYS, "{names} {addrs}");
        l.prune(t0 + WINDOW + Duration::from_secs(60));
        assert_eq!(l.keys(), (0, 0));
    }
}
