//! Spec parsing and validation, field by field.
use super::*;
use serde_json::json;

fn rest(spec: Value) -> Result<ArtifactSpec, FieldError> {
    ArtifactSpec::parse(ArtifactKind::RestApi, spec)
}

fn base() -> Value {
    json!({
        "displayName": "Orders", "version": "v1", "context": "/orders/$version",
        "upstream": {"main": {"url": "http://127.0.0.1:9000/api"}},
        "operations": [{"method": "GET", "path": "/items/{id}"}, {"method": "GET", "path": "/files/*"}]
    })
}

fn field_of(mut v: Value, pointer: &str, new: Value) -> String {
    *v.pointer_mut(pointer).unwrap() = new;
    rest(v).unwrap_err().field
}

#[test]
fn valid_rest_api_parses_with_defaults() {
    let s = rest(base()).unwrap();
    assert_eq!(s.resolved_context(), "/orders/v1");
    let mut v = base();
    v.as_object_mut().unwrap().remove("version");
    assert_eq!(rest(v).unwrap().version(), "v1.0");
}

#[test]
fn invalid_rest_fields_are_named() {
    assert_eq!(field_of(base(), "/context", json!("orders")), "context");
    assert_eq!(field_of(base(), "/context", json!("/a//b")), "context");
    assert_eq!(
        field_of(base(), "/context", json!("/_gateway-health")),
        "context"
    );
    assert_eq!(field_of(base(), "/context", json!("/x/$other")), "context");
    // $version once; the length counts the context as written.
    assert_eq!(
        field_of(base(), "/context", json!("/$version/$version")),
        "context"
    );
    let long = format!("/$version/{}", "a".repeat(222));
    let mut v = base();
    v["context"] = json!(long);
    v["version"] = json!("v".repeat(30));
    assert!(rest(v.clone()).is_ok(), "232 characters as written");
    v["context"] = json!(format!("{long}a"));
    assert!(rest(v).is_err(), "233 characters as written");
    assert_eq!(field_of(base(), "/version", json!("v 1")), "version");
    assert_eq!(field_of(base(), "/displayName", json!(" ")), "displayName");
    assert_eq!(
        field_of(base(), "/upstream/main/url", json!("not a url")),
        "upstream.main.url"
    );
    assert_eq!(
        field_of(base(), "/operations/0/method", json!("FETCH")),
        "operations[0].method"
    );
    assert_eq!(
        field_of(base(), "/operations/1/path", json!("/a/*/b")),
        "operations[1].path"
    );
    assert_eq!(
        field_of(base(), "/operations/1/path", json!("/a/{x")),
        "operations[1].path"
    );
    assert_eq!(
        field_of(base(), "/operations/1/path", json!("/items/{other}")),
        "operations[1]"
    );
    assert_eq!(field_of(base(), "/context", json!(5)), "context");
    let mut v = base();
    v["colour"] = json!("red");
    assert!(rest(v).unwrap_err().message.contains("colour"));
    let mut v = base();
    v.as_object_mut().unwrap().remove("upstream");
    assert!(rest(v).unwrap_err().message.contains("upstream"));
}

#[test]
fn policies_are_validated_by_name_and_params() {
    let with = |p: Value| {
        let mut v = base();
        v["policies"] = json!([p]);
        rest(v)
    };
    assert!(with(json!({"name": "api-key-auth", "version": "v1"})).is_ok());
    assert!(with(
        json!({"name": "rate-limit", "params": {"requests": 10, "window": "1m", "per": "key"}})
    )
    .is_ok());
    assert_eq!(
        with(json!({"name": "nope"})).unwrap_err().field,
        "policies[0].name"
    );
    assert_eq!(
        with(json!({"name": "rate-limit", "params": {"requests": 0, "window": "1m"}}))
            .unwrap_err()
            .field,
        "policies[0].params.requests"
    );
    assert_eq!(
        with(json!({"name": "rate-limit", "params": {"requests": 1, "window": "soon"}}))
            .unwrap_err()
            .field,
        "policies[0].params.window"
    );
    assert_eq!(
        with(json!({"name": "model-allow-list", "params": {"models": ["gpt"]}}))
            .unwrap_err()
            .field,
        "policies[0].name"
    );
    assert_eq!(
        with(json!({"name": "cors", "params": {"allowOrigins": "*"}}))
            .unwrap_err()
            .field,
        "policies[0].params.allowOrigins"
    );
    assert_eq!(
        with(json!({"name": "set-headers", "params": {"request": {"set": {"a": 1}}}}))
            .unwrap_err()
            .field,
        "policies[0].params.request.set"
    );
    assert_eq!(
        with(json!({"name": "api-key-auth", "params": {"colour": 1}}))
            .unwrap_err()
            .field,
        "policies[0].params.colour"
    );
}

#[test]
fn llm_and_mcp_specs_validate() {
    let provider = json!({
        "displayName": "OpenAI", "template": "openai", "context": "/openai",
        "upstream": {"url": "https://api.openai.com/v1", "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk"}},
        "accessControl": {"mode": "deny_all", "exceptions": [{"path": "/chat/completions", "methods": ["POST"]}]},
        "policies": [{"name": "model-allow-list", "params": {"models": ["gpt-4o"]}}]
    });
    let mut p = ArtifactSpec::parse(ArtifactKind::LlmProvider, provider.clone()).unwrap();
    assert_eq!(p.credentials_mut()[0].1.as_deref(), Some("Bearer sk"));
    // A template that is not built in parses (an organization's own), but does not resolve
    // without its definition.
    let mut custom = provider.clone();
    custom["template"] = json!("skynet");
    let ArtifactSpec::LlmProvider(c) =
        ArtifactSpec::parse(ArtifactKind::LlmProvider, custom.clone()).unwrap()
    else {
        panic!("a provider")
    };
    assert!(c.resolved_template().is_none());
    let mut def = serde_json::to_value(crate::llm::builtin("openai").unwrap()).unwrap();
    def["id"] = json!("skynet");
    custom["templateDefinition"] = def;
    let ArtifactSpec::LlmProvider(c) =
        ArtifactSpec::parse(ArtifactKind::LlmProvider, custom.clone()).unwrap()
    else {
        panic!("a provider")
    };
    assert_eq!(c.resolved_template().unwrap().id, "skynet");
    custom["templateDefinition"]["id"] = json!("other");
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::LlmProvider, custom)
            .unwrap_err()
            .field,
        "templateDefinition.id"
    );
    let mut bad = provider.clone();
    bad["template"] = json!("Sky Net");
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::LlmProvider, bad)
            .unwrap_err()
            .field,
        "template"
    );
    let mut bad = provider;
    bad["accessControl"]["mode"] = json!("some");
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::LlmProvider, bad)
            .unwrap_err()
            .field,
        "accessControl.mode"
    );

    let proxy = json!({"displayName": "Chat", "context": "/chat", "provider": {"id": "openai"}});
    let s = ArtifactSpec::parse(ArtifactKind::LlmProxy, proxy).unwrap();
    assert_eq!(s.providers()[0].as_str(), "openai");
    let both = json!({"displayName": "Chat", "context": "/chat", "provider": {"id": "a"}, "providers": [{"id": "b"}]});
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::LlmProxy, both)
            .unwrap_err()
            .field,
        "providers"
    );
    let twice = json!({"displayName": "Chat", "context": "/chat", "providers": [{"id": "a"}, {"id": "a", "priority": 1}]});
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::LlmProxy, twice)
            .unwrap_err()
            .field,
        "providers[1].id"
    );
    let many = json!({"displayName": "Chat", "context": "/chat", "api": "openai",
        "providers": [{"id": "a", "weight": 3}, {"id": "b", "priority": 1}],
        "failover": {"on": ["connect-error", 503, "429"], "maxAttempts": 2, "cooldown": "10s"}});
    let ArtifactSpec::LlmProxy(m) = ArtifactSpec::parse(ArtifactKind::LlmProxy, many).unwrap()
    else {
        panic!("a proxy")
    };
    let f = m.failover.as_ref().unwrap();
    assert!(f.moves_on(crate::spec::FailoverOn::Status(429)));
    assert!(!f.moves_on(crate::spec::FailoverOn::Timeout));
    assert_eq!(
        serde_json::to_value(f).unwrap()["on"],
        json!(["connect-error", 503, 429])
    );
    assert!(m.check_not_self("a").is_err());
    assert!(m.check_not_self("chat").is_ok());
    let bad_on = json!({"displayName": "Chat", "context": "/chat", "providers": [{"id": "a"}], "failover": {"on": [200]}});
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::LlmProxy, bad_on)
            .unwrap_err()
            .field,
        "failover.on[0]"
    );
    let bad = json!({"displayName": "Chat", "context": "/chat", "provider": {"id": "Open AI"}});
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::LlmProxy, bad)
            .unwrap_err()
            .field,
        "provider.id"
    );

    let mcp = json!({"displayName": "Tools", "context": "/tools", "upstream": {"url": "http://127.0.0.1:7000"}, "tools": ["search"]});
    assert!(ArtifactSpec::parse(ArtifactKind::Mcp, mcp).is_ok());
    let bad = json!({"displayName": "Tools", "context": "/tools", "upstream": {"url": "http://127.0.0.1:7000"}, "tools": [""]});
    assert_eq!(
        ArtifactSpec::parse(ArtifactKind::Mcp, bad)
            .unwrap_err()
            .field,
        "tools[0]"
    );
    // REST upstreams of several URLs, weighted, with a health check.
    let rest =
        |main: Value| json!({"displayName": "A", "context": "/a", "upstream": {"main": main}});
    let ok = rest(
        json!({"urls": ["http://a:1", {"url": "http://b:1", "weight": 5}], "healthCheck": {"path": "/hz", "interval": "5s"}}),
    );
    let parsed = ArtifactSpec::parse(ArtifactKind::RestApi, ok.clone()).unwrap();
    assert_eq!(
        parsed.to_value()["upstream"]["main"],
        ok["upstream"]["main"],
        "kept as written"
    );
    for (main, field) in [
        (json!({}), "upstream.main.url"),
        (
            json!({"url": "http://a:1", "urls": ["http://b:1"]}),
            "upstream.main.urls",
        ),
        (
            json!({"urls": ["http://a:1", "nope"]}),
            "upstream.main.urls[1]",
        ),
        (
            json!({"urls": [{"url": "http://a:1", "weight": 0}]}),
            "upstream.main.urls[0].weight",
        ),
        (
            json!({"url": "http://a:1", "healthCheck": {"path": "hz", "interval": "5s"}}),
            "upstream.main.healthCheck.path",
        ),
    ] {
        assert_eq!(
            ArtifactSpec::parse(ArtifactKind::RestApi, rest(main))
                .unwrap_err()
                .field,
            field
        );
    }
    // Several servers: named for prefixes, unique, and not both forms.
    let multi = json!({"displayName": "Tools", "context": "/tools", "upstreams": [
        {"name": "docs", "url": "http://127.0.0.1:7000/mcp"}, {"name": "git-hub", "url": "http://127.0.0.1:7001/mcp"}]});
    assert!(ArtifactSpec::parse(ArtifactKind::Mcp, multi.clone()).is_ok());
    for (doc, field) in [
        (json!({"displayName": "T", "context": "/t"}), "upstream"),
        (
            json!({"displayName": "T", "context": "/t", "upstream": {"url": "http://a"}, "upstreams": multi["upstreams"]}),
            "upstreams",
        ),
        (
            json!({"displayName": "T", "context": "/t", "upstreams": [{"name": "a_b", "url": "http://a"}]}),
            "upstreams[0].name",
        ),
        (
            json!({"displayName": "T", "context": "/t", "upstreams": [{"name": "a", "url": "http://a"}, {"name": "a", "url": "http://b"}]}),
            "upstreams[1].name",
        ),
        (
            json!({"displayName": "T", "context": "/t", "upstreams": [{"name": "a", "url": "nope"}]}),
            "upstreams[0].url",
        ),
        (
            json!({"displayName": "T", "context": "/t", "upstreams": multi["upstreams"], "sessionKey": "short"}),
            "sessionKey",
        ),
    ] {
        assert_eq!(
            ArtifactSpec::parse(ArtifactKind::Mcp, doc)
                .unwrap_err()
                .field,
            field
        );
    }
}
