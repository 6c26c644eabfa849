//! The change log: every change a gateway must learn is appended here in the same transaction
//! as the change, under a per-organization revision that is strictly increasing and gap-free in
//! commit order.
//!
//! The revision comes from `UPDATE org_revisions SET revision = revision + n ... RETURNING`: the
//! row lock it takes is held until commit, so writers of one organization commit in revision
//! order and a reader sees a prefix of the log, never revision N+1 without N. A rolled-back
//! transaction takes its increment with it, so no gap appears.
//!
//! Writers append through a [`ChangeTx`], which also owns the announcement: after its commit it
//! wakes this replica's readers (the [`ChangeFeed`]) and, with PostgreSQL, the other replicas
//! (`pg_notify` on [`CHANGES_CHANNEL`], sent inside the transaction so it is delivered at
//! commit). A rolled-back transaction announces nothing.

use std::collections::BTreeMap;

use sqlx::AnyConnection;
use sqlx::Row;
use tokio::sync::broadcast;

use gatehouse_core::protocol::{Event, EventEnvelope, EventType, Revision};

use crate::store::{format_ms, now_ms, Backend, Db, WriteTx};

/// The PostgreSQL channel on which a replica announces `org:revision` after a commit.
pub const CHANGES_CHANNEL: &str = "gatehouse_changes";

/// Why the change log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ChangeLogError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A stored event that cannot be read back: an unknown type or a payload that is not JSON.
    #[error("event {revision} of organization {org_id} is unreadable: {reason}")]
    Unreadable {
        org_id: String,
        revision: Revision,
        reason: String,
    },
    /// An event whose payload cannot be serialized.
    #[error("event {event_type} cannot be serialized: {source}")]
    Payload {
        event_type: EventType,
        #[source]
        source: serde_json::Error,
    },
}

/// Which gateways an event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One gateway, by uuid.
    Gateway(String),
    /// Every gateway of the organization, present and future.
    AllGateways,
}

/// An event to append: what happened and who must learn it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub target: Target,
}

impl NewEvent {
    /// `event` for `target`.
    pub fn new(event: Event, target: Target) -> Self {
        Self { event, target }
    }
}

/// Sent after a commit that appended events, so that waiting readers wake.
#[derive(Debug, Clone)]
pub struct ChangeNotice {
    pub org_id: String,
    pub revision: Revision,
}

/// Wakes readers of the log in this process. Only the change log itself announces: a
/// [`ChangeTx`] after its commit, and [`ChangeFeed::relay`] for another replica's commit.
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
    fn notify(&self, org_id: &str, revision: Revision) {
        let _ = self.tx.send(ChangeNotice {
            org_id: org_id.to_owned(),
            revision,
        });
    }

    /// Passes on another replica's announcement (the payload of a [`CHANGES_CHANNEL`]
    /// notification); one that cannot be read is logged and dropped, since readers also poll.
    pub fn relay(&self, payload: &str) {
        let parsed = payload
            .rsplit_once(':')
            .and_then(|(org, rev)| Some((org, Revision(rev.parse().ok()?))));
        match parsed {
            Some((org, rev)) => self.notify(org, rev),
            None => tracing::warn!(payload, "unreadable change notification ignored"),
        }
    }

    /// Subscribes to notices.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeNotice> {
        self.tx.subscribe()
    }
}

/// A write transaction that may append to the change log. Committing it commits the change and
/// its events together, then wakes this replica's readers and (with PostgreSQL) the other
/// replicas'. Dropping it without `commit` rolls back and announces nothing.
pub struct ChangeTx {
    tx: WriteTx,
    feed: ChangeFeed,
    backend: Backend,
    /// The last revision appended, per organization.
    appended: BTreeMap<String, Revision>,
}

impl ChangeTx {
    /// Begins a write transaction whose appends `feed` will announce.
    pub async fn begin(db: &Db, feed: &ChangeFeed) -> Result<Self, sqlx::Error> {
        Ok(Self {
            tx: db.write().await?,
            feed: feed.clone(),
            backend: db.backend(),
            appended: BTreeMap::new(),
        })
    }

    /// The connection to run the change's own statements on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        self.tx.conn()
    }

    /// Appends `events` to `org_id`'s log in this transaction; returns the revision of the
    /// last one. Appending nothing returns `None` and takes no lock.
    pub async fn append(
        &mut self,
        org_id: &str,
        events: &[NewEvent],
    ) -> Result<Option<Revision>, ChangeLogError> {
        let last = append(self.tx.conn(), org_id, events).await?;
        if let Some(rev) = last {
            self.appended.insert(org_id.to_owned(), rev);
        }
        Ok(last)
    }

    /// Commits, then announces what was appended.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            // Delivered at commit to every replica listening, so their gateways hear of it too.
            for (org_id, rev) in &self.appended {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANGES_CHANNEL)
                    .bind(format!("{org_id}:{rev}"))
                    .execute(self.tx.conn())
                    .await?;
            }
        }
        self.tx.commit().await?;
        for (org_id, rev) in &self.appended {
            self.feed.notify(org_id, *rev);
        }
        Ok(())
    }
}

/// Appends `events` inside the caller's transaction. The revision comes from the row lock on
/// `org_revisions`, held until commit.
async fn append(
    conn: &mut AnyConnection,
    org_id: &str,
    events: &[NewEvent],
) -> Result<Option<Revision>, ChangeLogError> {
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
        let event_type = e.event.event_type();
        let payload = e
            .event
            .payload()
            .map_err(|source| ChangeLogError::Payload { event_type, source })?;
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
        .bind(event_type.to_string())
        .bind(target)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        metrics::counter!("gatehouse_changelog_events_total", "type" => event_type.to_string())
            .increment(1);
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
) -> Result<EventPage, ChangeLogError> {
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
        let revision = Revision(r.try_get(0)?);
        let unreadable = |reason: String| ChangeLogError::Unreadable {
            org_id: org_id.to_owned(),
            revision,
            reason,
        };
        let event_type: String = r.try_get(1)?;
        let payload: String = r.try_get(3)?;
        events.push(EventEnvelope {
            revision,
            event_type: event_type.parse().map_err(|e| unreadable(format!("{e}")))?,
            correlation_id: r.try_get(2)?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| unreadable(format!("its payload is not JSON: {e}")))?,
            timestamp: format_ms(r.try_get(4)?),
            previous_revision: None,
        });
    }
    let next_after = if events.len() as i64 == limit {
        events.last().map(|e| e.revision).unwrap_or(after)
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
