//! `set-headers`: set and remove request headers (towards the upstream) and response headers
//! (towards the client).

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// Header edits of one side.
#[derive(Debug, Default, Clone)]
pub struct Edits {
    set: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl Edits {
    fn from_value(v: Option<&Value>) -> Self {
        let mut e = Edits::default();
        let Some(obj) = v.and_then(Value::as_object) else {
            return e;
        };
        if let Some(set) = obj.get("set").and_then(Value::as_object) {
            for (k, v) in set {
                if let (Ok(n), Some(Ok(v))) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    v.as_str().map(HeaderValue::from_str),
                ) {
                    e.set.push((n, v));
                }
            }
        }
        if let Some(rm) = obj.get("remove").and_then(Value::as_array) {
            e.remove.extend(
                rm.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            );
        }
        e
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
    pub fn from_params(params: &Map<String, Value>) -> Self {
        Self {
            request: Edits::from_value(params.get("request")),
            response: Edits::from_value(params.get("response")),
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
        let sh = SetHeaders::from_params(p.as_object().unwrap());
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
