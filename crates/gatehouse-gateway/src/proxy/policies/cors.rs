//! `cors`: preflight requests are answered at the gateway; other responses get the
//! `Access-Control-Allow-*` headers for allowed origins.

use gatehouse_core::policy::{CorsParams, HeaderNameParam};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::proxy::respond::{empty, GatewayResponse};

/// The compiled policy.
#[derive(Debug)]
pub struct Cors {
    origins: Vec<String>,
    any_origin: bool,
    methods: HeaderValue,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
}

fn joined(items: &[String]) -> Option<HeaderValue> {
    (!items.is_empty())
        .then(|| HeaderValue::from_str(&items.join(", ")).ok())
        .flatten()
}

impl Cors {
    /// From `allowOrigins`, `allowMethods`, `allowHeaders`, `exposeHeaders`, `maxAge`,
    /// `allowCredentials`.
    pub fn new(params: &CorsParams) -> Self {
        let origins = params.allow_origins.clone();
        let mut methods = params.allow_methods.clone();
        if methods.is_empty() {
            methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
                .map(String::from)
                .to_vec();
        }
        let names = |hs: &[HeaderNameParam]| -> Vec<String> {
            hs.iter().map(|h| h.as_str().to_owned()).collect()
        };
        Self {
            any_origin: origins.is_empty() || origins.iter().any(|o| o == "*"),
            origins,
            methods: joined(&methods).unwrap_or(HeaderValue::from_static("GET")),
            headers: joined(&names(&params.allow_headers)),
            expose: joined(&names(&params.expose_headers)),
            max_age: params.max_age.map(HeaderValue::from),
            credentials: params.allow_credentials.unwrap_or(false),
        }
    }

    fn allowed_origin<'a>(&self, origin: &'a HeaderValue) -> Option<&'a HeaderValue> {
        let o = origin.to_str().ok()?;
        (self.any_origin || self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)))
            .then_some(origin)
    }

    /// Answers a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<GatewayResponse> {
        if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let mut r = empty(StatusCode::NO_CONTENT);
        let Some(allowed) = self.allowed_origin(origin) else {
            // Not an allowed origin: answer without CORS headers, so the browser refuses.
            return Some(r);
        };
        let h = r.headers_mut();
        self.origin_headers(allowed, h);
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
        match (
            &self.headers,
            headers.get(http::header::ACCESS_CONTROL_REQUEST_HEADERS),
        ) {
            (Some(v), _) => {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
            }
            (None, Some(requested)) => {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
            }
            (None, None) => {}
        }
        if let Some(m) = &self.max_age {
            h.insert(ACCESS_CONTROL_MAX_AGE, m.clone());
        }
        Some(r)
    }

    fn origin_headers(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        if self.any_origin && !self.credentials {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.append(VARY, HeaderValue::from_static("Origin"));
        }
        if self.credentials {
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// Adds the CORS headers to a response for a request from `origin`.
    pub fn apply(&self, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
        let Some(allowed) = origin.and_then(|o| self.allowed_origin(o)) else {
            return;
        };
        self.origin_headers(allowed, h);
        if let Some(e) = &self.expose {
            h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cors(p: serde_json::Value) -> Cors {
        Cors::new(&serde_json::from_value(p).unwrap())
    }

    fn preflight_headers(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, origin.parse().unwrap());
        h.insert(ACCESS_CONTROL_REQUEST_METHOD, "POST".parse().unwrap());
        h
    }

    #[test]
    fn preflight_is_answered_for_allowed_origins_only() {
        let c = cors(
            json!({"allowOrigins": ["https://app.example"], "allowMethods": ["GET", "POST"], "allowHeaders": ["Content-Type"], "maxAge": 600}),
        );
        let r = c
            .preflight(&Method::OPTIONS, &preflight_headers("https://app.example"))
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            r.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_HEADERS], "Content-Type");
        assert_eq!(r.headers()[ACCESS_CONTROL_MAX_AGE], "600");
        let r = c
            .preflight(&Method::OPTIONS, &preflight_headers("https://evil.example"))
            .unwrap();
        assert!(r.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert!(c
            .preflight(&Method::GET, &preflight_headers("https://app.example"))
            .is_none());
        assert!(
            c.preflight(&Method::OPTIONS, &HeaderMap::new()).is_none(),
            "a plain OPTIONS is not a preflight"
        );
    }

    #[test]
    fn responses_get_origin_headers() {
        let c = cors(json!({"allowOrigins": ["*"], "exposeHeaders": ["X-Trace"]}));
        let mut h = HeaderMap::new();
        c.apply(Some(&"https://x.example".parse().unwrap()), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "X-Trace");
        let mut h = HeaderMap::new();
        c.apply(None, &mut h);
        assert!(h.is_empty());
    }
}
