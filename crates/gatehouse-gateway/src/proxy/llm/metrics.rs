//! LLM metrics: requests, tokens and cost by artifact, provider and model; latency and time to
//! first token by artifact and provider. Handles are registered once per (provider, model) and
//! kept with the route, so an exchange bumps counters it already holds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use crate::llm::usage::Usage;

/// Models remembered per provider; past this, series are looked up per exchange.
const MAX_MODELS: usize = 256;

/// The series of one model served by one provider for one artifact.
struct ModelMetrics {
    labels: [(&'static str, String); 3],
    prompt: Counter,
    completion: Counter,
    cost: Gauge,
    by_status: RwLock<Vec<(u16, Counter)>>,
}

impl ModelMetrics {
    fn new(artifact: &str, provider: &str, model: &str) -> Self {
        let labels = [
            ("artifact", artifact.to_owned()),
            ("provider", provider.to_owned()),
            ("model", model.to_owned()),
        ];
        let with_type = |t: &'static str| {
            let mut l: Vec<(&'static str, String)> = labels.to_vec();
            l.push(("type", t.to_owned()));
            l
        };
        Self {
            prompt: metrics::counter!("gatehouse_llm_tokens_total", &with_type("prompt")),
            completion: metrics::counter!("gatehouse_llm_tokens_total", &with_type("completion")),
            // `metrics` counters hold integers; a gauge only ever incremented carries the
            // running total in US dollars (exported with Prometheus type gauge).
            cost: metrics::gauge!("gatehouse_llm_cost_usd_total", &labels),
            by_status: RwLock::default(),
            labels,
        }
    }

    fn requests(&self, status: u16) -> Counter {
        if let Some((_, c)) = self
            .by_status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(s, _)| *s == status)
        {
            return c.clone();
        }
        let mut l: Vec<(&'static str, String)> = self.labels.to_vec();
        l.push(("status", status.to_string()));
        let c = metrics::counter!("gatehouse_llm_requests_total", &l);
        self.by_status
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((status, c.clone()));
        c
    }
}

/// The series of one provider of one LLM route.
pub struct TargetMetrics {
    artifact: Arc<str>,
    provider: Arc<str>,
    duration: Histogram,
    first_token: Histogram,
    by_model: RwLock<HashMap<String, Arc<ModelMetrics>>>,
}

impl TargetMetrics {
    /// The series of `provider` serving `artifact`.
    pub fn new(artifact: &str, provider: &str) -> Self {
        Self {
            artifact: artifact.into(),
            provider: provider.into(),
            duration: metrics::histogram!("gatehouse_llm_request_duration_seconds",
                "artifact" => artifact.to_owned(), "provider" => provider.to_owned()),
            first_token: metrics::histogram!("gatehouse_llm_time_to_first_token_seconds",
                "artifact" => artifact.to_owned(), "provider" => provider.to_owned()),
            by_model: RwLock::default(),
        }
    }

    fn model(&self, model: &str) -> Arc<ModelMetrics> {
        if let Some(m) = self
            .by_model
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
        {
            return m.clone();
        }
        let m = Arc::new(ModelMetrics::new(&self.artifact, &self.provider, model));
        let mut map = self.by_model.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_MODELS {
            map.insert(model.to_owned(), m.clone());
        }
        m
    }

    /// Records a finished exchange: its status, tokens, cost and duration.
    pub fn record(
        &self,
        model: &str,
        status: u16,
        usage: &Usage,
        cost: Option<f64>,
        elapsed: Duration,
    ) {
        let m = self.model(model);
        m.requests(status).increment(1);
        if let Some(n) = usage.prompt_tokens {
            m.prompt.increment(n);
        }
        if let Some(n) = usage.completion_tokens {
            m.completion.increment(n);
        }
        if let Some(usd) = cost {
            m.cost.increment(usd);
        }
        self.duration.record(elapsed.as_secs_f64());
    }

    /// Records the time until a stream's first chunk.
    pub fn first_token(&self, elapsed: Duration) {
        self.first_token.record(elapsed.as_secs_f64());
    }
}

/// Counts a request moved from `provider` to the next one, and why.
pub fn failover(artifact: &str, provider: &str, reason: &str) {
    metrics::counter!("gatehouse_llm_failovers_total",
        "artifact" => artifact.to_owned(), "provider" => provider.to_owned(),
        "reason" => reason.to_owned())
    .increment(1);
}
