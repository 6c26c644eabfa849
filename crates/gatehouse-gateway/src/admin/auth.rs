//! HTTP basic auth of the management API (user `admin`).

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use gatehouse_core::crypto::{hash_password, random_token, verify_password};

use crate::store::Store;

const META_KEY: &str = "admin_password_hash";

/// The admin credential: an argon2 hash, with the digest of the password once verified so
/// that each request need not run argon2.
pub struct AdminCredentials {
    hash: String,
    verified: Mutex<Option<[u8; 32]>>,
}

impl AdminCredentials {
    /// The configured password, or the stored one, or a new one generated and printed once.
    pub async fn load(store: &Store, configured: Option<&str>) -> anyhow::Result<Self> {
        let hash = match configured.filter(|p| !p.is_empty()) {
            Some(p) => {
                let p = p.to_owned();
                let hash = tokio::task::spawn_blocking(move || hash_password(&p)).await??;
                store.set_meta(META_KEY, &hash).await?;
                hash
            }
            None => match store.meta(META_KEY).await? {
                Some(h) => h,
                None => {
                    let p = random_token("");
                    let p2 = p.clone();
                    let hash = tokio::task::spawn_blocking(move || hash_password(&p2)).await??;
                    store.set_meta(META_KEY, &hash).await?;
                    // Printed once on the terminal, never logged.
                    eprintln!("\n  Gatehouse gateway: management API user 'admin', password: {p}\n  It is not shown again.\n");
                    hash
                }
            },
        };
        Ok(Self {
            hash,
            verified: Mutex::new(None),
        })
    }

    async fn check(&self, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if let Some(known) = *self.verified.lock().unwrap_or_else(|e| e.into_inner()) {
            return constant_time_eq(&known, &digest);
        }
        let (p, h) = (password.to_owned(), self.hash.clone());
        let ok = tokio::task::spawn_blocking(move || verify_password(&p, &h))
            .await
            .unwrap_or(false);
        if ok {
            *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest);
        }
        ok
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized(message: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": "UNAUTHORIZED", "message": message})),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"gatehouse\""),
    );
    r
}

/// Middleware: only `admin` with the right password passes.
pub async fn require(
    State(creds): State<Arc<AdminCredentials>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return unauthorized("basic authentication required");
    };
    let decoded = value
        .strip_prefix("Basic ")
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return unauthorized("malformed basic credentials");
    };
    if user != "admin" || !creds.check(password).await {
        return unauthorized("invalid credentials");
    }
    next.run(req).await
}
