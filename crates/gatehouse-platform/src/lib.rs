//! The Gatehouse control plane: where people define REST APIs, LLM providers, LLM proxies and
//! MCP proxies and deploy them to gateways, and where gateways learn what to serve.
//!
//! Data flows one way: an HTTP request (`api`) → a `service` function → one `store`
//! transaction that also appends to the `changelog` → gateways read the log.

pub mod access;
pub mod api;
pub mod auth;
pub mod changelog;
pub mod config;
pub mod console;
pub use gatehouse_core::crypto;
pub mod error;
pub mod hub;
pub mod service;
pub mod state;
pub mod store;

mod server;

pub use config::PlatformConfig;
pub use server::{run, start, RunningPlatform};
