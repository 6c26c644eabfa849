//! End-to-end tests of the `gatehouse` binary: a real platform, real gateways, real databases
//! and sockets. One test binary, a module per concern.

#[macro_use]
mod common;

mod cli;
mod console;
mod convergence;
mod crash_safety;
mod dev;
mod internal_api;
mod lifecycle;
mod mcp_session_keys;
mod platform_api;
mod platform_process;
mod shared_quotas;
