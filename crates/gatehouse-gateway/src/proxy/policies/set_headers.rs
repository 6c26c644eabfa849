//! `set-headers`: set and remove request headers (towards the upstream) and response headers
//! (towards the client).

use gatehouse_core::policy::{HeaderEdits, SetHeadersParams};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Header edits of one side.
#[derive(Debug, Default, Clone)]
pub struct Edits {
    set: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl Edits {
    /// Compiles one side's edits.
    fn new(edits: Option<&HeaderEdits>) -> Self {
        let Some(edits) = edits else {
            return Edits::default();
        };
        Edits {
            set: edits
                .set
                .iter()
                .map(|(k, v)| (k.header_name().clone(), v.header_value().clone()))
                .collect(),
            remove: edits
                .remove
                .iter()
                .map(|h| h.header_name().clone())
                .collect(),
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// Applies the edits: removals first, then sets (which replace).
    pub fn apply(&self, h: &mut HeaderMap) {
        for n in &self.remove {
            h.remove(n);
        }
        for (n, v) in &self.set {
            h.insert(n.clone(), v.clone());
        }
    }
}

/// The compiled policy.
#[derive(Debug, Default, Clone)]
pub struct SetHeaders {
    pub request: Edits,
    pub response: Edits,
}

impl SetHeaders {
    /// From `request{set, remove}` and `response{set, remove}`.
    pub fn new(params: &SetHeadersParams) -> Self {
        Self {
            request: Edits::new(params.request.as_ref()),
            response: Edits::new(params.response.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_and_removes_on_each_side() {
        let p = json!({"request": {"set": {"X-Env": "prod"}, "remove": ["Cookie"]}, "response": {"set": {"X-Served-By": "gatehouse"}, "remove": ["Server"]}});
        let sh = SetHeaders::new(&serde_json::from_value(p).unwrap());
        let mut req = HeaderMap::new();
        req.insert("cookie", "a=b".parse().unwrap());
        req.insert("x-env", "dev".parse().unwrap());
        sh.request.apply(&mut req);
        assert_eq!(req["x-env"], "prod");
        assert!(req.get("cookie").is_none());
        let mut resp = HeaderMap::new();
        resp.insert("server", "nginx".parse().unwrap());
        sh.response.apply(&mut resp);
        assert_eq!(resp["x-served-by"], "gatehouse");
        assert!(resp.get("server").is_none());
    }
}
