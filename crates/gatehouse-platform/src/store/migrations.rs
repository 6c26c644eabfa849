//! Versioned schema migrations, applied in order at start, each in its own transaction.
//!
//! Each migration has a SQLite and a PostgreSQL text; they differ only in column types.

use sqlx::Executor;

use super::{Backend, Db};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// The schema. `{INT}` is the 64-bit integer type of the backend.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: r#"
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE organizations (
    uuid TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at {INT} NOT NULL
);
CREATE TABLE org_revisions (
    org_id TEXT PRIMARY KEY REFERENCES organizations(uuid) ON DELETE CASCADE,
    revision {INT} NOT NULL,
    compacted_through {INT} NOT NULL DEFAULT 0
);
CREATE TABLE users (
    uuid TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    platform_admin {INT} NOT NULL,
    created_at {INT} NOT NULL
);
CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users(uuid) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    PRIMARY KEY (user_id, org_id)
);
CREATE TABLE projects (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    UNIQUE (org_id, handle)
);
CREATE TABLE gateways (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT,
    applied_revision {INT} NOT NULL DEFAULT 0,
    last_seen_at {INT},
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    UNIQUE (org_id, handle)
);
CREATE TABLE gateway_tokens (
    uuid TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL REFERENCES gateways(uuid) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at {INT} NOT NULL,
    revoked_at {INT}
);
CREATE INDEX gateway_tokens_gateway ON gateway_tokens(gateway_id);
CREATE TABLE artifacts (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    handle TEXT NOT NULL,
    display_name TEXT NOT NULL,
    project_id TEXT REFERENCES projects(uuid),
    provider_id TEXT REFERENCES artifacts(uuid),
    spec TEXT NOT NULL,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    UNIQUE (org_id, kind, handle)
);
CREATE INDEX artifacts_provider ON artifacts(provider_id);
CREATE INDEX artifacts_project ON artifacts(project_id);
CREATE TABLE deployments (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    artifact_id TEXT NOT NULL REFERENCES artifacts(uuid) ON DELETE CASCADE,
    gateway_id TEXT NOT NULL REFERENCES gateways(uuid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    base_deployment_id TEXT,
    content TEXT NOT NULL,
    created_at {INT} NOT NULL
);
CREATE INDEX deployments_artifact_gateway ON deployments(artifact_id, gateway_id, created_at);
CREATE TABLE deployment_status (
    artifact_id TEXT NOT NULL REFERENCES artifacts(uuid) ON DELETE CASCADE,
    gateway_id TEXT NOT NULL REFERENCES gateways(uuid) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    deployment_id TEXT NOT NULL REFERENCES deployments(uuid) ON DELETE CASCADE,
    status TEXT NOT NULL,
    desired TEXT NOT NULL,
    status_reason TEXT,
    status_message TEXT,
    performed_at {INT} NOT NULL,
    context TEXT NOT NULL,
    updated_at {INT} NOT NULL,
    PRIMARY KEY (artifact_id, gateway_id)
);
CREATE INDEX deployment_status_gateway ON deployment_status(gateway_id);
CREATE INDEX deployment_status_pending ON deployment_status(status, performed_at);
CREATE TABLE artifact_gateways (
    artifact_id TEXT NOT NULL REFERENCES artifacts(uuid) ON DELETE CASCADE,
    gateway_id TEXT NOT NULL REFERENCES gateways(uuid) ON DELETE CASCADE,
    PRIMARY KEY (artifact_id, gateway_id)
);
CREATE TABLE events (
    org_id TEXT NOT NULL,
    revision {INT} NOT NULL,
    event_type TEXT NOT NULL,
    target_gateway_id TEXT,
    correlation_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at {INT} NOT NULL,
    PRIMARY KEY (org_id, revision)
);
CREATE INDEX events_created ON events(created_at);
"#,
    },
    Migration {
        version: 2,
        name: "api keys",
        sql: r#"
CREATE TABLE api_keys (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    artifact_id TEXT NOT NULL REFERENCES artifacts(uuid) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    display_name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    masked TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at {INT},
    created_at {INT} NOT NULL,
    revoked_at {INT},
    UNIQUE (artifact_id, handle),
    UNIQUE (artifact_id, key_hash)
);
"#,
    },
    Migration {
        version: 3,
        name: "subscription plans and subscriptions",
        sql: r#"
CREATE TABLE subscription_plans (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    display_name TEXT NOT NULL,
    limits TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    UNIQUE (org_id, handle)
);
CREATE TABLE subscriptions (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    artifact_id TEXT NOT NULL REFERENCES artifacts(uuid) ON DELETE CASCADE,
    subscriber_id TEXT NOT NULL,
    plan_id TEXT REFERENCES subscription_plans(uuid),
    token_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    UNIQUE (artifact_id, token_hash)
);
CREATE INDEX subscriptions_plan ON subscriptions(plan_id);
"#,
    },
    Migration {
        version: 4,
        name: "statuses spelled lowercase",
        // Subscription and plan statuses were stored as ACTIVE/INACTIVE; every status of keys,
        // subscriptions and plans is now lowercase (active, inactive, revoked).
        sql: r#"
UPDATE subscriptions SET status = LOWER(status) WHERE status <> LOWER(status);
UPDATE subscription_plans SET status = LOWER(status) WHERE status <> LOWER(status);
UPDATE api_keys SET status = LOWER(status) WHERE status <> LOWER(status);
"#,
    },
    Migration {
        version: 5,
        name: "LLM provider templates and the providers of LLM proxies",
        // An LLM proxy may name several providers; each is a row here (the first also stays in
        // artifacts.provider_id). Existing proxies keep their one provider.
        sql: r#"
CREATE TABLE llm_templates (
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    PRIMARY KEY (org_id, handle)
);
CREATE TABLE llm_proxy_providers (
    proxy_id TEXT NOT NULL REFERENCES artifacts(uuid) ON DELETE CASCADE,
    provider_id TEXT NOT NULL REFERENCES artifacts(uuid),
    position {INT} NOT NULL,
    PRIMARY KEY (proxy_id, provider_id)
);
CREATE INDEX llm_proxy_providers_provider ON llm_proxy_providers(provider_id);
INSERT INTO llm_proxy_providers (proxy_id, provider_id, position)
    SELECT uuid, provider_id, 0 FROM artifacts WHERE provider_id IS NOT NULL;
"#,
    },
    Migration {
        version: 6,
        name: "secrets",
        // Values sealed with the platform's key; the fingerprint is a keyed hash.
        sql: r#"
CREATE TABLE secrets (
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    handle TEXT NOT NULL,
    display_name TEXT NOT NULL,
    sealed_value TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    PRIMARY KEY (org_id, handle)
);
"#,
    },
    Migration {
        version: 7,
        name: "secrets referenced by artifacts",
        // Which secrets each artifact's spec references, so that a referenced secret is not
        // deleted.
        sql: r#"
CREATE TABLE artifact_secret_refs (
    artifact_id TEXT NOT NULL REFERENCES artifacts(uuid) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    secret_handle TEXT NOT NULL,
    PRIMARY KEY (artifact_id, secret_handle)
);
CREATE INDEX artifact_secret_refs_secret ON artifact_secret_refs(org_id, secret_handle);
"#,
    },
    Migration {
        version: 8,
        name: "secrets referenced by deployments",
        // Which secrets each deployment's content references: what a gateway serving it may
        // read, and what may not be deleted while it is served.
        sql: r#"
CREATE TABLE deployment_secret_refs (
    deployment_id TEXT NOT NULL REFERENCES deployments(uuid) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    secret_handle TEXT NOT NULL,
    PRIMARY KEY (deployment_id, secret_handle)
);
CREATE INDEX deployment_secret_refs_secret ON deployment_secret_refs(org_id, secret_handle);
"#,
    },
    Migration {
        version: 9,
        name: "gateway-origin artifacts",
        // Artifacts a gateway created through its own management API and published: the
        // gateway that owns them (NULL: made through the public API) and the state it holds
        // them in; handles a gateway could not publish because another artifact holds them.
        // (No foreign key on the added column: deleting a gateway deletes its artifacts
        // explicitly, in `service::gateways::delete`.)
        sql: r#"
ALTER TABLE artifacts ADD COLUMN origin_gateway_id TEXT;
ALTER TABLE artifacts ADD COLUMN origin_state TEXT;
CREATE INDEX artifacts_origin_gateway ON artifacts(origin_gateway_id);
CREATE TABLE gateway_artifact_conflicts (
    gateway_id TEXT NOT NULL REFERENCES gateways(uuid) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    handle TEXT NOT NULL,
    message TEXT NOT NULL,
    reported_at {INT} NOT NULL,
    PRIMARY KEY (gateway_id, kind, handle)
);
"#,
    },
    Migration {
        version: 10,
        name: "roles, API tokens and the audit log",
        // Members so far were the admin (the only user there was).
        sql: r#"
ALTER TABLE memberships ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
CREATE TABLE api_tokens (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(uuid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at {INT} NOT NULL,
    expires_at {INT},
    revoked_at {INT},
    last_used_at {INT}
);
CREATE INDEX api_tokens_user ON api_tokens(org_id, user_id);
CREATE TABLE audit_log (
    uuid TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    at {INT} NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    via TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status {INT} NOT NULL,
    address TEXT
);
CREATE INDEX audit_log_org_at ON audit_log(org_id, at);
"#,
    },
    Migration {
        version: 11,
        name: "console sessions",
        // A signed-in console user: the cookie holds a random id, the table its hash, so that
        // signing out ends the session here and a copy of the table opens nothing.
        sql: r#"
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(uuid) ON DELETE CASCADE,
    username TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(uuid) ON DELETE CASCADE,
    org_handle TEXT NOT NULL,
    role TEXT NOT NULL,
    platform_admin {INT} NOT NULL,
    csrf TEXT NOT NULL,
    created_at {INT} NOT NULL,
    expires_at {INT} NOT NULL
);
"#,
    },
    Migration {
        version: 12,
        name: "login throttling and login-token revocation",
        sql: r#"
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures {INT} NOT NULL,
    last_failure_at {INT} NOT NULL,
    locked_until {INT}
);
CREATE TABLE revoked_logins (
    jti TEXT PRIMARY KEY,
    expires_at {INT} NOT NULL
);
"#,
    },
];

fn render(sql: &str, backend: Backend) -> String {
    let int = match backend {
        Backend::Sqlite => "INTEGER",
        Backend::Postgres => "BIGINT",
    };
    sql.replace("{INT}", int)
}

/// Applies every migration newer than the database's version.
pub(super) async fn apply(db: &Db) -> anyhow::Result<()> {
    let mut tx = db.write().await?;
    if db.backend() == Backend::Postgres {
        // Replicas starting together migrate one at a time.
        tx.conn()
            .execute("SELECT pg_advisory_xact_lock(7242011)")
            .await?;
    }
    tx.conn()
        .execute(sqlx::raw_sql(&render(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version {INT} PRIMARY KEY, name TEXT NOT NULL, applied_at {INT} NOT NULL)",
            db.backend(),
        )))
        .await?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(tx.conn())
        .await?;
    let current = current.unwrap_or(0);
    let latest = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    if current > latest {
        anyhow::bail!(
            "the database schema is version {current}, newer than this build knows ({latest}); upgrade gatehouse"
        );
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(version = m.version, name = m.name, "applying migration");
        tx.conn()
            .execute(sqlx::raw_sql(&render(m.sql, db.backend())))
            .await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(super::now_ms())
        .execute(tx.conn())
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
