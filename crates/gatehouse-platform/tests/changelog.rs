//! The change log at the store level: concurrent appends, rolled-back transactions, a tailing
//! reader and the announcements a commit makes, on SQLite and on PostgreSQL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::protocol::{DeletePayload, DeployPayload, Event, Revision};
use gatehouse_core::ArtifactKind;
use gatehouse_platform::changelog::{self, ChangeFeed, ChangeTx, NewEvent, Target};
use gatehouse_platform::service::identity;
use gatehouse_platform::store::Db;
use gatehouse_testkit::{Backend, TestDatabase, PG_ENV};

/// A deploy event whose handle records `n`, so that a reader can tell events apart.
fn deployed(n: usize) -> Event {
    Event::Deployed(DeployPayload {
        artifact_id: format!("artifact-{n}"),
        kind: ArtifactKind::RestApi,
        handle: n.to_string(),
        deployment_id: format!("deployment-{n}"),
        performed_at: "2026-01-01T00:00:00.000Z".into(),
    })
}

/// The `n` a [`deployed`] or [`deleted`] event carries.
fn number(e: &gatehouse_core::protocol::EventEnvelope) -> u64 {
    e.payload["handle"].as_str().unwrap().parse().unwrap()
}

/// An artifact delete event whose handle records `n`.
fn deleted(n: i64) -> Event {
    Event::Deleted(DeletePayload {
        artifact_id: format!("artifact-{n}"),
        kind: ArtifactKind::Mcp,
        handle: n.to_string(),
    })
}

async fn db(backend: Backend) -> Option<(Db, TestDatabase)> {
    let t = TestDatabase::new(backend).await.unwrap()?;
    let db = Db::connect(&t.url).await.unwrap();
    identity::bootstrap(&db, Some("pw")).await.unwrap();
    Some((db, t))
}

async fn default_org(db: &Db) -> String {
    sqlx::query_scalar("SELECT uuid FROM organizations WHERE handle = 'default'")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Writers append 1–3 events per transaction and roll back every third one; a reader tails
/// the log meanwhile. Committed revisions are exactly 1..=N, and the reader saw each once, in order.
async fn concurrent_appends_with_rollbacks_leave_no_gaps(backend: Backend) {
    let Some((db, _guard)) = db(backend).await else {
        return;
    };
    let org = default_org(&db).await;
    let feed = ChangeFeed::default();
    let gateway = "gw-1".to_owned();
    const WRITERS: usize = 12;
    const TXS: usize = 15;

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, org, gateway, done) = (db.clone(), org.clone(), gateway.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = vec![];
            let mut after = Revision(0);
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = changelog::read_for_gateway(&db, &org, &gateway, after, 5)
                    .await
                    .unwrap();
                seen.extend(page.events.iter().map(|e| e.revision));
                after = page.next_after;
                if finished && page.events.is_empty() {
                    return seen;
                }
            }
        })
    };
    let mut tasks = vec![];
    for w in 0..WRITERS {
        let (db, org, gateway, feed) = (db.clone(), org.clone(), gateway.clone(), feed.clone());
        tasks.push(tokio::spawn(async move {
            let mut committed = 0usize;
            for t in 0..TXS {
                let n = 1 + (w + t) % 3;
                let events: Vec<NewEvent> = (0..n)
                    .map(|i| {
                        let target = if i % 2 == 0 {
                            Target::Gateway(gateway.clone())
                        } else {
                            Target::AllGateways
                        };
                        NewEvent::new(deployed(i), target)
                    })
                    .collect();
                let mut tx = ChangeTx::begin(&db, &feed).await.unwrap();
                tx.append(&org, &events).await.unwrap();
                if t % 3 == 2 {
                    drop(tx); // rolled back: its revisions must not leave a gap
                } else {
                    tx.commit().await.unwrap();
                    committed += n;
                }
            }
            committed
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let expected: Vec<Revision> = (1..=total as i64).map(Revision).collect();
    assert_eq!(seen, expected);
    let mut conn = db.pool().acquire().await.unwrap();
    assert_eq!(
        changelog::current_revision(&mut conn, &org).await.unwrap(),
        Revision(total as i64)
    );
    // Another gateway sees only the events for every gateway.
    let page = changelog::read_for_gateway(&db, &org, "gw-2", Revision(0), 1000)
        .await
        .unwrap();
    assert!(page.events.iter().all(|e| number(e) % 2 == 1));
    assert!(!page.events.is_empty());
}

async fn compaction_removes_a_prefix_and_flags_full_sync(backend: Backend) {
    let Some((db, _guard)) = db(backend).await else {
        return;
    };
    let org = default_org(&db).await;
    let feed = ChangeFeed::default();
    let ev = |n: i64| NewEvent::new(deleted(n), Target::AllGateways);
    for n in 0..3 {
        let mut tx = ChangeTx::begin(&db, &feed).await.unwrap();
        tx.append(&org, &[ev(n)]).await.unwrap();
        tx.commit().await.unwrap();
    }
    let removed = changelog::compact(&db, gatehouse_platform::store::now_ms() + 1)
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let page = changelog::read_for_gateway(&db, &org, "gw", Revision(1), 100)
        .await
        .unwrap();
    assert!(page.full_sync_required);
    let page = changelog::read_for_gateway(&db, &org, "gw", Revision(3), 100)
        .await
        .unwrap();
    assert!(!page.full_sync_required);
    let mut tx = ChangeTx::begin(&db, &feed).await.unwrap();
    assert_eq!(tx.append(&org, &[ev(3)]).await.unwrap(), Some(Revision(4)));
    tx.commit().await.unwrap();
    let page = changelog::read_for_gateway(&db, &org, "gw", Revision(3), 100)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].revision, Revision(4));
}

/// A commit wakes this replica's readers with the last revision it appended; a rolled-back
/// transaction, or one that appended nothing, wakes nobody.
async fn commits_announce_and_rollbacks_do_not(backend: Backend) {
    let Some((db, _guard)) = db(backend).await else {
        return;
    };
    let org = default_org(&db).await;
    let feed = ChangeFeed::default();
    let mut notices = feed.subscribe();

    let mut tx = ChangeTx::begin(&db, &feed).await.unwrap();
    tx.append(&org, &[NewEvent::new(deleted(1), Target::AllGateways)])
        .await
        .unwrap();
    drop(tx);
    let mut tx = ChangeTx::begin(&db, &feed).await.unwrap();
    assert_eq!(tx.append(&org, &[]).await.unwrap(), None);
    tx.commit().await.unwrap();
    assert!(
        notices.try_recv().is_err(),
        "neither a rollback nor an empty commit announces"
    );

    let mut tx = ChangeTx::begin(&db, &feed).await.unwrap();
    let events = [
        NewEvent::new(deleted(2), Target::AllGateways),
        NewEvent::new(deleted(3), Target::Gateway("gw".into())),
    ];
    assert_eq!(tx.append(&org, &events).await.unwrap(), Some(Revision(2)));
    assert!(
        notices.try_recv().is_err(),
        "nothing is announced before the commit"
    );
    tx.commit().await.unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (notice.org_id.as_str(), notice.revision),
        (org.as_str(), Revision(2))
    );
    assert!(notices.try_recv().is_err(), "one announcement per commit");
}

async fn migrations_are_idempotent_across_restarts(backend: Backend) {
    let Some((db, guard)) = db(backend).await else {
        return;
    };
    db.close().await;
    let again = Db::connect(&guard.url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(again.pool())
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert!(
        identity::bootstrap(&again, None).await.unwrap().is_none(),
        "admin exists: nothing generated"
    );
}

/// Subscription and plan statuses stored uppercase by earlier releases are rewritten lowercase
/// by the migration that introduced the one spelling; existing LLM proxies keep their provider.
async fn stored_uppercase_statuses_are_rewritten_lowercase(backend: Backend) {
    let Some((db, guard)) = db(backend).await else {
        return;
    };
    let org = default_org(&db).await;
    for sql in [
        "INSERT INTO artifacts (uuid, org_id, kind, handle, display_name, spec, created_at, updated_at) \
         VALUES ('a-1', $1, 'RestApi', 'orders', 'Orders', '{}', 0, 0)",
        "INSERT INTO subscription_plans (uuid, org_id, handle, display_name, limits, status, created_at, updated_at) \
         VALUES ('p-1', $1, 'gold', 'Gold', '[]', 'INACTIVE', 0, 0)",
        "INSERT INTO artifacts (uuid, org_id, kind, handle, display_name, spec, created_at, updated_at) \
         VALUES ('prov-1', $1, 'LlmProvider', 'prov', 'Prov', '{}', 0, 0)",
        "INSERT INTO artifacts (uuid, org_id, kind, handle, display_name, provider_id, spec, created_at, updated_at) \
         VALUES ('px-1', $1, 'LlmProxy', 'px', 'Px', 'prov-1', '{}', 0, 0)",
        "INSERT INTO subscriptions (uuid, org_id, artifact_id, subscriber_id, plan_id, token_hash, status, created_at, updated_at) \
         VALUES ('s-1', $1, 'a-1', 'team', 'p-1', 'h', 'ACTIVE', 0, 0)",
        // As if the database were still at version 3.
        "DELETE FROM schema_migrations WHERE version >= 4 AND $1 <> ''",
    ] {
        sqlx::query(sql).bind(&org).execute(db.pool()).await.unwrap();
    }
    for sql in [
        "DROP TABLE revoked_logins",
        "DROP TABLE login_failures",
        "DROP TABLE console_sessions",
        "DROP TABLE audit_log",
        "DROP TABLE api_tokens",
        "ALTER TABLE memberships DROP COLUMN role",
        "DROP TABLE gateway_artifact_conflicts",
        "DROP INDEX artifacts_origin_gateway",
        "ALTER TABLE artifacts DROP COLUMN origin_gateway_id",
        "ALTER TABLE artifacts DROP COLUMN origin_state",
        "DROP TABLE deployment_secret_refs",
        "DROP TABLE artifact_secret_refs",
        "DROP TABLE secrets",
        "DROP TABLE llm_proxy_providers",
        "DROP TABLE llm_templates",
    ] {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
    db.close().await;
    let db = Db::connect(&guard.url).await.unwrap();
    let sub: String = sqlx::query_scalar("SELECT status FROM subscriptions WHERE uuid = 's-1'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let plan: String =
        sqlx::query_scalar("SELECT status FROM subscription_plans WHERE uuid = 'p-1'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((sub.as_str(), plan.as_str()), ("active", "inactive"));
    // Migration 5 records the one provider of each existing LLM proxy.
    let providers: Vec<(String, String)> =
        sqlx::query_as("SELECT proxy_id, provider_id FROM llm_proxy_providers")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(providers, vec![("px-1".to_owned(), "prov-1".to_owned())]);
}

macro_rules! both {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() { super::$name(super::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if std::env::var(super::PG_ENV).is_err() {
                    eprintln!("skipped: {} is not set", super::PG_ENV);
                    return;
                }
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

both!(
    concurrent_appends_with_rollbacks_leave_no_gaps,
    compaction_removes_a_prefix_and_flags_full_sync,
    commits_announce_and_rollbacks_do_not,
    migrations_are_idempotent_across_restarts,
    stored_uppercase_statuses_are_rewritten_lowercase
);
