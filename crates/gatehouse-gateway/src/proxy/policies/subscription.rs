//! Subscriptions: an artifact that offers subscription plans needs a valid, active
//! `Subscription-Key` (403 otherwise), and the subscription's plan quotas apply (429 once spent
//! when the plan stops on quota). The header never reaches the upstream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderName};

use super::api_key_auth::key_digest;
use super::rate_limit::{Decision, RateLimit};

/// The header carrying the subscription token.
pub static HEADER: HeaderName = HeaderName::from_static("subscription-key");

/// One subscription as the data plane checks it.
pub struct SubEntry {
    pub id: Arc<str>,
    pub active: bool,
    /// The plan's quotas that stop requests once spent.
    pub quotas: Vec<Arc<RateLimit>>,
}

/// An artifact's subscriptions by the SHA-256 of their token.
pub type SubSet = HashMap<[u8; 32], SubEntry>;

/// Why a request was refused: 403 without a usable subscription, 429 once a quota is spent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscriptionError {
    #[error("a subscription is required: send the Subscription-Key header")]
    Missing,
    #[error("unknown or inactive subscription")]
    Invalid,
    #[error("subscription quota exceeded")]
    Quota(Decision),
}

/// Checks (and removes) the request's subscription token; gives back its subscription.
pub fn check<'a>(
    headers: &mut HeaderMap,
    subs: &'a SubSet,
) -> Result<&'a SubEntry, SubscriptionError> {
    let token = headers.remove(&HEADER).ok_or(SubscriptionError::Missing)?;
    let digest = token
        .to_str()
        .map(key_digest)
        .map_err(|_| SubscriptionError::Invalid)?;
    subs.get(&digest)
        .filter(|s| s.active)
        .ok_or(SubscriptionError::Invalid)
}

/// Spends one request of each of the plan's quotas; gives back the most restrictive quota
/// state for the `RateLimit-*` headers.
pub async fn spend(sub: &SubEntry, now: Instant) -> Result<Option<Decision>, SubscriptionError> {
    let mut tightest: Option<Decision> = None;
    for q in &sub.quotas {
        // Plan quotas never fail closed: without the shared store, the local count decides.
        let d = match q.decide(None, now).await {
            Ok(d) => d,
            Err(_) => q.check(None, now),
        };
        if !d.allowed {
            return Err(SubscriptionError::Quota(d));
        }
        if tightest.is_none_or(|t| d.remaining < t.remaining) {
            tightest = Some(d);
        }
    }
    Ok(tightest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::error::ProxyError;
    use http::StatusCode;
    use std::time::Duration;

    #[tokio::test]
    async fn needs_an_active_subscription_and_applies_its_quota() {
        let mut subs = SubSet::new();
        let quota = Arc::new(RateLimit::new(2, Duration::from_secs(60), false));
        subs.insert(
            key_digest("tok"),
            SubEntry {
                id: "s1".into(),
                active: true,
                quotas: vec![quota],
            },
        );
        subs.insert(
            key_digest("off"),
            SubEntry {
                id: "s2".into(),
                active: false,
                quotas: vec![],
            },
        );
        let now = Instant::now();
        let status = |e: SubscriptionError| ProxyError::from(e).into_response().status();
        let run = async |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(&HEADER, v.parse().unwrap());
            }
            let sub = check(&mut h, &subs).map_err(status);
            assert!(h.get(&HEADER).is_none(), "never forwarded");
            spend(sub?, now).await.map_err(status)
        };
        assert_eq!(run(None).await.unwrap_err(), StatusCode::FORBIDDEN);
        assert_eq!(run(Some("nope")).await.unwrap_err(), StatusCode::FORBIDDEN);
        assert_eq!(run(Some("off")).await.unwrap_err(), StatusCode::FORBIDDEN);
        assert_eq!(run(Some("tok")).await.unwrap().unwrap().remaining, 1);
        assert_eq!(run(Some("tok")).await.unwrap().unwrap().remaining, 0);
        assert_eq!(
            run(Some("tok")).await.unwrap_err(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
