//! LLM metrics: requests, tokens and cost by artifact, provider and model, latency and time to
//! first token. Labels hold the model that answered, so series are looked up per exchange (once
//! per LLM request, not per chunk).

use std::time::Duration;

use crate::llm::usage::Usage;

/// Where one exchange's figures go.
pub struct Exchange<'a> {
    /// The handle called (the proxy's or the provider's own).
    pub artifact: &'a str,
    /// The provider that served.
    pub provider: &'a str,
    /// The model that answered, else the one requested.
    pub model: &'a str,
}

impl Exchange<'_> {
    /// Records a finished exchange: its status, tokens, cost and duration.
    pub fn record(&self, status: u16, usage: &Usage, cost: Option<f64>, elapsed: Duration) {
        let (a, p, m) = (
            self.artifact.to_owned(),
            self.provider.to_owned(),
            self.model.to_owned(),
        );
        metrics::counter!("gatehouse_llm_requests_total",
            "artifact" => a.clone(), "provider" => p.clone(), "model" => m.clone(),
            "status" => status.to_string())
        .increment(1);
        for (kind, n) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
        ] {
            if let Some(n) = n {
                metrics::counter!("gatehouse_llm_tokens_total",
                    "artifact" => a.clone(), "provider" => p.clone(), "model" => m.clone(),
                    "type" => kind)
                .increment(n);
            }
        }
        if let Some(usd) = cost {
            // `metrics` counters hold integers; a gauge only ever incremented carries the
            // running total in US dollars (exported with Prometheus type gauge).
            metrics::gauge!("gatehouse_llm_cost_usd_total",
                "artifact" => a.clone(), "provider" => p.clone(), "model" => m.clone())
            .increment(usd);
        }
        metrics::histogram!("gatehouse_llm_request_duration_seconds",
            "artifact" => a, "provider" => p)
        .record(elapsed.as_secs_f64());
    }

    /// Records the time until a stream's first chunk.
    pub fn first_token(&self, elapsed: Duration) {
        metrics::histogram!("gatehouse_llm_time_to_first_token_seconds",
            "artifact" => self.artifact.to_owned(), "provider" => self.provider.to_owned())
        .record(elapsed.as_secs_f64());
    }
}

/// Counts a request moved from `provider` to the next one, and why.
pub fn failover(artifact: &str, provider: &str, reason: &str) {
    metrics::counter!("gatehouse_llm_failovers_total",
        "artifact" => artifact.to_owned(), "provider" => provider.to_owned(),
        "reason" => reason.to_owned())
    .increment(1);
}
