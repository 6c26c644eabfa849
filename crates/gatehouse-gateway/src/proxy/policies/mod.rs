//! Policies, one file each. A chain is compiled once per operation when the route table is
//! built; applying it per request allocates little and takes no lock but a rate limiter's.

pub mod api_key_auth;
pub mod cors;
pub mod jwt_auth;
pub mod rate_limit;
pub mod set_headers;
pub mod subscription;

use std::sync::Arc;

use gatehouse_core::policy::Policy;

pub use api_key_auth::{ApiKeyAuth, KeySet};
pub use cors::Cors;
pub use jwt_auth::JwtAuth;
pub use rate_limit::{RateLimit, RateLimiters};
pub use set_headers::SetHeaders;

/// The policies that apply to one operation, in the order they run.
#[derive(Default)]
pub struct Chain {
    pub cors: Option<Arc<Cors>>,
    pub auth: Option<ApiKeyAuth>,
    pub jwt: Option<Arc<JwtAuth>>,
    /// `mcp-authz`: which callers may see and call which tools.
    pub mcp_authz: Option<Arc<gatehouse_core::policy::McpAuthzParams>>,
    pub rate_limits: Vec<Arc<RateLimit>>,
    pub set_headers: Option<SetHeaders>,
}

impl Chain {
    /// Compiles `policies` (already merged, see `gatehouse_core::policy::merged`). `scope`
    /// names the limiter state (artifact and operation) so that it survives route-table
    /// rebuilds.
    pub fn compile<'a>(
        policies: impl IntoIterator<Item = &'a Policy>,
        scope: &str,
        limiters: &RateLimiters,
    ) -> Self {
        let mut chain = Chain::default();
        for p in policies {
            match p {
                Policy::ApiKeyAuth(params) => chain.auth = Some(ApiKeyAuth::new(params)),
                Policy::JwtAuth(params) => chain.jwt = Some(Arc::new(JwtAuth::new(params))),
                Policy::McpAuthz(params) => chain.mcp_authz = Some(Arc::new(params.clone())),
                Policy::RateLimit(params) => {
                    chain.rate_limits.push(limiters.for_policy(scope, params))
                }
                Policy::Cors(params) => chain.cors = Some(Arc::new(Cors::new(params))),
                Policy::SetHeaders(params) => chain.set_headers = Some(SetHeaders::new(params)),
                // The LLM policies are enforced on the LLM path (`proxy/llm`).
                Policy::ModelAllowList(_)
                | Policy::TokenRateLimit(_)
                | Policy::RegexGuardrail(_)
                | Policy::PiiMasking(_)
                | Policy::PromptSizeLimit(_) => {}
            }
        }
        chain
    }

    /// Whether the chain does nothing.
    pub fn is_empty(&self) -> bool {
        self.cors.is_none()
            && self.auth.is_none()
            && self.jwt.is_none()
            && self.rate_limits.is_empty()
            && self.set_headers.is_none()
    }
}
