//! LLM provider templates as data: how a provider's API takes its credential, where a request
//! names its model, and where a response (plain or streamed) reports the model that answered and
//! the tokens it used. Six are built in; organizations add their own with the same shape.
//!
//! docs/llm.md describes the templates for users.

mod builtin;
mod template;

pub use builtin::{builtin, builtin_ids, builtins, BUILTIN};
pub use template::{
    ApiFamily, JsonPointer, LlmTemplate, ModelLocation, PointerError, StreamExtract, TemplateAuth,
    TemplateExtract,
};
