//! Login brute-force limits: more than 5 failures for one username, or 20 from
//! one client address, within 15 minutes, and further attempts get 429 until
//! the oldest counted failure leaves the window.
//!
//! Attempts in progress (bcrypt takes ~0.25 s) are counted too: while the
//! failures so far plus the attempts in flight reach a limit, a new attempt
//! waits for one of them to finish instead of running. So concurrent guesses
//! cannot slip past the limit, and concurrent correct logins (scripts that
//! start together) are delayed, never refused.
//!
//! Memory is bounded: each map holds at most `MAX_KEYS` keys; when full, the
//! key whose latest failure is oldest is evicted. A sprayer of usernames is
//! itself held back by the per-address limit.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_FAILURES_PER_USERNAME: usize = 5;
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
const MAX_KEYS: usize = 10_000;

#[derive(Default)]
struct Entry {
    /// Failures inside the window, oldest first.
    failures: VecDeque<Instant>,
    in_flight: usize,
    /// Already refused since it last passed: only the first refusal of a
    /// block is worth an audit row.
    refused: bool,
}

/// Why an attempt may not run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Blocked(Blocked),
    /// Under the limit, but not with the attempts in flight: wait for one.
    Busy,
}

/// A refused attempt: how long until one is allowed again, and whether this
/// is the first refusal of this block (later ones are not audited, so a
/// blocked client cannot grow the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub wait: Duration,
    pub first: bool,
}

struct Failures<K> {
    limit: usize,
    map: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn new(limit: usize) -> Self {
        Failures { limit, map: HashMap::new() }
    }

    fn check(&mut self, key: &K, now: Instant) -> Result<(), Refusal> {
        let Some(e) = self.map.get_mut(key) else { return Ok(()) };
        while e.failures.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            e.failures.pop_front();
        }
        if e.failures.len() >= self.limit {
            // Blocked until enough failures age out to bring the count under the limit.
            let release = e.failures[e.failures.len() - self.limit] + WINDOW;
            let first = !std::mem::replace(&mut e.refused, true);
            return Err(Refusal::Blocked(Blocked {
                wait: release.saturating_duration_since(now).max(Duration::from_secs(1)),
                first,
            }));
        }
        e.refused = false;
        if e.failures.len() + e.in_flight >= self.limit {
            return Err(Refusal::Busy);
        }
        Ok(())
    }

    fn start(&mut self, key: &K, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= MAX_KEYS {
            self.prune(now);
            if self.map.len() >= MAX_KEYS {
                let oldest = self.map.iter().min_by_key(|(_, e)| e.failures.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.map.remove(&k);
                }
            }
        }
        self.map.entry(key.clone()).or_default().in_flight += 1;
    }

    fn finish(&mut self, key: &K, at: Instant, failed: bool) {
        // The entry may have been evicted meanwhile: then there is nothing to count.
        let Some(e) = self.map.get_mut(key) else { return };
        e.in_flight = e.in_flight.saturating_sub(1);
        if failed {
            e.failures.push_back(at);
        }
        if e.failures.is_empty() && e.in_flight == 0 {
            self.map.remove(key);
        }
    }

    fn prune(&mut self, now: Instant) {
        self.map.retain(|_, e| e.in_flight > 0 || e.failures.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
    }
}

pub struct LoginLimiter {
    inner: Mutex<(Failures<String>, Failures<IpAddr>)>,
    /// Woken whenever an attempt finishes.
    finished: Notify,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            inner: Mutex::new((Failures::new(MAX_FAILURES_PER_USERNAME), Failures::new(MAX_FAILURES_PER_ADDRESS))),
            finished: Notify::new(),
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

/// An attempt in progress. Dropping it counts a failure;
/// [`Attempt::succeeded`] does not.
pub struct Attempt {
    limiter: Arc<LoginLimiter>,
    name: String,
    addr: IpAddr,
    at: Instant,
    failed: bool,
}

impl Attempt {
    pub fn succeeded(mut self) {
        self.failed = false;
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        {
            let mut g = self.limiter.lock();
            g.0.finish(&self.name, self.at, self.failed);
            g.1.finish(&self.addr, self.at, self.failed);
        }
        self.limiter.finished.notify_waiters();
    }
}

impl LoginLimiter {
    fn lock(&self) -> MutexGuard<'_, (Failures<String>, Failures<IpAddr>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an attempt now, or says why not.
    pub fn begin(self: &Arc<Self>, username: &str, addr: IpAddr, now: Instant) -> Result<Attempt, Refusal> {
        let (name, addr) = (username_key(username), address_key(addr));
        let mut g = self.lock();
        // Check both, so each notes its own refusal.
        match (g.0.check(&name, now), g.1.check(&addr, now)) {
            (Ok(()), Ok(())) => {}
            (Err(Refusal::Blocked(a)), Err(Refusal::Blocked(b))) => {
                return Err(Refusal::Blocked(Blocked { wait: a.wait.max(b.wait), first: a.first || b.first }));
            }
            (Err(Refusal::Blocked(b)), _) | (_, Err(Refusal::Blocked(b))) => return Err(Refusal::Blocked(b)),
            _ => return Err(Refusal::Busy),
        }
        g.0.start(&name, now);
        g.1.start(&addr, now);
        Ok(Attempt { limiter: self.clone(), name, addr, at: now, failed: true })
    }

    /// Starts an attempt, waiting while the attempts in flight fill the
    /// limit; refused only when the failures alone reach it.
    pub async fn admit(self: &Arc<Self>, username: &str, addr: IpAddr) -> Result<Attempt, Blocked> {
        loop {
            // Registered before the check, so a finish in between is not missed.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            match self.begin(username, addr, Instant::now()) {
                Ok(attempt) => return Ok(attempt),
                Err(Refusal::Blocked(b)) => return Err(b),
                Err(Refusal::Busy) => finished.await,
            }
        }
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

    fn limiter() -> Arc<LoginLimiter> {
        Arc::new(LoginLimiter::default())
    }

    /// A failed attempt.
    fn fail(l: &Arc<LoginLimiter>, name: &str, addr: IpAddr, at: Instant) {
        drop(l.begin(name, addr, at).expect("not refused"));
    }

    fn blocked(r: Result<Attempt, Refusal>) -> Blocked {
        match r {
            Err(Refusal::Blocked(b)) => b,
            Err(Refusal::Busy) => panic!("busy, not blocked"),
            Ok(_) => panic!("admitted, not blocked"),
        }
    }

    #[test]
    fn username_limit_and_window() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..5 {
            fail(&l, "alice", A, t0 + Duration::from_secs(i));
        }
        let b = blocked(l.begin("Alice", A, t0 + Duration::from_secs(10)));
        assert_eq!(b, Blocked { wait: WINDOW - Duration::from_secs(10), first: true }, "whatever the case");
        let again = blocked(l.begin("alice", A, t0 + WINDOW - Duration::from_secs(1)));
        assert!(!again.first, "only the first refusal of a block is reported as first");
        assert!(l.begin("alice", A, t0 + WINDOW).is_ok(), "the oldest failure has left the window");
        assert!(l.begin("bob", A, t0).is_ok(), "other names are unaffected");
    }

    #[test]
    fn attempts_in_flight_fill_the_limit_and_success_gives_them_back() {
        let l = limiter();
        let t0 = Instant::now();
        // Five guesses running at once (bcrypt is slow): a sixth must wait.
        let running: Vec<_> = (0..5).map(|i| l.begin("carol", A, t0 + Duration::from_millis(i)).unwrap()).collect();
        assert_eq!(l.begin("carol", A, t0 + Duration::from_millis(9)).err(), Some(Refusal::Busy));
        for a in running {
            a.succeeded();
        }
        assert!(l.begin("carol", A, t0 + Duration::from_millis(10)).is_ok(), "successes are not failures");
    }

    #[tokio::test]
    async fn concurrent_attempts_wait_for_a_slot_and_only_failures_block() {
        let l = limiter();
        // Fifty correct logins at once all get through, five at a time.
        let logins = (0..50).map(|_| {
            let l = l.clone();
            tokio::spawn(async move {
                let attempt = l.admit("dave", A).await.expect("never refused");
                tokio::time::sleep(Duration::from_millis(2)).await;
                attempt.succeeded();
            })
        });
        for h in futures_util::future::join_all(logins).await {
            h.unwrap();
        }
        // Fifty wrong ones at once: exactly five run, the rest are refused.
        let guesses = (0..50).map(|_| {
            let l = l.clone();
            tokio::spawn(async move {
                let attempt = l.admit("dave", A).await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
                drop(attempt);
                Ok::<(), Blocked>(())
            })
        });
        let ran =
            futures_util::future::join_all(guesses).await.into_iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
        assert_eq!(ran, MAX_FAILURES_PER_USERNAME);
    }

    #[test]
    fn overlong_usernames_share_one_bounded_key() {
        let l = limiter();
        let t0 = Instant::now();
        let long = "x".repeat(100_000);
        for i in 0..5 {
            fail(&l, &format!("{long}{i}"), IpAddr::V4(std::net::Ipv4Addr::from(i as u32)), t0);
        }
        blocked(l.begin(&long, IpAddr::V4(std::net::Ipv4Addr::from(99)), t0));
        assert!(l.lock().0.map.keys().all(|k| k.len() <= crate::auth::USERNAME_MAX));
    }

    #[test]
    fn address_limit_spans_usernames() {
        let l = limiter();
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
        let l = limiter();
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
        let l = limiter();
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
