//! LLM provider templates: the six built in, and an organization's own (same shape), which its
//! providers name in `template`. A provider's deployment carries its custom template's
//! definition as it was at deploy time (`spec.templateDefinition`), so a gateway needs no
//! template store; changing a template takes effect at the provider's next deployment.

use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use gatehouse_core::llm::{self, LlmTemplate};
use gatehouse_core::spec::ArtifactSpec;
use gatehouse_core::FieldError;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{List, Page};
use crate::store::{format_ms, is_unique_violation, now_ms, Db};

/// A template as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    #[serde(flatten)]
    pub template: LlmTemplate,
    /// Built into Gatehouse (read-only), or the organization's own.
    pub built_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

fn builtin_view(t: &LlmTemplate) -> TemplateView {
    TemplateView {
        template: t.clone(),
        built_in: true,
        created_at: None,
        updated_at: None,
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> ApiResult<TemplateView> {
    let doc: String = row.try_get(0)?;
    let template: LlmTemplate = serde_json::from_str(&doc)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored LLM template is invalid: {e}")))?;
    Ok(TemplateView {
        template,
        built_in: false,
        created_at: Some(format_ms(row.try_get(1)?)),
        updated_at: Some(format_ms(row.try_get(2)?)),
    })
}

/// The organization's template `id`, if it has one.
pub async fn find(
    conn: &mut AnyConnection,
    org_id: &str,
    id: &str,
) -> ApiResult<Option<LlmTemplate>> {
    let row = sqlx::query(
        "SELECT document, created_at, updated_at FROM llm_templates WHERE org_id = $1 AND handle = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| from_row(&r).map(|v| v.template)).transpose()
}

/// Lists the built-in templates, then the organization's own (by id), one page of them.
pub async fn list(db: &Db, caller: &Caller, page: Page) -> ApiResult<List<TemplateView>> {
    let (limit, offset) = page.bounds()?;
    let mut all: Vec<TemplateView> = llm::builtins().iter().map(builtin_view).collect();
    let rows = sqlx::query(
        "SELECT document, created_at, updated_at FROM llm_templates WHERE org_id = $1 ORDER BY handle",
    )
    .bind(&caller.org_id)
    .fetch_all(db.pool())
    .await?;
    for r in &rows {
        all.push(from_row(r)?);
    }
    let total = all.len() as i64;
    // Bounds are validated: 1 <= limit <= 1000 and offset >= 0.
    let out = all
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    Ok(List::new(out, total, (limit, offset)))
}

/// Ids of the organization's own templates, in order.
async fn own_ids(conn: &mut AnyConnection, org_id: &str) -> ApiResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT handle FROM llm_templates WHERE org_id = $1 ORDER BY handle")
            .bind(org_id)
            .fetch_all(conn)
            .await?,
    )
}

/// Reads one template.
pub async fn get(db: &Db, caller: &Caller, id: &str) -> ApiResult<TemplateView> {
    if let Some(t) = llm::builtin(id) {
        return Ok(builtin_view(t));
    }
    let row = sqlx::query(
        "SELECT document, created_at, updated_at FROM llm_templates WHERE org_id = $1 AND handle = $2",
    )
    .bind(&caller.org_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found("LLM provider template", id))?;
    from_row(&row)
}

fn refuse_builtin(id: &str) -> ApiResult<()> {
    if llm::builtin(id).is_some() {
        return Err(ApiError::Conflict(format!(
            "LLM provider template '{id}' is built in and cannot be changed or deleted; create one with another id"
        )));
    }
    Ok(())
}

/// Creates one of the organization's templates.
pub async fn create(db: &Db, caller: &Caller, body: Value) -> ApiResult<TemplateView> {
    let t = LlmTemplate::parse(body)?;
    refuse_builtin(&t.id)?;
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO llm_templates (org_id, handle, document, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(&caller.org_id)
    .bind(&t.id)
    .bind(serde_json::to_string(&t).map_err(|e| ApiError::Internal(e.into()))?)
    .bind(now)
    .execute(db.pool())
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Err(ApiError::Conflict(format!(
            "LLM provider template '{}' already exists",
            t.id
        ))),
        Err(e) => Err(e.into()),
        Ok(_) => get(db, caller, &t.id).await,
    }
}

/// Replaces one of the organization's templates (its id is immutable).
pub async fn replace(
    db: &Db,
    caller: &Caller,
    id: &str,
    mut body: Value,
) -> ApiResult<TemplateView> {
    refuse_builtin(id)?;
    // A template of another organization is not found, whatever the body says.
    get(db, caller, id).await?;
    if let Some(o) = body.as_object_mut() {
        // Read-only fields a client may echo back from a GET.
        for key in ["builtIn", "createdAt", "updatedAt"] {
            o.remove(key);
        }
        match o.get("id") {
            None => {
                o.insert("id".into(), Value::String(id.to_owned()));
            }
            Some(v) if v.as_str() != Some(id) => {
                return Err(ApiError::Immutable(FieldError::new(
                    "id",
                    format!("is immutable: it must be '{id}'"),
                )))
            }
            Some(_) => {}
        }
    }
    let t = LlmTemplate::parse(body)?;
    let n = sqlx::query(
        "UPDATE llm_templates SET document = $1, updated_at = $2 WHERE org_id = $3 AND handle = $4",
    )
    .bind(serde_json::to_string(&t).map_err(|e| ApiError::Internal(e.into()))?)
    .bind(now_ms())
    .bind(&caller.org_id)
    .bind(id)
    .execute(db.pool())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("LLM provider template", id));
    }
    get(db, caller, id).await
}

/// Deletes one of the organization's templates, unless a provider names it.
pub async fn delete(db: &Db, caller: &Caller, id: &str) -> ApiResult<()> {
    refuse_builtin(id)?;
    let mut tx = db.write().await?;
    let providers: Vec<(String, String)> = sqlx::query_as(
        "SELECT handle, spec FROM artifacts WHERE org_id = $1 AND kind = 'LlmProvider' ORDER BY handle",
    )
    .bind(&caller.org_id)
    .fetch_all(tx.conn())
    .await?;
    let users: Vec<String> = providers
        .into_iter()
        .filter(|(_, spec)| {
            serde_json::from_str::<Value>(spec)
                .is_ok_and(|v| v.get("template").and_then(Value::as_str) == Some(id))
        })
        .map(|(h, _)| format!("'{h}'"))
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "LLM provider template '{id}' is used by LLM providers {}; point them at another template first",
            users.join(", ")
        )));
    }
    let n = sqlx::query("DELETE FROM llm_templates WHERE org_id = $1 AND handle = $2")
        .bind(&caller.org_id)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("LLM provider template", id));
    }
    tx.commit().await?;
    Ok(())
}

/// Checks a provider's template when it is created or replaced: built in or the
/// organization's, and never a definition of the caller's own making.
pub async fn check_provider(
    conn: &mut AnyConnection,
    org_id: &str,
    spec: &ArtifactSpec,
) -> ApiResult<()> {
    let ArtifactSpec::LlmProvider(p) = spec else {
        return Ok(());
    };
    if p.template_definition.is_some() {
        return Err(FieldError::new(
            "templateDefinition",
            "is set by the control plane when it deploys the provider; name the template in template",
        )
        .into());
    }
    if llm::builtin(&p.template).is_none() && find(conn, org_id, &p.template).await?.is_none() {
        let mut e = p.unresolved_template_error();
        let own = own_ids(conn, org_id).await?;
        if !own.is_empty() {
            e.message
                .push_str(&format!(" (this organization has {})", own.join(", ")));
        }
        // Like a provider or a plan a body names that does not exist: 404 naming the field.
        return Err(crate::error::ApiError::UnknownReference(e));
    }
    Ok(())
}

/// Puts the definition of a provider's custom template into a deployment's content.
pub async fn embed_definition(
    conn: &mut AnyConnection,
    org_id: &str,
    content: &mut Value,
) -> ApiResult<()> {
    let Some(spec) = content.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let Some(id) = spec
        .get("template")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(());
    };
    if llm::builtin(&id).is_some() {
        return Ok(());
    }
    let t = find(conn, org_id, &id).await?.ok_or_else(|| {
        ApiError::Conflict(format!(
            "LLM provider template '{id}' no longer exists; create it again or point the provider at another"
        ))
    })?;
    spec.insert(
        "templateDefinition".into(),
        serde_json::to_value(t).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(())
}
