//! The endpoints of an upstream. A request gets the next one in a smooth weighted round robin
//! (computed once per pool, walked with one atomic counter); an endpoint that refuses
//! connections or times out is left out for a while (2 s, doubling with each failure in a row
//! up to 30 s), and one failing its active health check until it passes again. When every
//! endpoint is out, the one back soonest is tried: a pool never refuses by itself.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::routes::Upstream;
use super::upstream::UpstreamTls;

/// First ejection; each failure in a row doubles it.
const EJECT_BASE: Duration = Duration::from_secs(2);
/// Longest ejection.
const EJECT_MAX: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Per-endpoint series, for pools of several endpoints.
struct EndpointMetrics {
    ok: metrics::Counter,
    connect_errors: metrics::Counter,
    timeouts: metrics::Counter,
    available: metrics::Gauge,
}

/// One endpoint and its health.
pub struct Endpoint {
    pub upstream: Arc<Upstream>,
    ejected_until: AtomicU64,
    failures: AtomicU32,
    /// Failing its active health check.
    down: AtomicBool,
    metrics: Option<EndpointMetrics>,
}

impl Endpoint {
    fn out_until(&self, now: u64) -> Option<u64> {
        if self.down.load(Ordering::Relaxed) {
            return Some(u64::MAX);
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        (until > now).then_some(until)
    }

    fn set_available(&self, now: u64) {
        if let Some(m) = &self.metrics {
            m.available.set(if self.out_until(now).is_some() {
                0.0
            } else {
                1.0
            });
        }
    }
}

/// How an exchange with an endpoint went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered (any status).
    Answered,
    /// No connection could be made.
    ConnectFailed,
    /// The response headers did not come in time.
    TimedOut,
}

/// The endpoints of one upstream.
pub struct Pool {
    endpoints: Vec<Endpoint>,
    /// Endpoint indexes in smooth weighted round-robin order.
    schedule: Vec<u16>,
    next: AtomicUsize,
    /// TLS settings of its own (`tls`), for `https://` endpoints.
    tls: Option<Arc<UpstreamTls>>,
    /// Every endpoint is a plain `http://` one.
    plain_http: bool,
}

/// Smooth weighted round robin (as nginx does it): each weight's share, interleaved.
fn schedule(weights: &[u32]) -> Vec<u16> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += i64::from(*w);
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .unwrap_or((0, &0));
        current[best] -= total;
        out.push(best as u16);
    }
    out
}

impl Pool {
    /// A pool of one endpoint.
    pub fn single(upstream: Upstream) -> Self {
        Self::new("", vec![(upstream, 1, String::new())])
    }

    /// A pool of `(upstream, weight, url)`; `artifact` and the URLs label its series when
    /// there are several.
    pub fn new(artifact: &str, endpoints: Vec<(Upstream, u32, String)>) -> Self {
        let several = endpoints.len() > 1;
        let weights: Vec<u32> = endpoints.iter().map(|(_, w, _)| (*w).max(1)).collect();
        let plain_http = endpoints
            .iter()
            .all(|(u, _, _)| u.scheme == http::uri::Scheme::HTTP);
        let endpoints = endpoints
            .into_iter()
            .map(|(upstream, _, url)| {
                let metrics = several.then(|| {
                    let labels = [("artifact", artifact.to_owned()), ("endpoint", url)];
                    let counter = |outcome: &'static str| {
                        let mut l = labels.to_vec();
                        l.push(("outcome", outcome.to_owned()));
                        metrics::counter!("gatehouse_upstream_endpoint_requests_total", &l)
                    };
                    let m = EndpointMetrics {
                        ok: counter("answered"),
                        connect_errors: counter("connect_failed"),
                        timeouts: counter("timed_out"),
                        available: metrics::gauge!(
                            "gatehouse_upstream_endpoint_available",
                            &labels
                        ),
                    };
                    m.available.set(1.0);
                    m
                });
                Endpoint {
                    upstream: Arc::new(upstream),
                    ejected_until: AtomicU64::new(0),
                    failures: AtomicU32::new(0),
                    down: AtomicBool::new(false),
                    metrics,
                }
            })
            .collect();
        Self {
            endpoints,
            schedule: schedule(&weights),
            next: AtomicUsize::new(0),
            tls: None,
            plain_http,
        }
    }

    /// How many endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether the pool has no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The first endpoint.
    pub fn first(&self) -> &Arc<Upstream> {
        &self.endpoints[0].upstream
    }

    /// The endpoint for the next request, other than `tried` ones when any other is in.
    pub fn pick(&self, tried: &[usize]) -> usize {
        if self.endpoints.len() == 1 {
            return 0;
        }
        let now = now_ms();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.schedule.len();
        for k in 0..n {
            let i = self.schedule[(start + k) % n] as usize;
            if !tried.contains(&i) && self.endpoints[i].out_until(now).is_none() {
                return i;
            }
        }
        // Every endpoint is out (or tried): the one back soonest, untried first.
        (0..self.endpoints.len())
            .min_by_key(|i| {
                (
                    tried.contains(i),
                    self.endpoints[*i].out_until(now).unwrap_or(0),
                )
            })
            .unwrap_or(0)
    }

    /// The upstream of endpoint `i`.
    pub fn upstream(&self, i: usize) -> &Arc<Upstream> {
        &self.endpoints[i].upstream
    }

    /// Records how an exchange with endpoint `i` went.
    pub fn record(&self, i: usize, outcome: Outcome) {
        let e = &self.endpoints[i];
        if let Some(m) = &e.metrics {
            match outcome {
                Outcome::Answered => m.ok.increment(1),
                Outcome::ConnectFailed => m.connect_errors.increment(1),
                Outcome::TimedOut => m.timeouts.increment(1),
            }
        }
        if self.endpoints.len() == 1 {
            return;
        }
        let now = now_ms();
        match outcome {
            Outcome::Answered => {
                if e.failures.swap(0, Ordering::Relaxed) != 0 {
                    e.ejected_until.store(0, Ordering::Relaxed);
                    e.set_available(now);
                }
            }
            Outcome::ConnectFailed | Outcome::TimedOut => {
                let n = e.failures.fetch_add(1, Ordering::Relaxed).min(4);
                let out = (EJECT_BASE * 2u32.pow(n)).min(EJECT_MAX);
                e.ejected_until
                    .store(now + out.as_millis() as u64, Ordering::Relaxed);
                e.set_available(now);
                tracing::warn!(endpoint = %e.upstream.host.to_str().unwrap_or_default(), ejected_for = ?out, "an upstream endpoint failed; it is left out for a while");
            }
        }
    }

    /// The pool with TLS settings of its own.
    pub fn with_tls(mut self, tls: Option<Arc<UpstreamTls>>) -> Self {
        self.tls = tls;
        self
    }

    /// Whether every endpoint is a plain `http://` one.
    pub fn plain_http(&self) -> bool {
        self.plain_http
    }

    /// Its TLS settings, when it has its own.
    pub fn tls(&self) -> Option<&UpstreamTls> {
        self.tls.as_deref()
    }

    /// Checks every endpoint with `GET <path>` each `every` while the pool is in use (the task
    /// ends once the route table no longer holds it).
    pub fn start_health_checks(self: &Arc<Self>, path: String, every: Duration) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = Arc::downgrade(self);
        rt.spawn(health_checks(pool, path, every));
    }
}

async fn health_checks(pool: Weak<Pool>, path: String, every: Duration) {
    let tls = match pool.upgrade().and_then(|p| p.tls.clone()) {
        Some(t) => t.config.clone(),
        None => super::upstream::default_tls_config(),
    };
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(super::upstream::connector(every, tls));
    loop {
        let Some(p) = pool.upgrade() else { return };
        let checks = p.endpoints.iter().map(|e| {
            let u = &e.upstream;
            let uri = format!("{}://{}{}{}", u.scheme, u.authority, u.base_path, path);
            let client = &client;
            async move {
                let req = http::Request::get(uri)
                    .header(http::header::HOST, u.host.clone())
                    .body(Empty::new());
                let Ok(req) = req else { return false };
                matches!(
                    tokio::time::timeout(every, client.request(req)).await,
                    Ok(Ok(r)) if r.status().is_success() || r.status().is_redirection()
                )
            }
        });
        let results = futures::future::join_all(checks).await;
        let now = now_ms();
        for (e, healthy) in p.endpoints.iter().zip(results) {
            let was_down = e.down.swap(!healthy, Ordering::Relaxed);
            if was_down == healthy {
                e.set_available(now);
                tracing::info!(endpoint = %e.upstream.host.to_str().unwrap_or_default(), healthy, "upstream endpoint health changed");
            }
        }
        drop(p);
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(port: u16) -> (Upstream, u32, String) {
        let url = format!("http://127.0.0.1:{port}");
        (Upstream::parse(&url).unwrap(), 1, url)
    }

    #[test]
    fn weights_interleave() {
        assert_eq!(schedule(&[1, 1]), [0, 1]);
        assert_eq!(schedule(&[3, 1]), [0, 0, 1, 0]);
        // As nginx spreads weights 5, 1, 1: a a b a c a a, never five in a row.
        assert_eq!(schedule(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn a_failed_endpoint_is_left_out_then_tried_again() {
        let pool = Pool::new("t", vec![up(1), up(2)]);
        let picks: Vec<usize> = (0..4).map(|_| pool.pick(&[])).collect();
        assert_eq!(picks, [0, 1, 0, 1]);
        pool.record(1, Outcome::ConnectFailed);
        assert!((0..6).all(|_| pool.pick(&[]) == 0), "1 is out");
        assert_eq!(
            pool.pick(&[0]),
            1,
            "when 0 was tried, 1 is the only one left"
        );
        // Its ejection over, it is back.
        pool.endpoints[1].ejected_until.store(0, Ordering::Relaxed);
        assert!((0..4).any(|_| pool.pick(&[]) == 1));
        pool.record(1, Outcome::Answered);
        assert_eq!(pool.endpoints[1].failures.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn with_every_endpoint_out_the_one_back_soonest_is_tried() {
        let pool = Pool::new("t", vec![up(1), up(2)]);
        pool.record(0, Outcome::ConnectFailed);
        pool.record(0, Outcome::ConnectFailed);
        pool.record(1, Outcome::TimedOut);
        assert_eq!(
            pool.pick(&[]),
            1,
            "1 failed once, 0 twice: 1 is back sooner"
        );
    }
}
