//! Subscriptions of held artifacts (tokens only as hashes) and the plans that set their quotas.

use gatehouse_core::protocol::PlanLimit;

use super::rows::{status_column, subscription_from_row, StoredPlan, StoredSubscription};
use super::{now_ms, Store, StoreError, Tx};

impl Store {
    /// Records (or replaces) a subscription of an artifact.
    pub async fn upsert_subscription(&self, sub: &StoredSubscription) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        upsert_subscription(&mut tx, &sub.artifact_id, sub).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The subscriptions of one artifact.
    pub async fn subscriptions_of(
        &self,
        artifact_id: &str,
    ) -> Result<Vec<StoredSubscription>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM subscriptions WHERE artifact_id = ? ORDER BY created_at, id",
        )
        .bind(artifact_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    /// Every subscription of every artifact.
    pub async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        // In pages: all rows at once would hold every row's buffers at the peak, and one row at
        // a time is slow.
        let mut out = Vec::new();
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(
                "SELECT rowid, * FROM subscriptions WHERE rowid > ? ORDER BY rowid LIMIT ?",
            )
            .bind(after)
            .bind(super::PAGE)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                out.push(subscription_from_row(row)?);
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == super::PAGE => {
                    after = sqlx::Row::try_get(last, 0)?
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Every plan; limits that cannot be read back are an error naming the plan.
    pub async fn plans(&self) -> Result<Vec<StoredPlan>, StoreError> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, handle, limits, status FROM plans ORDER BY handle")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, handle, limits, status)| {
                let limits: Vec<PlanLimit> =
                    serde_json::from_str(&limits).map_err(|e| StoreError::UnreadablePayload {
                        table: "plans",
                        id: id.clone(),
                        column: "limits",
                        reason: e.to_string(),
                    })?;
                Ok(StoredPlan {
                    status: status_column("plans", &id, status)?,
                    id,
                    handle,
                    limits,
                })
            })
            .collect()
    }
}

/// Adds or replaces (by id) a subscription of artifact `artifact_id`.
pub(super) async fn upsert_subscription(
    tx: &mut Tx<'_>,
    artifact_id: &str,
    sub: &StoredSubscription,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscriptions (id, artifact_id, subscriber_id, token_hash, plan_id, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET subscriber_id = excluded.subscriber_id, token_hash = excluded.token_hash, \
           plan_id = excluded.plan_id, status = excluded.status",
    )
    .bind(&sub.id)
    .bind(artifact_id)
    .bind(&sub.subscriber_id)
    .bind(&sub.token_hash)
    .bind(&sub.plan_id)
    .bind(sub.status.as_str())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds or replaces (by id) a plan.
pub(super) async fn upsert_plan(tx: &mut Tx<'_>, plan: &StoredPlan) -> Result<(), StoreError> {
    let limits = serde_json::to_string(&plan.limits).map_err(|source| StoreError::Encode {
        what: "plan limits",
        source,
    })?;
    sqlx::query(
        "INSERT INTO plans (id, handle, limits, status) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET handle = excluded.handle, limits = excluded.limits, status = excluded.status",
    )
    .bind(&plan.id)
    .bind(&plan.handle)
    .bind(limits)
    .bind(plan.status.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::protocol::{PlanStatus, TimeUnit};

    #[tokio::test]
    async fn plans_round_trip_and_unreadable_limits_are_an_error_naming_the_plan() {
        let dir = std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir).await.unwrap();
        let plan = StoredPlan {
            id: "p1".into(),
            handle: "gold".into(),
            limits: vec![PlanLimit {
                limit_count: 10,
                time_unit: TimeUnit::Minute,
                stop_on_quota_reach: true,
            }],
            status: PlanStatus::Active,
        };
        let mut tx = store.pool.begin().await.unwrap();
        upsert_plan(&mut tx, &plan).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.plans().await.unwrap(), vec![plan]);

        sqlx::query("UPDATE plans SET limits = 'ten a minute' WHERE id = 'p1'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.plans().await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("plans row 'p1': unreadable limits"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn whole_tables_are_read_across_pages() {
        let dir = std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir).await.unwrap();
        let n = super::super::PAGE * 2 + 7;
        sqlx::raw_sql(&format!(
            r#"
INSERT INTO artifacts (id, kind, handle, context, document, state, origin, created_at, updated_at)
    VALUES ('a', 'RestApi', 'orders', '/orders', '{{}}', 'deployed', 'gateway_api', 1, 1);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
INSERT INTO api_keys (id, artifact_id, display_name, key_hash, masked, status, expires_at, created_at)
    SELECT 'k' || i, 'a', 'app', 'hash-' || i, '***', 'active', NULL, i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
INSERT INTO subscriptions (id, artifact_id, subscriber_id, token_hash, plan_id, status, created_at)
    SELECT 's' || i, 'a', 'team', 'hash-' || i, NULL, 'active', i FROM n;
"#
        ))
        .execute(&store.pool)
        .await
        .unwrap();
        let keys = store.keys().await.unwrap();
        assert_eq!(keys.len() as i64, n);
        let ids: std::collections::HashSet<_> = keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids.len() as i64, n, "each row once");
        assert_eq!(store.subscriptions().await.unwrap().len() as i64, n);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn unknown_statuses_and_time_units_are_errors_naming_the_row() {
        let dir = std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir).await.unwrap();
        sqlx::raw_sql(
            r#"
INSERT INTO artifacts (id, kind, handle, context, document, state, origin, created_at, updated_at)
    VALUES ('a', 'LlmProvider', 'openai', '/openai', '{}', 'deployed', 'gateway_api', 1, 1);
INSERT INTO api_keys (id, artifact_id, display_name, key_hash, masked, status, expires_at, created_at)
    VALUES ('k1', 'a', 'app', 'hash-k1', '***t-key', 'suspended', NULL, 1);
INSERT INTO subscriptions (id, artifact_id, subscriber_id, token_hash, plan_id, status, created_at)
    VALUES ('s1', 'a', 'team-a', 'hash-s1', NULL, 'paused', 1);
INSERT INTO plans (id, handle, limits, status) VALUES ('p1', 'gold', '[]', 'retired');
"#,
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let err = |r: Result<(), StoreError>| r.unwrap_err().to_string();
        assert_eq!(
            err(store.keys().await.map(drop)),
            "api_keys row 'k1': unknown status 'suspended'"
        );
        assert_eq!(
            err(store.subscriptions().await.map(drop)),
            "subscriptions row 's1': unknown status 'paused'"
        );
        assert_eq!(
            err(store.plans().await.map(drop)),
            "plans row 'p1': unknown status 'retired'"
        );

        sqlx::query(
            r#"UPDATE plans SET status = 'active', limits = '[{"limitCount":1,"timeUnit":"WEEK","stopOnQuotaReach":true}]'"#,
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let e = err(store.plans().await.map(drop));
        assert!(
            e.starts_with("plans row 'p1': unreadable limits") && e.contains("WEEK"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
