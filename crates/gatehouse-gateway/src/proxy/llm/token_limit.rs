//! `token-rate-limit`: tokens reported by responses are counted per fixed window, per artifact,
//! API key or subscription. A request is let through while the count is under the limit, so the
//! request that crosses it completes; later ones get 429 until the window moves on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_core::policy::{TokenCount, TokenLimitScope, TokenRateLimitParams};

use crate::proxy::policies::rate_limit::Decision;
use crate::quota_store::{CountMode, QuotaStore, SharedCounter, SharedNames, StoreUnreachable};

/// The counts of one window.
#[derive(Debug, Default)]
struct WindowCounts {
    index: u64,
    shared: u64,
    keyed: HashMap<Arc<str>, u64>,
}

/// One `token-rate-limit` policy's counts.
#[derive(Debug)]
pub struct TokenLimit {
    tokens: u64,
    window: Duration,
    count: TokenCount,
    per: TokenLimitScope,
    epoch: Instant,
    counts: Mutex<WindowCounts>,
    /// Where the count is shared with other gateways (`--rate-limit-store`); the local counts
    /// then only decide while the store is unreachable.
    shared: Option<SharedCounter>,
}

/// Who a request is counted for: its API key's id and its subscription's id, when it has them.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub key: Option<Arc<str>>,
    pub subscription: Option<Arc<str>>,
}

impl TokenLimit {
    /// A limit of `params.tokens` per `params.window`.
    pub fn new(params: &TokenRateLimitParams) -> Self {
        Self {
            tokens: params.tokens,
            window: params.window.duration(),
            count: params.count.unwrap_or_default(),
            per: params.per.unwrap_or_default(),
            epoch: Instant::now(),
            counts: Mutex::default(),
            shared: None,
        }
    }

    /// Whether `caller` may send a request at `now`: from the shared count when there is a
    /// store and it answers, from the local one otherwise (or `StoreUnreachable` for a limit
    /// failing closed).
    pub async fn decide(
        &self,
        caller: &Caller,
        now: Instant,
    ) -> Result<Decision, StoreUnreachable> {
        let local = self.check(caller, now);
        let Some(shared) = &self.shared else {
            return Ok(local);
        };
        let key = shared.key_of(self.caller_key(caller).map(|k| &**k));
        let window_ms = self.window.as_millis().max(1) as u64;
        match shared
            .store
            .count(&key, self.tokens, window_ms, 0, CountMode::Peek)
            .await
        {
            Some(c) => Ok(Decision {
                allowed: c.allowed,
                limit: self.tokens,
                remaining: self.tokens.saturating_sub(c.count),
                reset_secs: c.reset_ms.div_ceil(1000).max(1),
            }),
            None => shared.fell_back().map(|()| local),
        }
    }

    fn caller_key<'a>(&self, caller: &'a Caller) -> Option<&'a Arc<str>> {
        match self.per {
            TokenLimitScope::Artifact => None,
            TokenLimitScope::Key => caller.key.as_ref(),
            TokenLimitScope::Subscription => caller.subscription.as_ref(),
        }
    }

    /// The window index at `now` and the milliseconds until it ends.
    fn window_at(&self, now: Instant) -> (u64, u64) {
        let window_ms = self.window.as_millis().max(1) as u64;
        let elapsed = now.saturating_duration_since(self.epoch).as_millis() as u64;
        (elapsed / window_ms, window_ms - elapsed % window_ms)
    }

    /// Whether `caller` may send a request at `now`, with what the `RateLimit-*` headers say.
    pub fn check(&self, caller: &Caller, now: Instant) -> Decision {
        let (index, reset_ms) = self.window_at(now);
        let used = {
            let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            roll(&mut c, index);
            match self.caller_key(caller) {
                Some(k) => c.keyed.get(k).copied().unwrap_or(0),
                None => c.shared,
            }
        };
        Decision {
            allowed: used < self.tokens,
            limit: self.tokens,
            remaining: self.tokens.saturating_sub(used),
            reset_secs: reset_ms.div_ceil(1000).max(1),
        }
    }

    /// Adds the tokens of one finished exchange at `now`.
    pub fn add(&self, caller: &Caller, prompt: u64, completion: u64, now: Instant) {
        let n = match self.count {
            TokenCount::Prompt => prompt,
            TokenCount::Completion => completion,
            TokenCount::Total => prompt + completion,
        };
        if n == 0 {
            return;
        }
        if let Some(shared) = &self.shared {
            let key = shared.key_of(self.caller_key(caller).map(|k| &**k));
            let window_ms = self.window.as_millis().max(1) as u64;
            shared
                .store
                .add_later(key.into_owned(), self.tokens, window_ms, n);
        }
        let (index, _) = self.window_at(now);
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        roll(&mut c, index);
        match self.caller_key(caller) {
            Some(k) => *c.keyed.entry(k.clone()).or_insert(0) += n,
            None => c.shared += n,
        }
    }
}

/// Starts a new window's counts when `index` moved on.
fn roll(c: &mut WindowCounts, index: u64) {
    if c.index != index {
        c.index = index;
        c.shared = 0;
        c.keyed = HashMap::new();
    }
}

/// Token limits by scope and parameters, so that a route-table rebuild keeps their counts.
#[derive(Default)]
pub struct TokenLimits {
    by_scope: Mutex<HashMap<String, Arc<TokenLimit>>>,
    /// The shared store limits count in, when the gateway has one.
    store: Option<Arc<QuotaStore>>,
    /// How counts are named in the shared store.
    pub names: SharedNames,
}

impl TokenLimits {
    /// The limit of `scope` for `params`, created on first use; the same scope and parameters
    /// give the same counts back.
    pub fn get(&self, scope: &str, params: &TokenRateLimitParams) -> Arc<TokenLimit> {
        let name = format!(
            "{scope}|tokens|{}|{}|{:?}|{:?}",
            params.tokens,
            params.window.duration().as_millis(),
            params.count.unwrap_or_default(),
            params.per.unwrap_or_default()
        );
        let id = format!("{name}|{}", params.fail_closed);
        let mut map = self.by_scope.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id)
            .or_insert_with(|| {
                let mut limit = TokenLimit::new(params);
                limit.shared = self
                    .store
                    .as_ref()
                    .map(|s| SharedCounter::new(s, &self.names.of(&name), params.fail_closed));
                Arc::new(limit)
            })
            .clone()
    }

    /// Limits counting in `store` as well (`--rate-limit-store`).
    pub fn with_store(store: Option<Arc<QuotaStore>>) -> Self {
        Self {
            by_scope: Mutex::default(),
            store,
            names: SharedNames::default(),
        }
    }

    /// Forgets limits whose artifact (the scope's first part) is gone.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut map = self.by_scope.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|id, _| keep(id.split('|').next().unwrap_or_default()));
        self.names.retain(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: serde_json::Value) -> TokenRateLimitParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_crossing_request_completes_and_later_ones_wait_for_the_window() {
        let l = TokenLimit::new(&params(json!({"tokens": 100, "window": "1s"})));
        let t0 = Instant::now();
        let anyone = Caller::default();
        assert!(l.check(&anyone, t0).allowed);
        l.add(&anyone, 60, 30, t0);
        let d = l.check(&anyone, t0);
        assert!(d.allowed, "90 of 100 used");
        assert_eq!(d.remaining, 10);
        l.add(&anyone, 50, 50, t0);
        let d = l.check(&anyone, t0);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(l.check(&anyone, t0 + Duration::from_millis(1001)).allowed);
    }

    #[test]
    fn counts_only_the_named_tokens_per_key() {
        let l = TokenLimit::new(&params(
            json!({"tokens": 10, "window": "1m", "count": "completion", "per": "key"}),
        ));
        let now = Instant::now();
        let a = Caller {
            key: Some("a".into()),
            subscription: None,
        };
        let b = Caller {
            key: Some("b".into()),
            subscription: None,
        };
        l.add(&a, 1000, 10, now);
        assert!(!l.check(&a, now).allowed);
        assert!(l.check(&b, now).allowed, "b has its own count");
        l.add(&b, 1000, 9, now);
        assert!(l.check(&b, now).allowed, "prompt tokens do not count");
    }

    #[test]
    fn subscriptions_count_apart_and_callers_without_one_share_the_artifact_count() {
        let l = TokenLimit::new(&params(
            json!({"tokens": 10, "window": "1m", "per": "subscription"}),
        ));
        let now = Instant::now();
        let sub = |s: Option<&str>| Caller {
            key: Some("same-key".into()),
            subscription: s.map(Into::into),
        };
        l.add(&sub(Some("s1")), 6, 4, now);
        assert!(!l.check(&sub(Some("s1")), now).allowed);
        assert!(
            l.check(&sub(Some("s2")), now).allowed,
            "the key does not matter"
        );
        assert!(l.check(&sub(None), now).allowed);
        l.add(&sub(None), 10, 0, now);
        assert!(!l.check(&Caller::default(), now).allowed);
    }

    #[test]
    fn rebuilds_keep_the_counts() {
        let reg = TokenLimits::default();
        let p = params(json!({"tokens": 5, "window": "1m"}));
        let first = reg.get("art|all", &p);
        first.add(&Caller::default(), 5, 0, Instant::now());
        assert!(
            !reg.get("art|all", &p)
                .check(&Caller::default(), Instant::now())
                .allowed
        );
        reg.retain(|a| a != "art");
        assert!(
            reg.get("art|all", &p)
                .check(&Caller::default(), Instant::now())
                .allowed
        );
    }
}
