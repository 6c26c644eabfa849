//! Every way the data plane refuses or fails a request, answered in one JSON shape
//! (`{"error": <reason phrase>, "message": <why>}`) and counted in metrics by its status.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::policies::api_key_auth::AuthError;
use super::policies::jwt_auth::JwtError;
use super::policies::rate_limit::{Decision, RateLimit};
use super::policies::subscription::SubscriptionError;
use super::respond::{json, json_error, GatewayResponse};

/// Why the data plane did not forward a request, or why forwarding failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// 400: the request cannot be forwarded as sent.
    #[error("{0}")]
    BadRequest(&'static str),
    /// 401: `api-key-auth` refused the request.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// 401 (403 for a missing scope): `jwt-auth` refused the token; an MCP proxy names its
    /// protected-resource metadata in the challenge.
    #[error("{0}")]
    Jwt(JwtError, Option<Arc<str>>),
    /// 403: an LLM provider's access control does not allow this path.
    #[error("this path is not allowed by the provider's access control")]
    AccessDenied,
    /// 403: no valid subscription.
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    /// 413: the body is larger than the API's `maxRequestBody`.
    #[error("the request body is larger than {0} bytes (the API's maxRequestBody)")]
    PayloadTooLarge(u64),
    /// 404: no artifact, operation or upstream serves this request.
    #[error("Not Found")]
    NotFound,
    /// 429: a rate limit or a plan quota is spent; the decision fills `RateLimit-*`.
    #[error("rate limit exceeded")]
    RateLimited(Decision),
    /// 502: the upstream connection failed mid-exchange.
    #[error("upstream connection failed")]
    BadGateway,
    /// 503: the artifact cannot be served right now (e.g. its provider is not deployed).
    #[error("{0}")]
    Unavailable(Arc<str>),
    /// 503: no connection to the upstream could be made.
    #[error("upstream unavailable")]
    UpstreamUnavailable,
    /// 504: the upstream's response headers did not arrive in time.
    #[error("upstream timed out")]
    GatewayTimeout,
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ProxyError::Jwt(JwtError::InsufficientScope(_), _) => StatusCode::FORBIDDEN,
            ProxyError::Jwt(..) => StatusCode::UNAUTHORIZED,
            ProxyError::AccessDenied => StatusCode::FORBIDDEN,
            ProxyError::Subscription(SubscriptionError::Quota(_)) => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::Subscription(_) => StatusCode::FORBIDDEN,
            ProxyError::NotFound => StatusCode::NOT_FOUND,
            ProxyError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::BadGateway => StatusCode::BAD_GATEWAY,
            ProxyError::Unavailable(_) | ProxyError::UpstreamUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The response: the JSON error body, with `RateLimit-*` and `Retry-After` on a 429.
    pub fn into_response(self) -> GatewayResponse {
        let status = self.status();
        if let ProxyError::NotFound = self {
            // The most common refusal: a static body, nothing to format.
            return json(status, Bytes::from_static(br#"{"error":"Not Found"}"#));
        }
        let reason = status.canonical_reason().unwrap_or("Error");
        let mut r = json_error(status, reason, &self.to_string());
        let decision = match &self {
            ProxyError::RateLimited(d) | ProxyError::Subscription(SubscriptionError::Quota(d)) => {
                Some(d)
            }
            _ => None,
        };
        if let Some(d) = decision {
            let h = r.headers_mut();
            RateLimit::headers(d, h);
            h.insert("retry-after", HeaderValue::from(d.reset_secs));
        }
        if let ProxyError::Jwt(e, metadata) = &self {
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                e.challenge(metadata.as_deref()),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_status_and_the_json_shape() {
        let d = Decision {
            allowed: false,
            limit: 3,
            remaining: 0,
            reset_secs: 6,
        };
        let cases = [
            (ProxyError::BadRequest("bad path"), 400),
            (ProxyError::Unauthorized(AuthError::Missing), 401),
            (ProxyError::AccessDenied, 403),
            (ProxyError::Subscription(SubscriptionError::Missing), 403),
            (ProxyError::NotFound, 404),
            (ProxyError::RateLimited(d), 429),
            (ProxyError::Subscription(SubscriptionError::Quota(d)), 429),
            (ProxyError::BadGateway, 502),
            (ProxyError::Unavailable("provider away".into()), 503),
            (ProxyError::UpstreamUnavailable, 503),
            (ProxyError::GatewayTimeout, 504),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            let r = e.into_response();
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(r.headers()["content-type"], "application/json");
            if status == 429 {
                assert_eq!(r.headers()["retry-after"], "6");
                assert_eq!(r.headers()["ratelimit-remaining"], "0");
            }
        }
    }
}
