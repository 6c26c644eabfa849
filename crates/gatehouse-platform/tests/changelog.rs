//! The change log at the store level: concurrent appends, rolled-back transactions and a
//! tailing reader, on SQLite and on PostgreSQL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gatehouse_core::protocol::Revision;
use gatehouse_platform::changelog::{self, NewEvent, Target};
use gatehouse_platform::service::identity;
use gatehouse_platform::store::Db;
use gatehouse_testkit::{Backend, TestDatabase, PG_ENV};
use serde_json::json;

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
        let (db, org, gateway) = (db.clone(), org.clone(), gateway.clone());
        tasks.push(tokio::spawn(async move {
            let mut committed = 0usize;
            for t in 0..TXS {
                let n = 1 + (w + t) % 3;
                let events: Vec<NewEvent> = (0..n)
                    .map(|i| NewEvent {
                        event_type: "api.deployed".into(),
                        target: if i % 2 == 0 {
                            Target::Gateway(gateway.clone())
                        } else {
                            Target::AllGateways
                        },
                        payload: json!({"writer": w, "tx": t, "i": i}),
                    })
                    .collect();
                let mut tx = db.write().await.unwrap();
                changelog::append(tx.conn(), &org, &events).await.unwrap();
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
    let expected: Vec<i64> = (1..=total as i64).collect();
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
    assert!(page
        .events
        .iter()
        .all(|e| e.payload["i"].as_u64().unwrap() % 2 == 1));
    assert!(!page.events.is_empty());
}

async fn compaction_removes_a_prefix_and_flags_full_sync(backend: Backend) {
    let Some((db, _guard)) = db(backend).await else {
        return;
    };
    let org = default_org(&db).await;
    let ev = |n: i64| NewEvent {
        event_type: "api.deleted".into(),
        target: Target::AllGateways,
        payload: json!({"n": n}),
    };
    for n in 0..3 {
        let mut tx = db.write().await.unwrap();
        changelog::append(tx.conn(), &org, &[ev(n)]).await.unwrap();
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
    let mut tx = db.write().await.unwrap();
    assert_eq!(
        changelog::append(tx.conn(), &org, &[ev(3)]).await.unwrap(),
        Some(Revision(4))
    );
    tx.commit().await.unwrap();
    let page = changelog::read_for_gateway(&db, &org, "gw", Revision(3), 100)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].revision, 4);
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
    assert_eq!(versions, vec![1, 2, 3]);
    assert!(
        identity::bootstrap(&again, None).await.unwrap().is_none(),
        "admin exists: nothing generated"
    );
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
    migrations_are_idempotent_across_restarts
);
