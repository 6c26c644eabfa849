//! The one error type of the local store.

use std::path::PathBuf;

/// Why the local store refused a write or could not answer a read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An artifact with the same kind and handle is already held.
    #[error("configuration already exists: {0}")]
    AlreadyExists(String),
    /// The write clashes with what is held (a context served twice, a key registered twice).
    #[error("{0}")]
    Conflict(String),
    /// The row to change or delete is not held.
    #[error("not found")]
    NotFound,
    /// The database refused or failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The data directory or its sealing key could not be created, read or written.
    #[error("{path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The sealing key file exists but is not a usable key.
    #[error("{path}: {reason}")]
    DataKey { path: PathBuf, reason: String },
    /// A stored payload (a document, plan limits, a metadata value) cannot be read back.
    #[error("{table} row '{id}': unreadable {column}: {reason}")]
    UnreadablePayload {
        table: &'static str,
        id: String,
        column: &'static str,
        reason: String,
    },
    /// A row holds a value this build does not know (e.g. an artifact `state`).
    #[error("{table} row '{id}': unknown {column} '{value}'")]
    UnknownValue {
        table: &'static str,
        id: String,
        column: &'static str,
        value: String,
    },
    /// A value could not be encoded for storage.
    #[error("encoding {what} for storage: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    /// The store was written by a newer build; opening it could corrupt it.
    #[error(
        "the gateway store's schema is version {found}, newer than this build knows ({known}); upgrade gatehouse"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// A schema migration failed (its transaction was rolled back).
    #[error("applying gateway store migration {version} ({name}): {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
}
