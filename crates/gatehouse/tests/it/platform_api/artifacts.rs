//! Artifacts of every kind: validation and round trips.

use crate::common::*;
use serde_json::json;

both_backends!(artifacts_of_every_kind_validate_and_round_trip,);

async fn artifacts_of_every_kind_validate_and_round_trip(backend: Backend) {
    let Some(p) = platform(backend, &["--body-limit", "65536"]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    create(&admin, "llm-providers", "prov", "/prov").await;
    for c in COLLECTIONS {
        let id = format!("{}-one", event_prefix(c));
        let body = create(&admin, c, &id, &format!("/{id}")).await;
        assert_eq!(body["id"], id.as_str());
        assert!(body["uuid"].is_string());
        let (s, got) = admin.get(&format!("/api/v1/{c}/{id}")).await.unwrap();
        assert_eq!(s, 200);
        assert_eq!(got, body);
        assert_eq!(
            admin
                .post(&format!("/api/v1/{c}"), &artifact_body(c, &id, "/other"))
                .await
                .unwrap()
                .0,
            409
        );

        // A bad context is a 400 naming the field; nothing is stored.
        let mut bad = artifact_body(c, &format!("{id}-bad"), "no-slash");
        let (s, b) = admin.post(&format!("/api/v1/{c}"), &bad).await.unwrap();
        assert_eq!((s, b["field"].as_str()), (400, Some("context")), "{c}: {b}");
        bad["context"] = json!("/fine");
        bad["unknownField"] = json!(1);
        let (s, b) = admin.post(&format!("/api/v1/{c}"), &bad).await.unwrap();
        assert_eq!(s, 400);
        assert!(
            b["message"].as_str().unwrap().contains("unknownField"),
            "{b}"
        );
        assert_eq!(
            admin.get(&format!("/api/v1/{c}/{id}-bad")).await.unwrap().0,
            404
        );

        // Replace keeps the handle; a changed id is refused.
        let mut upd = artifact_body(c, &id, &format!("/{id}-v2"));
        let (s, b) = admin.put(&format!("/api/v1/{c}/{id}"), &upd).await.unwrap();
        assert_eq!(
            (s, b["context"].as_str()),
            (200, Some(format!("/{id}-v2").as_str())),
            "{b}"
        );
        assert_eq!(b["uuid"], body["uuid"]);
        upd["id"] = json!("renamed");
        assert_eq!(
            admin
                .put(&format!("/api/v1/{c}/{id}"), &upd)
                .await
                .unwrap()
                .1["field"],
            "id"
        );
        assert_eq!(
            admin
                .put(
                    &format!("/api/v1/{c}/missing"),
                    &artifact_body(c, "missing", "/m")
                )
                .await
                .unwrap()
                .0,
            404
        );

        let (s, list) = admin.get(&format!("/api/v1/{c}")).await.unwrap();
        assert_eq!(s, 200);
        assert!(list["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str()));
    }

    // Field-level errors of the kinds' own fields.
    let mut b = artifact_body("rest-apis", "x", "/x");
    b["upstream"]["main"]["url"] = json!("ftp://nowhere");
    assert_eq!(
        admin.post("/api/v1/rest-apis", &b).await.unwrap().1["field"],
        "upstream.main.url"
    );
    let mut b = artifact_body("rest-apis", "x", "/x");
    b["operations"][0]["method"] = json!("FETCH");
    assert_eq!(
        admin.post("/api/v1/rest-apis", &b).await.unwrap().1["field"],
        "operations[0].method"
    );
    let mut b = artifact_body("rest-apis", "x", "/x");
    b["projectId"] = json!("ghost");
    assert_eq!(
        admin.post("/api/v1/rest-apis", &b).await.unwrap().1["field"],
        "projectId"
    );
    let mut b = artifact_body("llm-providers", "x", "/x");
    b["template"] = json!("skynet");
    assert_eq!(
        admin.post("/api/v1/llm-providers", &b).await.unwrap().1["field"],
        "template"
    );
    let mut b = artifact_body("llm-proxies", "x", "/x");
    b["provider"]["id"] = json!("ghost");
    assert_eq!(
        admin.post("/api/v1/llm-proxies", &b).await.unwrap().1["field"],
        "provider.id"
    );
    let mut b = artifact_body("mcp-proxies", "x", "/x");
    b["policies"] = json!([{"name": "rate-limit", "params": {"requests": -1, "window": "1m"}}]);
    assert_eq!(
        admin.post("/api/v1/mcp-proxies", &b).await.unwrap().1["field"],
        "policies[0].params.requests"
    );

    // The provider credential is never returned, and survives a replace that omits it.
    let (_, prov) = admin.get("/api/v1/llm-providers/prov").await.unwrap();
    assert!(!prov.to_string().contains("sk-secret-value"), "{prov}");
    assert_eq!(prov["upstream"]["auth"]["valueSet"], true);
    let (s, prov2) = admin
        .put("/api/v1/llm-providers/prov", &prov)
        .await
        .unwrap();
    assert_eq!(s, 200, "{prov2}");
    assert_eq!(prov2["upstream"]["auth"]["valueSet"], true);

    // A provider used by a proxy cannot be deleted; the 409 names the proxy.
    let (s, b) = admin.delete("/api/v1/llm-providers/prov").await.unwrap();
    assert_eq!(s, 409);
    assert!(
        b["message"].as_str().unwrap().contains("llmproxy-one"),
        "{b}"
    );

    // Bodies over the limit are 413; the store is unchanged.
    let mut huge = artifact_body("rest-apis", "huge", "/huge");
    huge["description"] = json!("x".repeat(70_000));
    let (s, b) = admin.post("/api/v1/rest-apis", &huge).await.unwrap();
    assert_eq!(
        (s, b["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{b}"
    );
    assert_eq!(admin.get("/api/v1/rest-apis/huge").await.unwrap().0, 404);

    for c in ["mcp-proxies", "rest-apis", "llm-proxies", "llm-providers"] {
        let id = format!("{}-one", event_prefix(c));
        assert_eq!(
            admin.delete(&format!("/api/v1/{c}/{id}")).await.unwrap().0,
            204
        );
        assert_eq!(
            admin.get(&format!("/api/v1/{c}/{id}")).await.unwrap().0,
            404
        );
        assert_eq!(
            admin.delete(&format!("/api/v1/{c}/{id}")).await.unwrap().0,
            404
        );
    }
    assert_eq!(
        admin.delete("/api/v1/llm-providers/prov").await.unwrap().0,
        204,
        "no proxy uses it any more"
    );
}
