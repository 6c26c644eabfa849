//! Shared state of a running platform.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::changelog::ChangeFeed;
use crate::config::PlatformConfig;
use crate::crypto::Sealer;
use crate::store::Db;

/// What every handler and background task of one platform process shares.
pub struct Platform {
    pub db: Db,
    pub config: PlatformConfig,
    pub jwt: JwtKeys,
    pub sealer: Sealer,
    pub feed: ChangeFeed,
}

/// Cheap-to-clone handle on [`Platform`].
#[derive(Clone)]
pub struct AppState(pub Arc<Platform>);

impl Deref for AppState {
    type Target = Platform;
    fn deref(&self) -> &Platform {
        &self.0
    }
}
