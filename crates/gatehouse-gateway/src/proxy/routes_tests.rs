//! Tests of the route table: compiling artifacts into entries and matching paths.
use super::*;
use crate::store::Origin;
use gatehouse_core::ArtifactDocument;
use serde_json::json;

pub(super) fn art(id: &str, doc: serde_json::Value) -> StoredArtifact {
    StoredArtifact {
        id: id.into(),
        document: ArtifactDocument::from_value(doc).unwrap(),
        state: State::Deployed,
        origin: Origin::GatewayApi,
        artifact_uuid: None,
        deployment_id: None,
        deployed_at: None,
    }
}

fn rest(id: &str, context: &str, ops: serde_json::Value) -> StoredArtifact {
    art(
        id,
        json!({"apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": id},
               "spec": {"displayName": id, "version": "v1", "context": context,
                        "upstream": {"main": {"url": "http://127.0.0.1:9/base/"}}, "operations": ops}}),
    )
}

fn route<'a>(t: &'a RouteTable, method: &str, path: &'a str) -> Option<(&'a str, usize)> {
    let (e, rest) = t.find(path)?;
    let m: Method = method.parse().unwrap();
    let op = e.find_op(&m, rest)?;
    let idx = e.ops.iter().position(|o| std::ptr::eq(o, op)).unwrap();
    Some((&e.handle, idx))
}

#[test]
fn matching_prefers_literal_over_param_over_wildcard() {
    let t = RouteTable::compile(
        &[rest(
            "a",
            "/shop/$version",
            json!([
                {"method": "GET", "path": "/items/*"},
                {"method": "GET", "path": "/items/{id}"},
                {"method": "GET", "path": "/items/special"},
                {"method": "POST", "path": "/items"},
                {"method": "GET", "path": "/"}
            ]),
        )],
        &[],
        &RateLimiters::default(),
    );
    let e = t.find("/shop/v1/items/x").unwrap().0;
    let path_of = |method: &str, p: &str| {
        let (e2, rest) = t.find(p)?;
        let op = e2.find_op(&method.parse().unwrap(), rest)?;
        Some((
            op.segs.len(),
            op.wildcard,
            matches!(op.segs.last(), Some(Seg::Param)),
        ))
    };
    assert_eq!(e.handle.as_ref(), "a");
    assert_eq!(
        path_of("GET", "/shop/v1/items/special"),
        Some((2, false, false))
    );
    assert_eq!(path_of("GET", "/shop/v1/items/42"), Some((2, false, true)));
    assert_eq!(
        path_of("GET", "/shop/v1/items/42/"),
        Some((2, false, true)),
        "optional trailing slash"
    );
    assert_eq!(
        path_of("GET", "/shop/v1/items/42/parts"),
        Some((1, true, false)),
        "wildcard takes deeper paths"
    );
    assert_eq!(
        path_of("GET", "/shop/v1/items"),
        Some((1, true, false)),
        "wildcard matches its prefix itself"
    );
    assert_eq!(path_of("POST", "/shop/v1/items"), Some((1, false, false)));
    assert_eq!(path_of("DELETE", "/shop/v1/items"), None, "wrong method");
    assert_eq!(
        path_of("GET", "/shop/v1"),
        Some((0, false, false)),
        "context root"
    );
    assert_eq!(path_of("GET", "/shop/v1/"), Some((0, false, false)));
    assert_eq!(path_of("GET", "/shop/v1/other"), None);
    assert!(t.find("/shop/v2/items/1").is_none());
    assert!(
        t.find("/shopping/v1").is_none(),
        "contexts match whole segments"
    );
    assert!(route(&t, "GET", "/nope").is_none());
}

#[test]
fn longest_context_wins_and_undeployed_is_not_served() {
    let mut b = rest("b", "/api/orders", json!([]));
    let a = rest("a", "/api", json!([]));
    let t = RouteTable::compile(&[a.clone(), b.clone()], &[], &RateLimiters::default());
    assert_eq!(t.find("/api/orders/1").unwrap().0.handle.as_ref(), "b");
    assert_eq!(t.find("/api/customers/1").unwrap().0.handle.as_ref(), "a");
    b.state = State::Undeployed;
    let t = RouteTable::compile(&[a, b], &[], &RateLimiters::default());
    assert_eq!(t.find("/api/orders/1").unwrap().0.handle.as_ref(), "a");
    assert_eq!(t.len(), 1);
}

#[test]
fn llm_access_control_and_proxy_through_provider() {
    let provider = art(
        "p",
        json!({"apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider", "metadata": {"name": "openai"},
               "spec": {"displayName": "OpenAI", "template": "openai", "context": "/openai",
                        "upstream": {"url": "http://127.0.0.1:9/v1", "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk"}},
                        "accessControl": {"mode": "deny_all", "exceptions": [{"path": "/chat/completions", "methods": ["POST"]}]}}}),
    );
    let proxy = art(
        "x",
        json!({"apiVersion": "gatehouse.dev/v1", "kind": "LlmProxy", "metadata": {"name": "chat"},
               "spec": {"displayName": "Chat", "context": "/chat", "provider": {"id": "openai"}}}),
    );
    let t = RouteTable::compile(
        &[provider.clone(), proxy.clone()],
        &[],
        &RateLimiters::default(),
    );
    let (e, rest) = t.find("/openai/chat/completions").unwrap();
    let access = e.access.as_ref().unwrap();
    assert!(access.allows(&Method::POST, rest));
    assert!(!access.allows(&Method::GET, rest));
    assert!(!access.allows(&Method::POST, "/models"));
    let llm = e.llm.as_ref().unwrap();
    assert_eq!(
        llm.targets[0].credential.as_ref().unwrap().0,
        "authorization"
    );
    let (px, _) = t.find("/chat/chat/completions").unwrap();
    assert!(px.unavailable.is_none());
    assert_eq!(px.main.as_ref().unwrap().first().base_path, "/v1");
    assert!(px.llm.as_ref().unwrap().targets[0].credential.is_some());
    // Without its provider the proxy is unavailable.
    let t = RouteTable::compile(&[proxy], &[], &RateLimiters::default());
    assert!(t.find("/chat/x").unwrap().0.unavailable.is_some());
}
