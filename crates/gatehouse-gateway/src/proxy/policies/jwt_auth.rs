//! `jwt-auth`: a request needs a bearer JWT signed by a key the issuer publishes (JWKS, fetched
//! and cached, fetched again for an unknown `kid` at most once per `MIN_REFRESH`), issued by the
//! configured issuer for one of the audiences, unexpired, with the required scopes. RSA, ECDSA
//! and EdDSA signatures only: `none` does not parse and HMAC is refused, so a public key can
//! never be used as a shared secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use gatehouse_core::policy::JwtAuthParams;

/// The least time between two fetches of one JWKS for unknown keys.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// 401: no bearer token.
    #[error("a bearer token is required")]
    Missing,
    /// 401: the token is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// 403: a valid token without a required scope.
    #[error("the token lacks scope '{0}'")]
    InsufficientScope(String),
}

impl JwtError {
    /// The `WWW-Authenticate` value (RFC 6750), with the MCP protected-resource metadata URL
    /// when there is one.
    pub fn challenge(&self, resource_metadata: Option<&str>) -> HeaderValue {
        let mut v = String::from("Bearer realm=\"gatehouse\"");
        match self {
            JwtError::Missing => {}
            JwtError::Invalid(why) => v.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                why.replace('"', "'")
            )),
            JwtError::InsufficientScope(s) => {
                v.push_str(&format!(", error=\"insufficient_scope\", scope=\"{s}\""))
            }
        }
        if let Some(url) = resource_metadata {
            v.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("Bearer"))
    }
}

/// The keys of one JWKS URL, shared by every policy naming it.
pub struct Jwks {
    url: String,
    keys: ArcSwap<HashMap<String, Arc<DecodingKey>>>,
    last_fetch: Mutex<Option<Instant>>,
    refresh: tokio::sync::Mutex<()>,
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default()
    })
}

impl Jwks {
    /// The process's cache of `url`.
    pub fn of(url: &str) -> Arc<Jwks> {
        static ALL: OnceLock<Mutex<HashMap<String, Arc<Jwks>>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.entry(url.to_owned())
            .or_insert_with(|| {
                Arc::new(Jwks {
                    url: url.to_owned(),
                    keys: ArcSwap::from_pointee(HashMap::new()),
                    last_fetch: Mutex::new(None),
                    refresh: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
        let keys = self.keys.load();
        match kid {
            Some(k) => keys.get(k).cloned(),
            // A token without `kid` may use the only key there is.
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// The key `kid`, fetching the JWKS when it is unknown (at most once per `MIN_REFRESH`).
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, JwtError> {
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        let _one_fetch = self.refresh.lock().await;
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        let recent = self
            .last_fetch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < MIN_REFRESH);
        if !recent {
            *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => self.keys.store(Arc::new(keys)),
                Err(e) => tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed"),
            }
        }
        self.lookup(kid).ok_or_else(|| {
            JwtError::Invalid(match kid {
                Some(k) => format!("no key '{k}' in the issuer's key set"),
                None => "the token names no key (kid)".into(),
            })
        })
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, Arc<DecodingKey>>> {
        let set: JwkSet = http()
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            match DecodingKey::from_jwk(jwk) {
                Ok(k) => {
                    let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
                    keys.insert(kid, Arc::new(k));
                }
                Err(e) => tracing::warn!(url = %self.url, key = i, error = %e, "JWKS key skipped"),
            }
        }
        Ok(keys)
    }
}

/// The compiled policy.
pub struct JwtAuth {
    jwks: Arc<Jwks>,
    issuer: String,
    audiences: Vec<String>,
    scopes: Vec<String>,
    skew: Duration,
    forward: Vec<(String, HeaderName)>,
}

/// Signature algorithms accepted: asymmetric only.
fn asymmetric(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

/// The scopes a token holds (`scope` space-separated, or `scp` as a list or string).
pub fn scopes(claims: &Value) -> Vec<&str> {
    let mut out = vec![];
    for key in ["scope", "scp"] {
        match &claims[key] {
            Value::String(s) => out.extend(s.split_whitespace()),
            Value::Array(a) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

impl JwtAuth {
    /// From the policy's params.
    pub fn new(p: &JwtAuthParams) -> Self {
        Self {
            jwks: Jwks::of(&p.jwks_url),
            issuer: p.issuer.clone(),
            audiences: p.audiences.clone(),
            scopes: p.required_scopes.clone(),
            skew: p
                .clock_skew
                .as_ref()
                .map_or(Duration::from_secs(60), |w| w.duration()),
            forward: p
                .forward_claims
                .iter()
                .map(|(claim, h)| (claim.clone(), h.header_name().clone()))
                .collect(),
        }
    }

    /// The issuer, for protected-resource metadata.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The scopes required, for protected-resource metadata.
    pub fn required_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Checks the request's token and sets the forwarded claims' headers; returns the claims.
    pub async fn check(&self, headers: &mut HeaderMap) -> Result<Value, JwtError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(JwtError::Missing)?
            .to_owned();
        let head = jsonwebtoken::decode_header(&token)
            .map_err(|e| JwtError::Invalid(format!("the token cannot be read: {e}")))?;
        if !asymmetric(head.alg) {
            return Err(JwtError::Invalid(format!(
                "tokens signed with {:?} are refused; RSA, ECDSA or EdDSA only",
                head.alg
            )));
        }
        let key = self.jwks.key(head.kid.as_deref()).await?;
        let mut v = Validation::new(head.alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.audiences);
        v.leeway = self.skew.as_secs();
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            JwtError::Invalid(match e.kind() {
                K::ExpiredSignature => "the token has expired".into(),
                K::ImmatureSignature => "the token is not valid yet".into(),
                K::InvalidAudience => "the token is for another audience".into(),
                K::InvalidIssuer => "the token is from another issuer".into(),
                K::InvalidSignature => "the token's signature does not verify".into(),
                K::MissingRequiredClaim(c) => format!("the token lacks claim '{c}'"),
                _ => format!("the token is not valid: {e}"),
            })
        })?;
        let held = scopes(&data.claims);
        if let Some(missing) = self.scopes.iter().find(|s| !held.contains(&s.as_str())) {
            return Err(JwtError::InsufficientScope(missing.clone()));
        }
        for (claim, name) in &self.forward {
            let value = match &data.claims[claim.as_str()] {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name.clone(), v);
            }
        }
        Ok(data.claims)
    }
}
