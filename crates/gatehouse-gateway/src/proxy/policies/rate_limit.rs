//! `rate-limit`: at most `requests` per `window`, per artifact or per API key; 429 with
//! `RateLimit-*` and `Retry-After` beyond.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `RateLimit-*` response headers (made once: a name from a string is parsed each time).
pub static RATELIMIT_LIMIT: http::HeaderName = http::HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: http::HeaderName = http::HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: http::HeaderName = http::HeaderName::from_static("ratelimit-reset");

use http::{HeaderMap, HeaderValue};

use gatehouse_core::policy::{LimitScope, RateLimitParams};

use crate::quota_store::{CountMode, QuotaStore, SharedCounter, SharedNames, StoreUnreachable};

/// A fixed-window limiter.
#[derive(Debug)]
pub struct RateLimit {
    limit: u64,
    window: Duration,
    per_key: bool,
    epoch: Instant,
    /// The shared window, lock-free: window index (high 24 bits, wrapping) and count (low 40).
    shared: AtomicU64,
    /// Per-key counts of the current window only. Every key's window starts at the same
    /// instant, so when the window moves on the whole map is stale: it is replaced, never swept.
    keyed: Mutex<KeyedWindow>,
    /// Where the count is shared with other gateways (`--rate-limit-store`); the local counts
    /// above then only decide while the store is unreachable.
    shared_store: Option<SharedCounter>,
}

/// The per-key counts of one window.
#[derive(Debug, Default)]
struct KeyedWindow {
    index: u64,
    counts: HashMap<Arc<str>, u64>,
}

const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// The outcome of one check, with what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window resets (at least 1).
    pub reset_secs: u64,
}

impl RateLimit {
    /// A limiter of `limit` requests per `window`.
    pub fn new(limit: u64, window: Duration, per_key: bool) -> Self {
        Self {
            limit,
            window,
            per_key,
            epoch: Instant::now(),
            shared: AtomicU64::new(0),
            keyed: Mutex::default(),
            shared_store: None,
        }
    }

    /// Counts in `counter` too (shared with other gateways).
    pub fn sharing(mut self, counter: Option<SharedCounter>) -> Self {
        self.shared_store = counter;
        self
    }

    /// Counts one request of `key` (when limiting per key): in the shared store when there is
    /// one and it answers, locally otherwise (or `StoreUnreachable` for a limit failing closed).
    pub async fn decide(
        &self,
        key: Option<&Arc<str>>,
        now: Instant,
    ) -> Result<Decision, StoreUnreachable> {
        let Some(shared) = &self.shared_store else {
            return Ok(self.check(key, now));
        };
        let caller = key.filter(|_| self.per_key).map(|k| &**k);
        let window_ms = self.window.as_millis().max(1) as u64;
        let answer = shared
            .store
            .count(
                &shared.key_of(caller),
                self.limit,
                window_ms,
                1,
                CountMode::Hit,
            )
            .await;
        // The local count follows this gateway's traffic either way, to decide on if the store
        // goes away.
        let local = self.check(key, now);
        match answer {
            Some(c) => Ok(Decision {
                allowed: c.allowed,
                limit: self.limit,
                remaining: self.limit.saturating_sub(c.count),
                reset_secs: c.reset_ms.div_ceil(1000).max(1),
            }),
            None => shared.fell_back().map(|()| local),
        }
    }

    /// Counts one request (of `key` when limiting per key) at `now`.
    pub fn check(&self, key: Option<&Arc<str>>, now: Instant) -> Decision {
        let window_ms = self.window.as_millis().max(1) as u64;
        let elapsed = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let index = elapsed / window_ms;
        let reset_ms = window_ms - elapsed % window_ms;
        let (allowed, count) = match (self.per_key, key) {
            (true, Some(k)) => self.bump_keyed(k, index),
            _ => self.bump_shared(index),
        };
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit.saturating_sub(count),
            reset_secs: reset_ms.div_ceil(1000).max(1),
        }
    }

    /// Counts one request of `key`. The lock covers one map lookup; a stale window's map is
    /// dropped after the lock is released.
    fn bump_keyed(&self, key: &Arc<str>, index: u64) -> (bool, u64) {
        let mut stale = None;
        let result = {
            let mut w = self.keyed.lock().unwrap_or_else(|e| e.into_inner());
            if w.index != index {
                stale = Some(std::mem::take(&mut w.counts));
                w.index = index;
            }
            let count = w.counts.entry(key.clone()).or_insert(0);
            if *count < self.limit {
                *count += 1;
                (true, *count)
            } else {
                (false, *count)
            }
        };
        drop(stale);
        result
    }

    /// Counts one request in the shared window without a lock.
    fn bump_shared(&self, index: u64) -> (bool, u64) {
        let tag = (index & 0xFF_FFFF) << COUNT_BITS;
        let limit = self.limit.min(COUNT_MASK);
        let mut current = self.shared.load(Ordering::Relaxed);
        loop {
            let count = if current & !COUNT_MASK == tag {
                current & COUNT_MASK
            } else {
                0
            };
            if count >= limit {
                return (false, count);
            }
            match self.shared.compare_exchange_weak(
                current,
                tag | (count + 1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (true, count + 1),
                Err(actual) => current = actual,
            }
        }
    }

    /// Removes `RateLimit-Limit`, `-Remaining` and `-Reset` (an upstream's, before the
    /// gateway's own are written).
    pub fn remove(h: &mut HeaderMap) {
        if h.is_empty() {
            return;
        }
        h.remove(&RATELIMIT_LIMIT);
        h.remove(&RATELIMIT_REMAINING);
        h.remove(&RATELIMIT_RESET);
    }

    /// Gives `RateLimit-Limit`, `-Remaining` and `-Reset` with their values to `f`.
    pub fn each(d: &Decision, mut f: impl FnMut(&http::HeaderName, &[u8])) {
        let mut number = itoa::Buffer::new();
        f(&RATELIMIT_LIMIT, number.format(d.limit).as_bytes());
        f(&RATELIMIT_REMAINING, number.format(d.remaining).as_bytes());
        f(&RATELIMIT_RESET, number.format(d.reset_secs).as_bytes());
    }

    /// Writes `RateLimit-Limit`, `-Remaining` and `-Reset`.
    pub fn headers(d: &Decision, h: &mut HeaderMap) {
        // The three numbers in one buffer: one allocation rather than one per value.
        let mut digits = bytes::BytesMut::with_capacity(64);
        let mut number = itoa::Buffer::new();
        let mut lens = [0; 3];
        for (len, n) in lens.iter_mut().zip([d.limit, d.remaining, d.reset_secs]) {
            let text = number.format(n);
            *len = text.len();
            digits.extend_from_slice(text.as_bytes());
        }
        let mut digits = digits.freeze();
        // Decimal digits are always a valid value.
        let [limit, remaining, reset] = lens.map(|len| {
            HeaderValue::from_maybe_shared(digits.split_to(len))
                .unwrap_or(HeaderValue::from_static("0"))
        });
        h.insert(RATELIMIT_LIMIT.clone(), limit);
        h.insert(RATELIMIT_REMAINING.clone(), remaining);
        h.insert(RATELIMIT_RESET.clone(), reset);
    }
}

/// Limiters by scope and parameters, so that a route-table rebuild keeps their counts.
#[derive(Default)]
pub struct RateLimiters {
    by_scope: Mutex<HashMap<String, Arc<RateLimit>>>,
    /// The shared store limits count in, when the gateway has one.
    store: Option<Arc<QuotaStore>>,
    /// How counts are named in the shared store.
    pub names: SharedNames,
}

impl RateLimiters {
    /// The limiter of `scope` for a `rate-limit` policy, created on first use.
    pub fn for_policy(&self, scope: &str, params: &RateLimitParams) -> Arc<RateLimit> {
        let per_key = params.per == Some(LimitScope::Key);
        let window = params.window.duration();
        self.get(scope, params.requests, window, per_key, params.fail_closed)
    }

    /// Limiters counting in `store` as well (`--rate-limit-store`).
    pub fn with_store(store: Option<Arc<QuotaStore>>) -> Self {
        Self {
            by_scope: Mutex::default(),
            store,
            names: SharedNames::default(),
        }
    }

    /// The shared store, if any.
    pub fn store(&self) -> Option<&Arc<QuotaStore>> {
        self.store.as_ref()
    }

    /// The limiter of `scope` allowing `limit` per `window`, created on first use; the same
    /// scope and numbers give the same limiter (and its counts) back. In the shared store its
    /// count is named by the same scope and numbers, so every gateway holding the artifact
    /// counts in one place.
    pub fn get(
        &self,
        scope: &str,
        limit: u64,
        window: Duration,
        per_key: bool,
        fail_closed: bool,
    ) -> Arc<RateLimit> {
        let name = format!("{scope}|{limit}|{}|{per_key}", window.as_millis());
        let id = format!("{name}|{fail_closed}");
        let mut map = self.by_scope.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id)
            .or_insert_with(|| {
                let counter = self
                    .store
                    .as_ref()
                    .map(|s| SharedCounter::new(s, &self.names.of(&name), fail_closed));
                Arc::new(RateLimit::new(limit, window, per_key).sharing(counter))
            })
            .clone()
    }

    /// Forgets limiters whose scope is not in `live` (removed artifacts).
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        let mut map = self.by_scope.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| live(k.split('|').next().unwrap_or_default()));
        self.names.retain(live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::error::ProxyError;
    use http::StatusCode;

    #[test]
    fn allows_the_limit_then_refuses_until_the_window_resets() {
        let rl = RateLimit::new(3, Duration::from_secs(10), false);
        let t0 = rl.epoch;
        for i in 0..3 {
            let d = rl.check(None, t0 + Duration::from_millis(i));
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
        }
        let d = rl.check(None, t0 + Duration::from_secs(4));
        assert!(!d.allowed);
        assert_eq!(d.reset_secs, 6);
        let r = ProxyError::RateLimited(d).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "6");
        assert_eq!(r.headers()["ratelimit-remaining"], "0");
        assert!(
            rl.check(None, t0 + Duration::from_secs(10)).allowed,
            "a new window"
        );
    }

    #[test]
    fn concurrent_requests_never_exceed_the_limit() {
        let rl = Arc::new(RateLimit::new(1000, Duration::from_secs(3600), false));
        let now = rl.epoch + Duration::from_millis(5);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let rl = rl.clone();
                std::thread::spawn(move || (0..600).filter(|_| rl.check(None, now).allowed).count())
            })
            .collect();
        let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(allowed, 1000);
    }

    #[test]
    fn per_key_limits_count_each_key_apart() {
        let rl = RateLimit::new(1, Duration::from_secs(60), true);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let now = Instant::now();
        assert!(rl.check(Some(&a), now).allowed);
        assert!(!rl.check(Some(&a), now).allowed);
        assert!(rl.check(Some(&b), now).allowed);
    }

    #[test]
    fn registry_keeps_state_for_the_same_scope_and_params() {
        let reg = RateLimiters::default();
        let params = |requests: u64| RateLimitParams {
            requests,
            window: "1m".parse().unwrap(),
            per: None,
            fail_closed: false,
        };
        let a = reg.for_policy("api-1|op", &params(1));
        let b = reg.for_policy("api-1|op", &params(1));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &reg.for_policy("api-1|op", &params(2))));
        reg.retain(|scope| scope != "api-1");
        assert!(!Arc::ptr_eq(&a, &reg.for_policy("api-1|op", &params(1))));
    }

    #[test]
    fn per_key_counts_start_afresh_in_each_window() {
        let rl = RateLimit::new(1, Duration::from_secs(10), true);
        let t0 = rl.epoch;
        let keys: Vec<Arc<str>> = (0..1000).map(|i| i.to_string().into()).collect();
        for k in &keys {
            assert!(rl.check(Some(k), t0).allowed);
            assert!(!rl.check(Some(k), t0).allowed);
        }
        let later = t0 + Duration::from_secs(10);
        assert!(rl.check(Some(&keys[0]), later).allowed);
        let w = rl.keyed.lock().unwrap();
        assert_eq!(w.counts.len(), 1, "the old window's keys are gone");
    }
}
