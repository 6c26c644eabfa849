//! Policies, one file each. A chain is compiled once per operation when the route table is
//! built; applying it per request allocates little and takes no lock but a rate limiter's.

pub mod api_key_auth;
pub mod cors;
pub mod rate_limit;
pub mod set_headers;
pub mod subscription;

use std::sync::Arc;

use gatehouse_core::spec::Policy;

pub use api_key_auth::{ApiKeyAuth, KeySet};
pub use cors::Cors;
pub use rate_limit::{RateLimit, RateLimiters};
pub use set_headers::SetHeaders;

/// The policies that apply to one operation, in the order they run.
#[derive(Default)]
pub struct Chain {
    pub cors: Option<Arc<Cors>>,
    pub auth: Option<ApiKeyAuth>,
    pub rate_limits: Vec<Arc<RateLimit>>,
    pub set_headers: Option<SetHeaders>,
}

impl Chain {
    /// Compiles artifact-level policies with operation-level ones; an operation-level policy
    /// replaces the artifact-level one of the same name. `scope` names the limiter state
    /// (artifact and operation) so that it survives route-table rebuilds.
    pub fn compile(api: &[Policy], op: &[Policy], scope: &str, limiters: &RateLimiters) -> Self {
        let mut merged: Vec<&Policy> = api
            .iter()
            .filter(|p| !op.iter().any(|o| o.name == p.name))
            .collect();
        merged.extend(op.iter());
        let mut chain = Chain::default();
        for p in merged {
            match p.name.as_str() {
                "api-key-auth" => chain.auth = Some(ApiKeyAuth::from_params(&p.params)),
                "rate-limit" => {
                    if let Some(rl) = limiters.get(scope, &p.params) {
                        chain.rate_limits.push(rl);
                    }
                }
                "cors" => chain.cors = Some(Arc::new(Cors::from_params(&p.params))),
                "set-headers" => chain.set_headers = Some(SetHeaders::from_params(&p.params)),
                // LLM policies (model-allow-list, token-rate-limit) are enforced by the LLM layer.
                _ => {}
            }
        }
        chain
    }

    /// Whether the chain does nothing.
    pub fn is_empty(&self) -> bool {
        self.cors.is_none()
            && self.auth.is_none()
            && self.rate_limits.is_empty()
            && self.set_headers.is_none()
    }
}
