//! A Gatehouse gateway: holds what was deployed to it (or created through its management API)
//! in a local store, and serves it on a fast data plane.
//!
//! Data flows one way: a change (from the management API or the control plane's `sync`) → one `store`
//! transaction → the route table is rebuilt from the store and swapped atomically into `proxy`.

pub mod admin;
pub mod llm;
pub mod proxy;
pub mod quota_store;
pub mod runtime;
pub mod secrets;
pub mod store;
pub mod sync;

pub use runtime::{run, start, GatewayConfig, RunningGateway, StartError, TlsListen};
pub use store::Store;
