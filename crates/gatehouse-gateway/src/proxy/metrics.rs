//! Per-artifact request metrics, registered when the route table is built so that the hot
//! path only bumps counters it already holds.

use std::sync::OnceLock;
use std::time::Duration;

use gatehouse_core::ArtifactKind;
use metrics::{Counter, Histogram};

/// Counters and the latency histogram of one artifact.
pub struct ArtifactMetrics {
    by_class: [Counter; 5],
    latency: Histogram,
    upstream_errors: Counter,
}

impl ArtifactMetrics {
    /// Handles for `handle` of `kind`.
    pub fn new(handle: &str, kind: ArtifactKind) -> Self {
        let labels = |status: &'static str| {
            [
                ("artifact", handle.to_owned()),
                ("kind", kind.as_str().to_owned()),
                ("status", status.to_owned()),
            ]
        };
        Self {
            by_class: ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .map(|c| metrics::counter!("gatehouse_gateway_requests_total", &labels(c))),
            latency: metrics::histogram!(
                "gatehouse_gateway_request_duration_seconds",
                "artifact" => handle.to_owned(),
                "kind" => kind.as_str()
            ),
            upstream_errors: metrics::counter!(
                "gatehouse_gateway_upstream_errors_total",
                "artifact" => handle.to_owned(),
                "kind" => kind.as_str()
            ),
        }
    }

    /// Records one answered request.
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].increment(1);
        self.latency.record(elapsed.as_secs_f64());
    }

    /// Records a failed upstream exchange.
    pub fn upstream_error(&self) {
        self.upstream_errors.increment(1);
    }
}

/// Counts a request that matched no artifact's context (answered 404).
pub fn unrouted() {
    // Registered on first use, after the process installed its recorder.
    static UNROUTED: OnceLock<Counter> = OnceLock::new();
    UNROUTED
        .get_or_init(|| metrics::counter!("gatehouse_gateway_unrouted_requests_total"))
        .increment(1);
}
