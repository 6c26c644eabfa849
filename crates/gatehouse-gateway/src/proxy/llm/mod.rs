//! The data plane's LLM path: providers and proxies read each request (model, guardrails,
//! token limits), forward it to a provider (with failover between several, translated when the
//! client speaks another API), and read each response for the tokens it used. The pure logic
//! (SSE parsing, usage extraction, translation, guardrails, error shapes) is in `crate::llm`.

pub mod body;
pub mod flow;
pub mod metrics;
pub mod route;
pub mod token_limit;

pub use flow::{forward, LlmError};
pub use route::{LlmRoute, LlmState};
pub use token_limit::Caller;
