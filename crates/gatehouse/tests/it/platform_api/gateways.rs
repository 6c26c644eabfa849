//! Gateways and their registration tokens; data and tokens across a platform restart.

use crate::common::*;
use serde_json::json;

both_backends!(
    gateway_tokens_are_shown_once_capped_and_revocable,
    platform_restart_keeps_data_and_tokens,
);

async fn gateway_tokens_are_shown_once_capped_and_revocable(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let (s, g) = admin
        .post("/api/v1/gateways", &json!({"displayName": "Edge EU 1"}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["id"], "edge-eu-1");
    assert_eq!(g["status"]["connected"], false);
    assert_eq!(
        admin
            .post(
                "/api/v1/gateways",
                &json!({"id": "edge-eu-1", "displayName": "dup"})
            )
            .await
            .unwrap()
            .0,
        409
    );
    let (s, b) = admin
        .post("/api/v1/gateways", &json!({"id": "edge-2"}))
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("displayName"));

    let (s, t1) = admin
        .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 201, "{t1}");
    let token1 = t1["token"].as_str().unwrap().to_owned();
    // 256 bits of randomness, base64url: at least 43 characters after the prefix.
    assert!(token1.len() >= 43 + 5, "{token1}");
    let (s, t2) = admin
        .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 201);
    assert_ne!(t2["token"], t1["token"]);
    let (s, b) = admin
        .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
        .await
        .unwrap();
    assert_eq!(s, 409, "a third active token is refused: {b}");

    let (s, list) = admin
        .get("/api/v1/gateways/edge-eu-1/tokens")
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&token1),
        "listing never shows a token"
    );

    let gw1 = Client::anonymous(&p.base).with_header("api-key", &token1);
    let gw2 = Client::anonymous(&p.base).with_header("api-key", t2["token"].as_str().unwrap());
    assert_eq!(
        gw1.get("/api/internal/v1/deployments").await.unwrap().0,
        200
    );
    let id1 = t1["id"].as_str().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/gateways/edge-eu-1/tokens/{id1}"))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        gw1.get("/api/internal/v1/deployments").await.unwrap().0,
        401,
        "revoked token is refused"
    );
    assert_eq!(
        gw2.get("/api/internal/v1/deployments").await.unwrap().0,
        200,
        "the other token still works"
    );
    assert_eq!(
        admin
            .delete("/api/v1/gateways/edge-eu-1/tokens/no-such-token")
            .await
            .unwrap()
            .0,
        404
    );
    // A slot is free again.
    assert_eq!(
        admin
            .post("/api/v1/gateways/edge-eu-1/tokens", &json!({}))
            .await
            .unwrap()
            .0,
        201
    );

    let (s, b) = admin
        .put(
            "/api/v1/gateways/edge-eu-1",
            &json!({"displayName": "Edge EU One", "description": "Frankfurt"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["description"].as_str()), (200, Some("Frankfurt")));
    let (s, b) = admin.get("/api/v1/gateways").await.unwrap();
    assert_eq!((s, b["count"].as_u64()), (200, Some(1)));

    // A gateway serving an artifact is not deleted by accident.
    create(&admin, "rest-apis", "orders", "/orders").await;
    deploy(&admin, "rest-apis", "orders", "edge-eu-1").await;
    let (s, b) = admin.delete("/api/v1/gateways/edge-eu-1").await.unwrap();
    assert_eq!(s, 409);
    assert!(b["message"].as_str().unwrap().contains("orders"), "{b}");
    assert_eq!(
        admin
            .delete("/api/v1/gateways/edge-eu-1?force=true")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin.get("/api/v1/gateways/edge-eu-1").await.unwrap().0,
        404
    );
    assert_eq!(
        gw2.get("/api/internal/v1/deployments").await.unwrap().0,
        401,
        "tokens of a deleted gateway are gone"
    );
}

async fn platform_restart_keeps_data_and_tokens(backend: Backend) {
    let Some(mut p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let gw = gateway(&admin, &p.base, "edge").await;
    create(&admin, "rest-apis", "orders", "/orders").await;
    deploy(&admin, "rest-apis", "orders", "edge").await;
    p.restart().await.unwrap();
    // The signing key was kept: the old login token still works; so does the gateway token.
    let (s, b) = admin.get("/api/v1/rest-apis/orders").await.unwrap();
    assert_eq!(s, 200, "{b}");
    let (_, desired) = gw.get("/api/internal/v1/deployments").await.unwrap();
    assert_eq!(desired["deployments"][0]["handle"], "orders");
    assert_eq!(desired["revision"], 1);
}
