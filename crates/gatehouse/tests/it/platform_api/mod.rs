//! The control plane's public API end to end: the real binary, a real database, real sockets.
//! One module per concern.

mod artifacts;
mod deployments;
mod gateways;
mod hardening;
mod identity;
mod ops;
mod people;
mod secrets;
mod templates;
