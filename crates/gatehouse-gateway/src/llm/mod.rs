//! The logic of LLM exchanges, free of I/O: SSE parsing, where usage and models are found (as
//! the templates say), OpenAI's stream usage option, errors in each provider API's shape,
//! OpenAI ⇄ Anthropic translation, guardrails and pricing. The data plane's LLM path
//! (`proxy/llm`) calls these.

pub mod errors;
pub mod guardrails;
pub mod include_usage;
pub mod pricing;
pub mod sse;
pub mod translate;
pub mod usage;
