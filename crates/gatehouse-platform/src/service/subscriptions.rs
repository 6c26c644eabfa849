//! Subscription plans (request quotas) and subscriptions (a subscriber's token for one artifact,
//! under a plan), delivered to gateways through the change log.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use gatehouse_core::crypto::{random_token, sha256_hex};
use gatehouse_core::protocol::{
    Event, PlanInfo, PlanLimit, PlanList, PlanRef, PlanStatus, RecordChange, SubscriptionInfo,
    SubscriptionList, SubscriptionStatus,
};
use gatehouse_core::{ArtifactKind, FieldError};

use crate::auth::{Caller, GatewayCaller};
use crate::changelog::{ChangeTx, NewEvent, Target};
use crate::error::{ApiError, ApiResult};
use crate::service::{artifacts, display_name, new_handle, new_uuid, parse_stored, List, Page};
use crate::state::AppState;
use crate::store::{format_ms, is_unique_violation, now_ms};

/// Body of `POST /subscription-plans` and `PUT /subscription-plans/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanBody {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub limits: Vec<PlanLimit>,
    /// `active` (default) or `inactive`.
    pub status: Option<PlanStatus>,
}

/// A subscription plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: String,
    pub uuid: String,
    pub display_name: String,
    pub limits: Vec<PlanLimit>,
    pub status: PlanStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// Body of `POST /subscriptions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSubscription {
    /// Handle of the artifact.
    pub artifact_id: String,
    pub kind: ArtifactKind,
    #[schema(pattern = "\\S")]
    pub subscriber_id: String,
    /// Handle of the plan.
    pub plan_id: Option<String>,
}

/// Body of `PUT /subscriptions/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionUpdate {
    /// `active` or `inactive`.
    pub status: Option<SubscriptionStatus>,
    pub plan_id: Option<String>,
}

/// A subscription (never its token, except once at creation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub subscriber_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    pub status: SubscriptionStatus,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_token: Option<String>,
}

/// `?artifactId=` of the subscription list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    pub artifact_id: Option<String>,
}

fn check_limits(limits: &[PlanLimit]) -> ApiResult<()> {
    for (i, l) in limits.iter().enumerate() {
        if l.limit_count == 0 || l.limit_count > i64::MAX as u64 {
            return Err(FieldError::new(
                format!("limits[{i}].limitCount"),
                "must be 1 to 9223372036854775807",
            )
            .into());
        }
    }
    Ok(())
}

const PLAN_COLUMNS: &str = "handle, uuid, display_name, limits, status, created_at, updated_at";

fn plan_from_row(r: &AnyRow) -> ApiResult<Plan> {
    let limits: String = r.try_get(3)?;
    Ok(Plan {
        id: r.try_get(0)?,
        uuid: r.try_get(1)?,
        display_name: r.try_get(2)?,
        limits: serde_json::from_str(&limits).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!("stored plan limits are unreadable: {e}"))
        })?,
        status: parse_stored("plan status", &r.try_get::<String, _>(4)?)?,
        created_at: format_ms(r.try_get(5)?),
        updated_at: format_ms(r.try_get(6)?),
    })
}

/// A plan as gateways get it.
fn delivered_plan(p: &Plan) -> PlanInfo {
    PlanInfo {
        plan_id: p.uuid.clone(),
        handle: p.id.clone(),
        limits: p.limits.clone(),
        status: p.status,
    }
}

/// Appends a plan event for every gateway of the organization.
async fn append_plan_event(tx: &mut ChangeTx, org: &str, event: Event) -> ApiResult<()> {
    tx.append(org, &[NewEvent::new(event, Target::AllGateways)])
        .await?;
    Ok(())
}

async fn load_plan(conn: &mut AnyConnection, org: &str, handle: &str) -> ApiResult<Plan> {
    let r = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE org_id = $1 AND handle = $2"
    ))
    .bind(org)
    .bind(handle)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::not_found("subscription plan", handle))?;
    plan_from_row(&r)
}

/// Creates a plan; every gateway of the organization learns it.
pub async fn create_plan(state: &AppState, caller: &Caller, body: PlanBody) -> ApiResult<Plan> {
    let name = display_name("displayName", &body.display_name)?;
    let handle = new_handle(body.id.as_deref(), &name)?;
    check_limits(&body.limits)?;
    let status = body.status.unwrap_or(PlanStatus::Active);
    let mut tx = state.begin_change().await?;
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO subscription_plans (uuid, org_id, handle, display_name, limits, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(new_uuid())
    .bind(&caller.org_id)
    .bind(handle.as_str())
    .bind(&name)
    .bind(serde_json::to_string(&body.limits).map_err(|e| ApiError::Internal(e.into()))?)
    .bind(status.as_str())
    .bind(now)
    .execute(tx.conn())
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "subscription plan '{handle}' already exists"
            )))
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let plan = load_plan(tx.conn(), &caller.org_id, handle.as_str()).await?;
    let event = Event::PlanSaved(RecordChange::Created, delivered_plan(&plan));
    append_plan_event(&mut tx, &caller.org_id, event).await?;
    tx.commit().await?;
    Ok(plan)
}

/// Reads a plan.
pub async fn get_plan(state: &AppState, caller: &Caller, handle: &str) -> ApiResult<Plan> {
    let mut conn = state.db.pool().acquire().await?;
    load_plan(&mut conn, &caller.org_id, handle).await
}

/// Lists plans.
pub async fn list_plans(state: &AppState, caller: &Caller, page: Page) -> ApiResult<List<Plan>> {
    let bounds = page.bounds()?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM subscription_plans WHERE org_id = $1")
            .bind(&caller.org_id)
            .fetch_one(state.db.pool())
            .await?;
    let rows = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE org_id = $1 ORDER BY handle LIMIT $2 OFFSET $3"
    ))
    .bind(&caller.org_id)
    .bind(bounds.0)
    .bind(bounds.1)
    .fetch_all(state.db.pool())
    .await?;
    Ok(List::new(
        rows.iter()
            .map(plan_from_row)
            .collect::<ApiResult<Vec<_>>>()?,
        total,
        bounds,
    ))
}

/// Replaces a plan's name, limits and status.
pub async fn update_plan(
    state: &AppState,
    caller: &Caller,
    handle: &str,
    body: PlanBody,
) -> ApiResult<Plan> {
    if body.id.as_deref().is_some_and(|id| id != handle) {
        return Err(ApiError::Immutable(FieldError::new("id", "is immutable")));
    }
    let name = display_name("displayName", &body.display_name)?;
    check_limits(&body.limits)?;
    let status = body.status.unwrap_or(PlanStatus::Active);
    let mut tx = state.begin_change().await?;
    load_plan(tx.conn(), &caller.org_id, handle).await?;
    sqlx::query("UPDATE subscription_plans SET display_name = $1, limits = $2, status = $3, updated_at = $4 WHERE org_id = $5 AND handle = $6")
        .bind(&name)
        .bind(serde_json::to_string(&body.limits).map_err(|e| ApiError::Internal(e.into()))?)
        .bind(status.as_str())
        .bind(now_ms())
        .bind(&caller.org_id)
        .bind(handle)
        .execute(tx.conn())
        .await?;
    let plan = load_plan(tx.conn(), &caller.org_id, handle).await?;
    let event = Event::PlanSaved(RecordChange::Updated, delivered_plan(&plan));
    append_plan_event(&mut tx, &caller.org_id, event).await?;
    tx.commit().await?;
    Ok(plan)
}

/// Deletes a plan no subscription uses (409 naming them otherwise).
pub async fn delete_plan(state: &AppState, caller: &Caller, handle: &str) -> ApiResult<()> {
    let mut tx = state.begin_change().await?;
    let plan = load_plan(tx.conn(), &caller.org_id, handle).await?;
    let users: Vec<String> =
        sqlx::query_scalar("SELECT uuid FROM subscriptions WHERE plan_id = $1 LIMIT 10")
            .bind(&plan.uuid)
            .fetch_all(tx.conn())
            .await?;
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "subscription plan '{handle}' is used by subscriptions {}",
            users.join(", ")
        )));
    }
    sqlx::query("DELETE FROM subscription_plans WHERE uuid = $1")
        .bind(&plan.uuid)
        .execute(tx.conn())
        .await?;
    let event = Event::PlanDeleted(PlanRef {
        plan_id: plan.uuid,
        handle: plan.id,
    });
    append_plan_event(&mut tx, &caller.org_id, event).await?;
    tx.commit().await?;
    Ok(())
}

const SUB_SELECT: &str = "SELECT s.uuid, a.handle, a.kind, s.subscriber_id, p.handle, s.status, s.created_at, s.updated_at, \
     s.artifact_id, s.token_hash, s.plan_id FROM subscriptions s JOIN artifacts a ON a.uuid = s.artifact_id \
     LEFT JOIN subscription_plans p ON p.uuid = s.plan_id";

fn sub_from_row(r: &AnyRow) -> ApiResult<Subscription> {
    Ok(Subscription {
        id: r.try_get(0)?,
        artifact_id: r.try_get(1)?,
        kind: parse_stored("artifact kind", &r.try_get::<String, _>(2)?)?,
        subscriber_id: r.try_get(3)?,
        plan_id: r.try_get(4)?,
        status: parse_stored("subscription status", &r.try_get::<String, _>(5)?)?,
        created_at: format_ms(r.try_get(6)?),
        updated_at: format_ms(r.try_get(7)?),
        subscription_token: None,
    })
}

/// A subscription row (selected with `SUB_SELECT`) as gateways get it.
fn delivered_sub(r: &AnyRow) -> ApiResult<SubscriptionInfo> {
    Ok(SubscriptionInfo {
        subscription_id: r.try_get(0)?,
        artifact_id: r.try_get(8)?,
        subscriber_id: r.try_get(3)?,
        token_hash: r.try_get(9)?,
        plan_id: r.try_get(10)?,
        status: parse_stored("subscription status", &r.try_get::<String, _>(5)?)?,
    })
}

/// Appends `subscription.<change>` for every gateway that holds the subscription's artifact.
async fn append_sub_events(
    tx: &mut ChangeTx,
    org: &str,
    change: RecordChange,
    sub: SubscriptionInfo,
) -> ApiResult<()> {
    let gateways: Vec<String> =
        sqlx::query_scalar("SELECT gateway_id FROM artifact_gateways WHERE artifact_id = $1")
            .bind(&sub.artifact_id)
            .fetch_all(tx.conn())
            .await?;
    let events: Vec<NewEvent> = gateways
        .into_iter()
        .map(|g| NewEvent::new(Event::Subscription(change, sub.clone()), Target::Gateway(g)))
        .collect();
    tx.append(org, &events).await?;
    Ok(())
}

async fn load_sub(conn: &mut AnyConnection, org: &str, id: &str) -> ApiResult<AnyRow> {
    sqlx::query(&format!("{SUB_SELECT} WHERE s.org_id = $1 AND s.uuid = $2"))
        .bind(org)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription", id))
}

/// Subscribes to an artifact; the token is returned once.
pub async fn create_subscription(
    state: &AppState,
    caller: &Caller,
    req: NewSubscription,
) -> ApiResult<Subscription> {
    if req.subscriber_id.trim().is_empty() {
        return Err(FieldError::new("subscriberId", "must not be empty").into());
    }
    let mut tx = state.begin_change().await?;
    let art = artifacts::load(tx.conn(), &caller.org_id, req.kind, &req.artifact_id)
        .await
        .map_err(|_| {
            ApiError::UnknownReference(FieldError::new(
                "artifactId",
                format!("{} '{}' does not exist", req.kind.label(), req.artifact_id),
            ))
        })?;
    artifacts::ensure_editable(&art, "subscribed to")?;
    let plan = match &req.plan_id {
        Some(p) => Some(load_plan(tx.conn(), &caller.org_id, p).await.map_err(|_| {
            ApiError::UnknownReference(FieldError::new(
                "planId",
                format!("plan '{p}' does not exist"),
            ))
        })?),
        None => None,
    };
    let token = random_token("ghs_");
    let id = new_uuid();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO subscriptions (uuid, org_id, artifact_id, subscriber_id, plan_id, token_hash, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&id)
    .bind(&caller.org_id)
    .bind(&art.uuid)
    .bind(&req.subscriber_id)
    .bind(plan.map(|p| p.uuid))
    .bind(sha256_hex(&token))
    .bind(SubscriptionStatus::Active.as_str())
    .bind(now)
    .execute(tx.conn())
    .await?;
    let row = load_sub(tx.conn(), &caller.org_id, &id).await?;
    let delivered = delivered_sub(&row)?;
    append_sub_events(&mut tx, &caller.org_id, RecordChange::Created, delivered).await?;
    let mut sub = sub_from_row(&row)?;
    sub.subscription_token = Some(token);
    tx.commit().await?;
    Ok(sub)
}

/// Lists subscriptions, optionally of one artifact (by handle).
pub async fn list_subscriptions(
    state: &AppState,
    caller: &Caller,
    filter: SubscriptionFilter,
) -> ApiResult<List<Subscription>> {
    let rows = sqlx::query(&format!("{SUB_SELECT} WHERE s.org_id = $1 AND ($2 = '' OR a.handle = $2) ORDER BY s.created_at, s.uuid"))
        .bind(&caller.org_id)
        .bind(filter.artifact_id.unwrap_or_default())
        .fetch_all(state.db.pool())
        .await?;
    let list = rows
        .iter()
        .map(sub_from_row)
        .collect::<ApiResult<Vec<_>>>()?;
    let n = list.len() as i64;
    Ok(List::new(list, n, (n.max(1), 0)))
}

/// Reads a subscription.
pub async fn get_subscription(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Subscription> {
    let mut conn = state.db.pool().acquire().await?;
    sub_from_row(&load_sub(&mut conn, &caller.org_id, id).await?)
}

/// Changes a subscription's status or plan.
pub async fn update_subscription(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: SubscriptionUpdate,
) -> ApiResult<Subscription> {
    let mut tx = state.begin_change().await?;
    let row = load_sub(tx.conn(), &caller.org_id, id).await?;
    let status = match req.status {
        Some(s) => s,
        None => parse_stored("subscription status", &row.try_get::<String, _>(5)?)?,
    };
    let plan: Option<String> = match &req.plan_id {
        Some(p) => Some(
            load_plan(tx.conn(), &caller.org_id, p)
                .await
                .map_err(|_| {
                    ApiError::UnknownReference(FieldError::new(
                        "planId",
                        format!("plan '{p}' does not exist"),
                    ))
                })?
                .uuid,
        ),
        None => row.try_get(10)?,
    };
    sqlx::query(
        "UPDATE subscriptions SET status = $1, plan_id = $2, updated_at = $3 WHERE uuid = $4",
    )
    .bind(status.as_str())
    .bind(plan)
    .bind(now_ms())
    .bind(id)
    .execute(tx.conn())
    .await?;
    let row = load_sub(tx.conn(), &caller.org_id, id).await?;
    let delivered = delivered_sub(&row)?;
    append_sub_events(&mut tx, &caller.org_id, RecordChange::Updated, delivered).await?;
    tx.commit().await?;
    sub_from_row(&row)
}

/// Deletes a subscription; its token stops working on every gateway.
pub async fn delete_subscription(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let mut tx = state.begin_change().await?;
    let row = load_sub(tx.conn(), &caller.org_id, id).await?;
    let delivered = delivered_sub(&row)?;
    sqlx::query("DELETE FROM subscriptions WHERE uuid = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    append_sub_events(&mut tx, &caller.org_id, RecordChange::Deleted, delivered).await?;
    tx.commit().await?;
    Ok(())
}

/// The organization's plans, for gateways.
pub async fn plans_for_gateway(state: &AppState, gw: &GatewayCaller) -> ApiResult<PlanList> {
    let rows = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE org_id = $1 ORDER BY handle"
    ))
    .bind(&gw.org_id)
    .fetch_all(state.db.pool())
    .await?;
    let subscription_plans = rows
        .iter()
        .map(|r| plan_from_row(r).map(|p| delivered_plan(&p)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(PlanList { subscription_plans })
}

/// The subscriptions of the artifacts this gateway holds (token hashes only).
pub async fn subscriptions_for_gateway(
    state: &AppState,
    gw: &GatewayCaller,
) -> ApiResult<SubscriptionList> {
    let rows = sqlx::query(&format!(
        "{SUB_SELECT} JOIN artifact_gateways ag ON ag.artifact_id = s.artifact_id AND ag.gateway_id = $1 ORDER BY s.created_at"
    ))
    .bind(&gw.gateway_id)
    .fetch_all(state.db.pool())
    .await?;
    let subscriptions = rows
        .iter()
        .map(delivered_sub)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(SubscriptionList { subscriptions })
}
