//! Shared state of a running platform.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::changelog::{ChangeFeed, ChangeTx};
use crate::config::PlatformConfig;
use crate::crypto::Sealer;
use crate::hub::Hub;
use crate::store::Db;

/// What every handler and background task of one platform process shares.
pub struct Platform {
    pub db: Db,
    pub config: PlatformConfig,
    pub jwt: JwtKeys,
    pub sealer: Sealer,
    pub feed: ChangeFeed,
    pub hub: Hub,
}

impl Platform {
    /// Begins a write transaction whose change-log appends are announced when it commits.
    pub async fn begin_change(&self) -> Result<ChangeTx, sqlx::Error> {
        ChangeTx::begin(&self.db, &self.feed).await
    }

    /// Closes every connection of `gateway`, on this replica and (through PostgreSQL
    /// notifications) on the others.
    pub async fn close_gateway(&self, gateway: &str) {
        self.hub.close_gateway(gateway);
        if self.db.backend() == crate::store::Backend::Postgres {
            let sent = sqlx::query("SELECT pg_notify('gatehouse_gateway_closed', $1)")
                .bind(gateway)
                .execute(self.db.pool())
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not tell other replicas to close a gateway's connections");
            }
        }
    }
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
