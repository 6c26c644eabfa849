//! Secrets in the control plane: created, listed, read, rotated and deleted, with the value
//! never returned and never stored in plain text.

use crate::common::*;
use serde_json::json;

both_backends!(
    secrets_are_write_only_sealed_and_rotated,
    a_referenced_secret_must_exist_and_cannot_be_deleted,
);

async fn secrets_are_write_only_sealed_and_rotated(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let value = "sk-live-0123456789-abcdefghij";
    let (s, created) = admin
        .post(
            "/api/v1/secrets",
            &json!({"id": "openai", "displayName": "OpenAI key", "value": value}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["id"], "openai");
    assert_eq!(created["displayName"], "OpenAI key");
    assert!(created.get("value").is_none(), "{created}");
    let first = created["fingerprint"].as_str().unwrap().to_owned();
    assert!(
        first.starts_with("hmac-sha256:") && first.len() == 12 + 16,
        "{first}"
    );
    assert!(created["updatedAt"].is_string(), "{created}");

    // The same value has the same fingerprint; another value another one.
    let (s, twin) = admin
        .post("/api/v1/secrets", &json!({"id": "twin", "value": value}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{twin}");
    assert_eq!(twin["fingerprint"], first.as_str());
    assert_eq!(twin["displayName"], "twin", "the id when no name is given");

    // Listed and read without the value.
    let (s, list) = admin.get("/api/v1/secrets").await.unwrap();
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["pagination"]["total"], 2, "{list}");
    let ids: Vec<_> = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].clone())
        .collect();
    assert_eq!(ids, [json!("openai"), json!("twin")]);
    let (s, one) = admin.get("/api/v1/secrets/openai").await.unwrap();
    assert_eq!(s, 200, "{one}");
    for body in [&created, &twin, &list, &one] {
        assert!(
            !body.to_string().contains(value),
            "the value came back: {body}"
        );
    }

    // Sealed in the database: no column holds the value.
    let db = database(&p).await;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT handle, sealed_value, fingerprint FROM secrets ORDER BY handle")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    for (handle, sealed, fp) in &rows {
        assert!(
            !sealed.contains(value) && !fp.contains(value),
            "{handle}: {sealed}"
        );
        assert!(sealed.len() > value.len(), "{handle} is sealed: {sealed}");
    }
    assert_ne!(rows[0].1, rows[1].1, "each seal has its own nonce");

    // Rotated: a new fingerprint and a later updatedAt; the name stays.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (s, rotated) = admin
        .put(
            "/api/v1/secrets/openai",
            &json!({"value": "sk-live-rotated"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{rotated}");
    assert_ne!(rotated["fingerprint"], first.as_str());
    assert_eq!(rotated["displayName"], "OpenAI key");
    assert_ne!(rotated["updatedAt"], created["updatedAt"], "{rotated}");
    // Renamed alone: the value (its fingerprint) stays.
    let (s, renamed) = admin
        .put(
            "/api/v1/secrets/openai",
            &json!({"displayName": "OpenAI (prod)"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{renamed}");
    assert_eq!(renamed["fingerprint"], rotated["fingerprint"]);

    // Bad input: 400 naming the field; nothing changed.
    for (body, field) in [
        (json!({"id": "Bad Id", "value": "x"}), "id"),
        (json!({"id": "empty", "value": ""}), "value"),
        (
            json!({"id": "big", "value": "x".repeat(65 * 1024)}),
            "value",
        ),
        (
            json!({"id": "nameless", "displayName": " ", "value": "x"}),
            "displayName",
        ),
        (json!({"id": "typed", "value": 5}), "value"),
        (json!({"id": "extra", "value": "x", "plain": true}), ""),
    ] {
        let (s, b) = admin.post("/api/v1/secrets", &body).await.unwrap();
        assert_eq!(s, 400, "{body}: {b}");
        if !field.is_empty() {
            assert_eq!(b["field"], field, "{b}");
        }
    }
    let (s, b) = admin
        .put(
            "/api/v1/secrets/openai",
            &json!({"id": "other", "value": "x"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (409, Some("id")), "{b}");
    // Nothing to change is no error: the secret as it is.
    let (s, b) = admin
        .put("/api/v1/secrets/openai", &json!({}))
        .await
        .unwrap();
    assert_eq!((s, &b["id"]), (200, &json!("openai")), "{b}");
    let (s, b) = admin
        .post(
            "/api/v1/secrets",
            &json!({"id": "openai", "value": "again"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    let (_, still) = admin.get("/api/v1/secrets/openai").await.unwrap();
    assert_eq!(
        still["fingerprint"], rotated["fingerprint"],
        "a refused create changes nothing"
    );
    assert_eq!(
        admin.get("/api/v1/secrets").await.unwrap().1["pagination"]["total"],
        2
    );

    // Another organization sees none of them.
    let (s, _) = admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "other-org", "displayName": "Other"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201);
    let other = p.login("other-org").await.unwrap();
    assert_eq!(
        other.get("/api/v1/secrets").await.unwrap().1["pagination"]["total"],
        0
    );
    assert_eq!(other.get("/api/v1/secrets/openai").await.unwrap().0, 404);
    assert_eq!(
        other
            .put("/api/v1/secrets/openai", &json!({"value": "x"}))
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(other.delete("/api/v1/secrets/openai").await.unwrap().0, 404);

    // Deleted.
    assert_eq!(admin.delete("/api/v1/secrets/twin").await.unwrap().0, 204);
    assert_eq!(admin.get("/api/v1/secrets/twin").await.unwrap().0, 404);
    assert_eq!(admin.delete("/api/v1/secrets/twin").await.unwrap().0, 404);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 1);
}

async fn a_referenced_secret_must_exist_and_cannot_be_deleted(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let (s, _) = admin
        .post("/api/v1/secrets", &json!({"id": "openai", "value": "sk-1"}))
        .await
        .unwrap();
    assert_eq!(s, 201);
    let mut body = artifact_body("llm-providers", "prov", "/prov");
    body["upstream"]["auth"]["value"] = json!("Bearer {{ secret \"nope\" }}");
    let (s, b) = admin.post("/api/v1/llm-providers", &body).await.unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (404, Some("upstream.auth.value")),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("secret 'nope' does not exist"),
        "{b}"
    );
    body["upstream"]["auth"]["value"] = json!("Bearer {{ secret openai }}");
    let (s, b) = admin.post("/api/v1/llm-providers", &body).await.unwrap();
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("upstream.auth.value")),
        "{b}"
    );

    // A typed field refuses a reference, saying so.
    let mut typed = body.clone();
    typed["context"] = json!("/{{ secret \"openai\" }}");
    typed["upstream"]["auth"]["value"] = json!("Bearer sk-plain");
    let (s, b) = admin.post("/api/v1/llm-providers", &typed).await.unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("context")), "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("cannot hold a reference"),
        "{b}"
    );

    body["upstream"]["auth"]["value"] = json!("Bearer {{ secret \"openai\" }}");
    let (s, created) = admin.post("/api/v1/llm-providers", &body).await.unwrap();
    assert_eq!(s, 201, "{created}");
    let refused = |b: &serde_json::Value| {
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("llm-providers/prov"))
    };
    let (s, b) = admin.delete("/api/v1/secrets/openai").await.unwrap();
    assert!(s == 409 && refused(&b), "{s} {b}");
    // A replace that keeps the stored credential keeps its reference.
    let (s, b) = admin
        .put("/api/v1/llm-providers/prov", &created)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, b) = admin.delete("/api/v1/secrets/openai").await.unwrap();
    assert!(s == 409 && refused(&b), "{s} {b}");
    // Once no artifact references it, it goes.
    body["upstream"]["auth"]["value"] = json!("Bearer sk-literal");
    let (s, b) = admin
        .put("/api/v1/llm-providers/prov", &body)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(admin.delete("/api/v1/secrets/openai").await.unwrap().0, 204);
    // And an artifact deleted takes its references with it.
    let (s, _) = admin
        .post("/api/v1/secrets", &json!({"id": "token", "value": "t"}))
        .await
        .unwrap();
    assert_eq!(s, 201);
    body["upstream"]["auth"]["value"] = json!("{{ secret \"token\" }}");
    assert_eq!(
        admin
            .put("/api/v1/llm-providers/prov", &body)
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(admin.delete("/api/v1/secrets/token").await.unwrap().0, 409);
    assert_eq!(
        admin.delete("/api/v1/llm-providers/prov").await.unwrap().0,
        204
    );
    assert_eq!(admin.delete("/api/v1/secrets/token").await.unwrap().0, 204);
}
