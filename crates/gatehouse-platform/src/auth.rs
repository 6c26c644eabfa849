//! Who is calling: login tokens for people and tools, registration tokens for gateways.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::access::Role;
use crate::crypto::sha256_hex;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::now_ms;

const ISSUER: &str = "gatehouse";

/// Signs and verifies login tokens (HS256).
pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    org: String,
    adm: bool,
    /// The role in `org`; absent from tokens issued before roles (then admin for the platform
    /// admin, viewer otherwise).
    #[serde(default)]
    rol: Option<Role>,
    /// The username, for the audit log.
    #[serde(default)]
    usr: String,
    /// The token's id, by which it is revoked (`POST /auth/logout`).
    #[serde(default)]
    jti: Option<String>,
    iat: i64,
    exp: i64,
    iss: String,
}

impl JwtKeys {
    /// Keys over a shared secret.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        Self {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Issues a token for `caller`, valid for `ttl_secs`; returns it with its expiry (ms).
    pub fn issue(&self, caller: &Caller, ttl_secs: i64) -> anyhow::Result<(String, i64)> {
        let now = now_ms() / 1000;
        let claims = Claims {
            sub: caller.user_id.clone(),
            org: caller.org_id.clone(),
            adm: caller.platform_admin,
            rol: Some(caller.role),
            usr: caller.username.clone(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            iat: now,
            exp: now + ttl_secs,
            iss: ISSUER.to_owned(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)?;
        Ok((token, (now + ttl_secs) * 1000))
    }

    fn verify(&self, token: &str) -> Option<Caller> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation).ok()?;
        let c = data.claims;
        Some(Caller {
            role: c
                .rol
                .unwrap_or(if c.adm { Role::Admin } else { Role::Viewer }),
            user_id: c.sub,
            username: c.usr,
            org_id: c.org,
            platform_admin: c.adm,
            token_id: None,
            login: c.jti.map(|id| LoginToken {
                id,
                expires_at_ms: c.exp * 1000,
            }),
        })
    }
}

/// A person or tool authenticated by a login token or an API token; every query is scoped to
/// `org_id`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub username: String,
    pub org_id: String,
    pub platform_admin: bool,
    /// The role in `org_id` (an API token's: at most its creator's).
    pub role: Role,
    /// The API token used, when not a login token.
    pub token_id: Option<String>,
    /// The login token used, when one was (what `POST /auth/logout` revokes).
    pub login: Option<LoginToken>,
}

/// A login token's id and expiry.
#[derive(Debug, Clone)]
pub struct LoginToken {
    pub id: String,
    pub expires_at_ms: i64,
}

/// Authenticates the `Authorization: Bearer` header: a login token, or an API token.
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Caller, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
        })?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into())
        })?
        .trim();
    let caller = if token.starts_with(crate::service::api_tokens::PREFIX) {
        crate::service::api_tokens::authenticate(state, token).await?
    } else {
        match state.jwt.verify(token) {
            Some(c) if revoked(state, &c).await? => None,
            other => other,
        }
    };
    caller.ok_or_else(|| ApiError::Unauthorized("invalid, revoked or expired token".into()))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Set by `access::authorize` for every route of the public API.
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        authenticate(state, &parts.headers).await
    }
}

/// Whether the login token `caller` came with was ended by `POST /auth/logout`.
async fn revoked(state: &AppState, caller: &Caller) -> Result<bool, ApiError> {
    let Some(login) = &caller.login else {
        return Ok(false);
    };
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM revoked_logins WHERE jti = $1")
        .bind(&login.id)
        .fetch_optional(state.db.pool())
        .await?;
    Ok(found.is_some())
}

/// A gateway authenticated by its registration token (`api-key` header).
#[derive(Debug, Clone)]
pub struct GatewayCaller {
    pub gateway_id: String,
    pub gateway_handle: String,
    pub org_id: String,
    pub token_id: String,
}

impl FromRequestParts<AppState> for GatewayCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("API key is required: provide the 'api-key' header".into())
            })?;
        authenticate_gateway(state, key)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid or revoked gateway token".into()))
    }
}

/// Resolves a gateway registration token to its gateway, if the token is active.
pub async fn authenticate_gateway(
    state: &AppState,
    token: &str,
) -> Result<Option<GatewayCaller>, ApiError> {
    let row = sqlx::query(
        "SELECT g.uuid, g.handle, g.org_id, t.uuid FROM gateway_tokens t JOIN gateways g ON g.uuid = t.gateway_id \
         WHERE t.token_hash = $1 AND t.status = $2",
    )
    .bind(sha256_hex(token))
    .bind(crate::service::gateways::TokenStatus::Active.as_str())
    .fetch_optional(state.db.pool())
    .await?;
    Ok(match row {
        Some(r) => Some(GatewayCaller {
            gateway_id: r.try_get(0)?,
            gateway_handle: r.try_get(1)?,
            org_id: r.try_get(2)?,
            token_id: r.try_get(3)?,
        }),
        None => None,
    })
}
