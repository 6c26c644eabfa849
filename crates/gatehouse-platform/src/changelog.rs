//! The change log: every change a gateway must learn is appended here in the same transaction
//! as the change, under a per-organization revision that is strictly increasing and gap-free in
//! commit order.
//!
//! The revision comes from `UPDATE org_revisions SET revision = revision + n ... RETURNING`: the
//! row lock it takes is held until commit, so writers of one organization commit in revision
//! order and a reader sees a prefix of the log, never revision N+1 without N. A rolled-back
//! transaction takes its increment with it, so no gap appears.

use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::Row;
use tokio::sync::broadcast;

use gatehouse_core::protocol::{EventEnvelope, Revision};

use crate::store::{format_ms, now_ms, Db};

/// Which gateways an event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One gateway, by uuid.
    Gateway(String),
    /// Every gateway of the organization, present and future.
    AllGateways,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub target: Target,
    pub payload: Value,
}

/// Sent after a commit that appended events, so that waiting readers wake.
#[derive(Debug, Clone)]
pub struct ChangeNotice {
    pub org_id: String,
    pub revision: Revision,
}

/// Wakes readers of the log in this process.
#[derive(Clone)]
pub struct ChangeFeed {
    tx: broadcast::Sender<ChangeNotice>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }
}

impl ChangeFeed {
    /// Announces that `org_id` reached `revision` (after the commit).
    pub fn notify(&self, org_id: &str, revision: Revision) {
        let _ = self.tx.send(ChangeNotice {
            org_id: org_id.to_owned(),
            revision,
        });
    }

    /// Subscribes to notices.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeNotice> {
        self.tx.subscribe()
    }
}

/// Appends `events` to `org_id`'s log inside the caller's transaction; returns the revision of
/// the last one. Appending nothing returns `None` and takes no lock.
pub async fn append(
    conn: &mut AnyConnection,
    org_id: &str,
    events: &[NewEvent],
) -> Result<Option<Revision>, sqlx::Error> {
    if events.is_empty() {
        return Ok(None);
    }
    let last: i64 = sqlx::query_scalar(
        "UPDATE org_revisions SET revision = revision + $1 WHERE org_id = $2 RETURNING revision",
    )
    .bind(events.len() as i64)
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?;
    let first = last - events.len() as i64 + 1;
    let now = now_ms();
    for (i, e) in events.iter().enumerate() {
        let target = match &e.target {
            Target::Gateway(g) => Some(g.as_str()),
            Target::AllGateways => None,
        };
        sqlx::query(
            "INSERT INTO events (org_id, revision, event_type, target_gateway_id, correlation_id, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(org_id)
        .bind(first + i as i64)
        .bind(&e.event_type)
        .bind(target)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(e.payload.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        metrics::counter!("gatehouse_changelog_events_total", "type" => e.event_type.clone())
            .increment(1);
    }
    if conn.backend_name() == "PostgreSQL" {
        // Delivered at commit to every replica listening, so their gateways hear of it too.
        sqlx::query("SELECT pg_notify('gatehouse_changes', $1)")
            .bind(format!("{org_id}:{last}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(Revision(last)))
}

/// The current revision of an organization's log.
pub async fn current_revision(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Revision, sqlx::Error> {
    let rev: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM org_revisions WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(Revision(rev.unwrap_or(0)))
}

/// A page of events for one gateway.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// Events after the requested revision that target the gateway, in revision order.
    pub events: Vec<EventEnvelope>,
    /// The organization's revision when the page was read.
    pub revision: Revision,
    /// True when events after the requested revision were already compacted away: the reader
    /// cannot replay and must run a full sync.
    pub full_sync_required: bool,
    /// The revision the reader has seen everything up to, when `events` is empty or the page
    /// was cut at `limit`; resume from here.
    pub next_after: Revision,
}

/// Reads the events after `after` that target `gateway_id`, at most `limit`, in one snapshot.
pub async fn read_for_gateway(
    db: &Db,
    org_id: &str,
    gateway_id: &str,
    after: Revision,
    limit: i64,
) -> Result<EventPage, sqlx::Error> {
    let mut tx = db.snapshot().await?;
    let row =
        sqlx::query("SELECT revision, compacted_through FROM org_revisions WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (revision, compacted) = match row {
        Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?),
        None => (0, 0),
    };
    let rows = sqlx::query(
        "SELECT revision, event_type, correlation_id, payload, created_at FROM events \
         WHERE org_id = $1 AND revision > $2 AND revision <= $3 \
           AND (target_gateway_id IS NULL OR target_gateway_id = $4) \
         ORDER BY revision LIMIT $5",
    )
    .bind(org_id)
    .bind(after.0)
    .bind(revision)
    .bind(gateway_id)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        let payload: String = r.try_get(3)?;
        events.push(EventEnvelope {
            revision: r.try_get(0)?,
            event_type: r.try_get(1)?,
            correlation_id: r.try_get(2)?,
            payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
            timestamp: format_ms(r.try_get(4)?),
        });
    }
    let next_after = if events.len() as i64 == limit {
        events.last().map(|e| Revision(e.revision)).unwrap_or(after)
    } else {
        Revision(revision.max(after.0))
    };
    Ok(EventPage {
        events,
        revision: Revision(revision),
        full_sync_required: after.0 < compacted,
        next_after,
    })
}

/// The highest revision of an event that targets `gateway_id`: a gateway that applied this
/// revision is in sync.
pub async fn last_targeting(
    db: &Db,
    org_id: &str,
    gateway_id: &str,
) -> Result<Revision, sqlx::Error> {
    let rev: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(revision) FROM events WHERE org_id = $1 AND (target_gateway_id IS NULL OR target_gateway_id = $2)",
    )
    .bind(org_id)
    .bind(gateway_id)
    .fetch_one(db.pool())
    .await?;
    Ok(Revision(rev.unwrap_or(0)))
}

/// Deletes events created before `cutoff_ms`, as a prefix of each organization's log, and
/// records how far each log was compacted. Returns the number of events removed.
pub async fn compact(db: &Db, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let orgs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org_id, MAX(revision) FROM events WHERE created_at < $1 GROUP BY org_id",
    )
    .bind(cutoff_ms)
    .fetch_all(db.pool())
    .await?;
    let mut removed = 0;
    for (org_id, upto) in orgs {
        let mut tx = db.write().await?;
        removed += sqlx::query("DELETE FROM events WHERE org_id = $1 AND revision <= $2")
            .bind(&org_id)
            .bind(upto)
            .execute(tx.conn())
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE org_revisions SET compacted_through = $1 WHERE org_id = $2 AND compacted_through < $1",
        )
        .bind(upto)
        .bind(&org_id)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
    }
    Ok(removed)
}
