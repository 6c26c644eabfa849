CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    handle TEXT NOT NULL,
    context TEXT NOT NULL,
    document TEXT NOT NULL,
    state TEXT NOT NULL,
    origin TEXT NOT NULL,
    artifact_uuid TEXT,
    deployment_id TEXT,
    deployed_at TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (kind, handle)
);
CREATE UNIQUE INDEX IF NOT EXISTS artifacts_uuid ON artifacts(artifact_uuid) WHERE artifact_uuid IS NOT NULL;
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    masked TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (artifact_id, key_hash)
);
CREATE TABLE IF NOT EXISTS plans (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    limits TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
    subscriber_id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    plan_id TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (artifact_id, token_hash)
);
