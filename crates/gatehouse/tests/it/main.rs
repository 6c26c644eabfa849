//! End-to-end tests of the `gatehouse` binary: a real platform, real gateways, real databases
//! and sockets. One test binary, a module per concern.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod lifecycle;
mod platform_api;
