//! The shared quota store (`--rate-limit-store redis://HOST:PORT/DB`): `rate-limit`,
//! `token-rate-limit` and plan quotas counted in Redis, so that every gateway using the same
//! Redis spends one count.
//!
//! Each count is one Lua script run (atomic on the server) that reads the time from Redis
//! itself (`TIME`), so clocks of the gateways may disagree without moving the windows. A count is
//! one hash per counter (`w`: window index, `c`: count) that expires after its window.
//!
//! When Redis does not answer (refused, closed, or no answer within [`CALL_TIMEOUT`]) the store
//! is marked unreachable: the line is logged once, `/status` and
//! `gatehouse_gateway_rate_limit_store_up` say so, callers count on their local counters (or
//! answer 503 for a policy with `failClosed`), and a background task reconnects (0.5 s doubling to
//! 5 s). Once it answers again, counting goes back to Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};

/// Longest wait for one count before the store is taken as unreachable.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Prefix of every key the gateway writes.
pub const KEY_PREFIX: &str = "gatehouse:quota:";

/// ARGV: limit, window (ms), amount, mode. `hit` adds the amount while the count is under the
/// limit; `peek` only reads; `add` adds unconditionally. Answers {allowed, count, ms to reset}.
const COUNT_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local mode = ARGV[4]
local index = math.floor(now / window)
local reset = window - (now % window)
local count = 0
if tonumber(redis.call('HGET', KEYS[1], 'w') or '-1') == index then
  count = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
end
if mode == 'peek' then
  if count < limit then return {1, count, reset} end
  return {0, count, reset}
end
if mode == 'hit' and count >= limit then return {0, count, reset} end
count = count + amount
redis.call('HSET', KEYS[1], 'w', index, 'c', count)
redis.call('PEXPIRE', KEYS[1], reset + 1000)
return {1, count, reset}
"#;

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(COUNT_SCRIPT));

/// How a count treats the amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMode {
    /// Adds it while under the limit (a request).
    Hit,
    /// Only reads (may a request start?).
    Peek,
    /// Adds it unconditionally (tokens a finished exchange used).
    Add,
}

impl CountMode {
    fn as_str(self) -> &'static str {
        match self {
            CountMode::Hit => "hit",
            CountMode::Peek => "peek",
            CountMode::Add => "add",
        }
    }
}

/// What Redis answered for one count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCount {
    pub allowed: bool,
    /// The count after this call.
    pub count: u64,
    /// Milliseconds until the window resets (Redis's clock).
    pub reset_ms: u64,
}

/// Why the store setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QuotaStoreError {
    #[error("rate-limit store: {0}")]
    Url(String),
}

/// A policy with `failClosed` met an unreachable store: the request is answered 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the shared rate-limit store is unreachable and this limit fails closed")]
pub struct StoreUnreachable;

/// Where one limit counts in the shared store.
#[derive(Debug, Clone)]
pub struct SharedCounter {
    pub store: Arc<QuotaStore>,
    /// The counter's key, under [`KEY_PREFIX`].
    pub key: String,
    /// Answer 503 rather than count locally when the store is unreachable.
    pub fail_closed: bool,
}

impl SharedCounter {
    /// The counter of `name` in `store`.
    pub fn new(store: &Arc<QuotaStore>, name: &str, fail_closed: bool) -> Self {
        Self {
            store: store.clone(),
            key: format!("{KEY_PREFIX}{name}"),
            fail_closed,
        }
    }

    /// The key of `caller`'s own count (limits per key or subscription).
    pub fn key_of(&self, caller: Option<&str>) -> std::borrow::Cow<'_, str> {
        match caller {
            Some(c) => format!("{}:{c}", self.key).into(),
            None => self.key.as_str().into(),
        }
    }

    /// Counts a decision taken locally because the store did not answer.
    pub fn fell_back(&self) -> Result<(), StoreUnreachable> {
        let outcome = if self.fail_closed { "refused" } else { "local" };
        metrics::counter!("gatehouse_gateway_rate_limit_store_fallbacks_total", "outcome" => outcome)
            .increment(1);
        if self.fail_closed {
            Err(StoreUnreachable)
        } else {
            Ok(())
        }
    }
}

/// The control plane's uuid of each artifact the gateway holds by its own id, so that a count
/// is named the same on every gateway holding the artifact (each gateway has its own id for
/// it). Local artifacts keep the gateway's id: their counts are the gateway's own.
#[derive(Debug, Default)]
pub struct SharedNames {
    uuids: Mutex<std::collections::HashMap<String, String>>,
}

impl SharedNames {
    /// Records that artifact `id` is `uuid` on the control plane.
    pub fn record(&self, id: &str, uuid: Option<&str>) {
        let mut map = self.uuids.lock().unwrap_or_else(|e| e.into_inner());
        match uuid {
            Some(u) => map.insert(id.to_owned(), u.to_owned()),
            None => map.remove(id),
        };
    }

    /// The shared name of a count whose local name is `{id}|rest`.
    pub fn of(&self, local: &str) -> String {
        let (id, rest) = local.split_once('|').unwrap_or((local, ""));
        let map = self.uuids.lock().unwrap_or_else(|e| e.into_inner());
        format!("{}|{rest}", map.get(id).map_or(id, String::as_str))
    }

    /// Forgets the artifacts `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut map = self.uuids.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|id, _| keep(id));
    }
}

/// The connection's state, for `/status`.
#[derive(Debug, Default)]
struct Health {
    /// When the current state began (Unix ms).
    since_ms: u64,
    last_error: Option<String>,
}

/// The Redis the quotas are counted in.
#[derive(Debug)]
pub struct QuotaStore {
    client: redis::Client,
    /// `redis://host:port/db`, without credentials.
    display: String,
    connection: ArcSwapOption<MultiplexedConnection>,
    up: AtomicBool,
    reconnecting: AtomicBool,
    health: Mutex<Health>,
    /// Where the reconnect task and token additions run.
    runtime: tokio::runtime::Handle,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Checks a `redis://` URL and gives it back without credentials.
pub fn check_url(url: &str) -> Result<(redis::Client, String), QuotaStoreError> {
    let bad = |why: &str| QuotaStoreError::Url(format!("'{}' {why}", redact(url)));
    if !url.starts_with("redis://") {
        return Err(bad(
            "is not a redis://HOST:PORT/DB address (TLS and Unix sockets are not supported)",
        ));
    }
    let client = redis::Client::open(url).map_err(|e| bad(&format!("cannot be used: {e}")))?;
    let info = client.get_connection_info();
    let display = format!("redis://{}/{}", info.addr, info.redis.db);
    Ok((client, display))
}

/// `url` with any password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

impl QuotaStore {
    /// Connects to `url`, waiting for the first attempt; an unreachable Redis is no error (the
    /// gateway counts locally and keeps trying), a malformed address is.
    pub async fn connect(url: &str) -> Result<Arc<Self>, QuotaStoreError> {
        let (client, display) = check_url(url)?;
        let store = Arc::new(Self {
            client,
            display,
            connection: ArcSwapOption::empty(),
            up: AtomicBool::new(false),
            reconnecting: AtomicBool::new(true),
            health: Mutex::new(Health {
                since_ms: now_ms(),
                last_error: None,
            }),
            runtime: tokio::runtime::Handle::current(),
        });
        metrics::gauge!("gatehouse_gateway_rate_limit_store_up").set(0.0);
        match store.open().await {
            Ok(c) => store.mark_up(c),
            Err(e) => {
                tracing::warn!(store = %store.display, error = %e,
                    "rate-limit store unreachable at start: counting locally until it answers \
                     (policies with failClosed answer 503)");
                store.set_error(e);
                tokio::spawn(store.clone().reconnect());
            }
        }
        Ok(store)
    }

    /// Whether the last call was answered.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Counts `amount` on `key` (a name under [`KEY_PREFIX`]) in a `window_ms` window of at most
    /// `limit`; `None` when the store is unreachable (the caller decides locally).
    pub async fn count(
        self: &Arc<Self>,
        key: &str,
        limit: u64,
        window_ms: u64,
        amount: u64,
        mode: CountMode,
    ) -> Option<SharedCount> {
        if !self.is_up() {
            return None;
        }
        let mut connection = MultiplexedConnection::clone(&*self.connection.load_full()?);
        let mut call = SCRIPT.key(key);
        call.arg(limit)
            .arg(window_ms.max(1))
            .arg(amount)
            .arg(mode.as_str());
        let answer = tokio::time::timeout(
            CALL_TIMEOUT,
            call.invoke_async::<(u8, u64, u64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, count, reset_ms))) => Some(SharedCount {
                allowed: allowed == 1,
                count,
                reset_ms,
            }),
            Ok(Err(e)) => {
                self.mark_down(e.to_string());
                None
            }
            Err(_) => {
                self.mark_down(format!("no answer within {} ms", CALL_TIMEOUT.as_millis()));
                None
            }
        }
    }

    /// Adds `amount` in the background (tokens counted when a response ends, maybe outside an
    /// async context).
    pub fn add_later(self: &Arc<Self>, key: String, limit: u64, window_ms: u64, amount: u64) {
        let store = self.clone();
        self.runtime.spawn(async move {
            store
                .count(&key, limit, window_ms, amount, CountMode::Add)
                .await
        });
    }

    /// What `/status` says of the store.
    pub fn status(&self) -> Value {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        json!({
            "kind": "redis",
            "url": self.display,
            "reachable": self.is_up(),
            "since": time::OffsetDateTime::from_unix_timestamp_nanos(health.since_ms as i128 * 1_000_000)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "lastError": health.last_error,
        })
    }

    async fn open(&self) -> Result<MultiplexedConnection, String> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT);
        let attempt = async {
            let mut c = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING").query_async::<String>(&mut c).await?;
            Ok::<_, redis::RedisError>(c)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, attempt).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer to PING".into()),
        }
    }

    fn set_error(&self, error: String) {
        metrics::counter!("gatehouse_gateway_rate_limit_store_errors_total").increment(1);
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.last_error = Some(error);
    }

    fn mark_up(&self, connection: MultiplexedConnection) {
        self.connection.store(Some(Arc::new(connection)));
        {
            let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
            h.since_ms = now_ms();
        }
        self.up.store(true, Ordering::Release);
        self.reconnecting.store(false, Ordering::Release);
        metrics::gauge!("gatehouse_gateway_rate_limit_store_up").set(1.0);
        tracing::info!(store = %self.display, "rate-limit store reachable: quotas are shared");
    }

    /// Takes the store as unreachable; the first caller to see it logs and starts reconnecting.
    fn mark_down(self: &Arc<Self>, error: String) {
        self.set_error(error.clone());
        if !self.up.swap(false, Ordering::AcqRel) {
            return;
        }
        metrics::gauge!("gatehouse_gateway_rate_limit_store_up").set(0.0);
        {
            let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
            h.since_ms = now_ms();
        }
        tracing::warn!(store = %self.display, %error,
            "rate-limit store unreachable: counting locally until it answers again \
             (policies with failClosed answer 503)");
        if !self.reconnecting.swap(true, Ordering::AcqRel) {
            self.runtime.spawn(self.clone().reconnect());
        }
    }

    /// Retries until Redis answers, then goes back to it.
    async fn reconnect(self: Arc<Self>) {
        let mut delay = Duration::from_millis(500);
        loop {
            tokio::time::sleep(delay).await;
            match self.open().await {
                Ok(c) => return self.mark_up(c),
                Err(e) => self.set_error(e),
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::llm::token_limit::{Caller, TokenLimits};
    use crate::proxy::policies::RateLimiters;
    use std::time::Instant;

    /// A store on the shared test Redis (`GATEHOUSE_TEST_REDIS_URL`), or `None` (skipped).
    async fn shared() -> Option<Arc<QuotaStore>> {
        let Ok(url) = std::env::var("GATEHOUSE_TEST_REDIS_URL") else {
            eprintln!("skipped: GATEHOUSE_TEST_REDIS_URL is not set (.ci/run sets it)");
            return None;
        };
        let store = QuotaStore::connect(&url).await.unwrap();
        assert!(store.is_up(), "{}", store.status());
        Some(store)
    }

    async fn forget(store: &QuotaStore, pattern: &str) {
        let mut c = MultiplexedConnection::clone(&store.connection.load_full().unwrap());
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut c)
            .await
            .unwrap();
        for k in keys {
            let _: i64 = redis::cmd("DEL").arg(k).query_async(&mut c).await.unwrap();
        }
    }

    #[tokio::test]
    async fn hits_stop_at_the_limit_peeks_only_read_and_adds_always_count() {
        let Some(store) = shared().await else { return };
        let key = format!("{KEY_PREFIX}unit-{}", uuid::Uuid::new_v4().simple());
        for n in 1..=3 {
            let c = store
                .count(&key, 3, 60_000, 1, CountMode::Hit)
                .await
                .unwrap();
            assert_eq!((c.allowed, c.count), (true, n));
            assert!((1..=60_000).contains(&c.reset_ms));
        }
        let c = store
            .count(&key, 3, 60_000, 1, CountMode::Hit)
            .await
            .unwrap();
        assert_eq!((c.allowed, c.count), (false, 3), "refused, not counted");
        let c = store
            .count(&key, 3, 60_000, 0, CountMode::Peek)
            .await
            .unwrap();
        assert_eq!((c.allowed, c.count), (false, 3));
        let c = store
            .count(&key, 3, 60_000, 5, CountMode::Add)
            .await
            .unwrap();
        assert_eq!(c.count, 8, "added past the limit");
        forget(&store, &key).await;
    }

    #[tokio::test]
    async fn a_new_window_starts_from_zero_on_redis_time() {
        let Some(store) = shared().await else { return };
        let key = format!("{KEY_PREFIX}unit-{}", uuid::Uuid::new_v4().simple());
        let first = store.count(&key, 1, 300, 1, CountMode::Hit).await.unwrap();
        assert!(first.allowed);
        tokio::time::sleep(Duration::from_millis(first.reset_ms + 20)).await;
        let next = store.count(&key, 1, 300, 1, CountMode::Hit).await.unwrap();
        assert_eq!((next.allowed, next.count), (true, 1));
        forget(&store, &key).await;
    }

    #[tokio::test]
    async fn two_gateways_share_rate_limits_and_token_limits() {
        let Some(a) = shared().await else { return };
        let b = shared().await.unwrap();
        let scope = format!("art-{}|all", uuid::Uuid::new_v4().simple());
        let (la, lb) = (
            RateLimiters::with_store(Some(a.clone())),
            RateLimiters::with_store(Some(b.clone())),
        );
        let (ra, rb) = (
            la.get(&scope, 3, Duration::from_secs(60), false, false),
            lb.get(&scope, 3, Duration::from_secs(60), false, false),
        );
        let now = Instant::now();
        assert!(ra.decide(None, now).await.unwrap().allowed);
        assert!(rb.decide(None, now).await.unwrap().allowed);
        assert_eq!(ra.decide(None, now).await.unwrap().remaining, 0);
        assert!(
            !rb.decide(None, now).await.unwrap().allowed,
            "one count for both"
        );

        let params = serde_json::from_value(serde_json::json!(
            {"tokens": 100, "window": "1m", "per": "key"}
        ))
        .unwrap();
        let (ta, tb) = (
            TokenLimits::with_store(Some(a.clone())).get(&scope, &params),
            TokenLimits::with_store(Some(b.clone())).get(&scope, &params),
        );
        let caller = Caller {
            key: Some("key-1".into()),
            subscription: None,
        };
        ta.add(&caller, 70, 40, now);
        let spent = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let d = tb.decide(&caller, now).await.unwrap();
                if !d.allowed {
                    return d;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("tokens used on one gateway count on the other");
        assert_eq!(spent.remaining, 0);
        let other = Caller {
            key: Some("key-2".into()),
            subscription: None,
        };
        assert!(tb.decide(&other, now).await.unwrap().allowed, "per key");
        forget(
            &a,
            &format!("{KEY_PREFIX}{}*", scope.split('|').next().unwrap()),
        )
        .await;
    }

    #[tokio::test]
    async fn an_unreachable_store_is_no_error_and_says_why() {
        // Port 1 on loopback refuses connections.
        let store = QuotaStore::connect("redis://127.0.0.1:1/0").await.unwrap();
        assert!(!store.is_up());
        assert!(store.count("k", 1, 1000, 1, CountMode::Hit).await.is_none());
        let status = store.status();
        assert_eq!(status["reachable"], false);
        assert!(status["lastError"].is_string(), "{status}");
        let closed = SharedCounter::new(&store, "k", true);
        assert_eq!(closed.fell_back(), Err(StoreUnreachable));
        assert_eq!(SharedCounter::new(&store, "k", false).fell_back(), Ok(()));
    }

    #[test]
    fn addresses_are_checked_and_shown_without_password() {
        assert!(check_url("http://x:1").is_err());
        assert!(check_url("rediss://x:1/0").is_err());
        let (_, shown) = check_url("redis://:hunter2@127.0.0.1:6379/3").unwrap();
        assert_eq!(shown, "redis://127.0.0.1:6379/3");
        let e = check_url("redis://:hunter2@[bad/0")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
