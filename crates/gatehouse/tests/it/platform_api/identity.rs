//! Login, organizations, projects, isolation between organizations, and tokens on every route.

use crate::common::*;
use serde_json::json;

both_backends!(
    login_and_organizations,
    projects_crud_and_conflicts,
    isolation_between_organizations,
    every_route_refuses_missing_and_foreign_tokens,
);

async fn login_and_organizations(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let anon = Client::anonymous(&p.base);

    let (s, b) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "nope"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let (s, _) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "ghost", "password": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 401);
    let (s, b) = anon
        .post("/api/v1/auth/login", &json!({"username": "admin"}))
        .await
        .unwrap();
    assert_eq!(s, 400);
    assert!(b["message"].as_str().unwrap().contains("password"), "{b}");
    let (s, _) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": p.admin_password, "organization": "nowhere"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 403);

    // No token, a malformed header, a forged token.
    assert_eq!(anon.get("/api/v1/projects").await.unwrap().0, 401);
    assert_eq!(
        anon.with_header("authorization", "Basic abc")
            .get("/api/v1/projects")
            .await
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        anon.with_bearer("eyJhbGciOiJIUzI1NiJ9.e30.x")
            .get("/api/v1/projects")
            .await
            .unwrap()
            .0,
        401
    );

    let admin = p.login("default").await.unwrap();
    let (s, b) = admin
        .post(
            "/api/v1/organizations",
            &json!({"displayName": "Acme Corp"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["id"], "acme-corp");
    let (s, _) = admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "acme-corp", "displayName": "Again"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409);
    let (s, b) = admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "Bad Id", "displayName": "x"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("id")));
    let (s, b) = admin
        .post("/api/v1/organizations", &json!({"displayName": 5}))
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("displayName")), "{b}");
    let (s, b) = admin.get("/api/v1/organizations").await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(b["pagination"]["total"], 2);
    let handles: Vec<&str> = b["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(handles, ["acme-corp", "default"]);
    let (s, b) = admin.get("/api/v1/organizations?limit=0").await.unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("limit")));

    // The admin may enter the new organization; it starts with a default project.
    let acme = p.login("acme-corp").await.unwrap();
    let (s, b) = acme.get("/api/v1/projects").await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(b["list"][0]["id"], "default");
}

async fn projects_crud_and_conflicts(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    let (s, b) = admin
        .post(
            "/api/v1/projects",
            &json!({"displayName": "Payments Team", "description": "money"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["id"], "payments-team");
    assert!(b["uuid"].as_str().unwrap().len() >= 32);
    assert_eq!(
        admin
            .post(
                "/api/v1/projects",
                &json!({"id": "payments-team", "displayName": "x"})
            )
            .await
            .unwrap()
            .0,
        409
    );
    let (s, b) = admin
        .post(
            "/api/v1/projects",
            &json!({"displayName": "x", "colour": "red"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 400);
    assert!(b["message"].as_str().unwrap().contains("colour"), "{b}");
    let (s, b) = admin
        .post_raw("/api/v1/projects", b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!((s, b["code"].as_str()), (400, Some("INVALID_REQUEST")));

    let (s, b) = admin
        .put(
            "/api/v1/projects/payments-team",
            &json!({"displayName": "Payments"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["displayName"].as_str()), (200, Some("Payments")));
    let (s, b) = admin
        .put(
            "/api/v1/projects/payments-team",
            &json!({"id": "other", "displayName": "P"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (409, Some("id")));
    assert_eq!(admin.get("/api/v1/projects/nope").await.unwrap().0, 404);
    assert_eq!(
        admin
            .put("/api/v1/projects/nope", &json!({"displayName": "x"}))
            .await
            .unwrap()
            .0,
        404
    );

    // A project holding an API cannot be deleted; the 409 names what it holds.
    let mut api = artifact_body("rest-apis", "billing", "/billing");
    api["projectId"] = json!("payments-team");
    assert_eq!(admin.post("/api/v1/rest-apis", &api).await.unwrap().0, 201);
    let (s, b) = admin
        .delete("/api/v1/projects/payments-team")
        .await
        .unwrap();
    assert_eq!(s, 409);
    assert!(b["message"].as_str().unwrap().contains("billing"), "{b}");
    assert_eq!(
        admin.delete("/api/v1/rest-apis/billing").await.unwrap().0,
        204
    );
    assert_eq!(
        admin
            .delete("/api/v1/projects/payments-team")
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        admin.get("/api/v1/projects/payments-team").await.unwrap().0,
        404
    );
    assert_eq!(
        admin
            .delete("/api/v1/projects/payments-team")
            .await
            .unwrap()
            .0,
        404
    );
}

async fn isolation_between_organizations(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    assert_eq!(
        admin
            .post(
                "/api/v1/organizations",
                &json!({"id": "other", "displayName": "Other"})
            )
            .await
            .unwrap()
            .0,
        201
    );
    let other = p.login("other").await.unwrap();
    let gw_a = gateway(&admin, &p.base, "edge").await;
    let gw_b = gateway(&other, &p.base, "edge").await;
    let api = create(&admin, "rest-apis", "secret-api", "/secret").await;
    let uuid = api["uuid"].as_str().unwrap();
    let dep = deploy(&admin, "rest-apis", "secret-api", "edge").await;
    let dep_id = dep["deploymentId"].as_str().unwrap();
    create(&admin, "llm-providers", "prov", "/prov").await;
    assert_eq!(
        admin
            .post(
                "/api/v1/projects",
                &json!({"id": "team-a", "displayName": "A"})
            )
            .await
            .unwrap()
            .0,
        201
    );

    // Nothing of `default` is visible or addressable from `other`.
    for path in [
        "/api/v1/rest-apis/secret-api",
        "/api/v1/llm-providers/prov",
        "/api/v1/projects/team-a",
        "/api/v1/rest-apis/secret-api/deployments",
        &format!("/api/v1/rest-apis/secret-api/deployments/{dep_id}"),
    ] {
        assert_eq!(other.get(path).await.unwrap().0, 404, "{path}");
    }
    assert_eq!(other.get("/api/v1/rest-apis").await.unwrap().1["count"], 0);
    assert_eq!(
        other.get("/api/v1/llm-providers").await.unwrap().1["count"],
        0
    );
    assert_eq!(
        other
            .delete("/api/v1/rest-apis/secret-api")
            .await
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        other
            .put(
                "/api/v1/rest-apis/secret-api",
                &artifact_body("rest-apis", "secret-api", "/x")
            )
            .await
            .unwrap()
            .0,
        404
    );
    let (_, projects) = other.get("/api/v1/projects").await.unwrap();
    assert_eq!(
        projects["count"], 1,
        "only its own default project: {projects}"
    );
    // Same handle, separate namespace.
    create(&other, "rest-apis", "secret-api", "/secret").await;
    let (_, mine) = other.get("/api/v1/rest-apis/secret-api").await.unwrap();
    assert_ne!(mine["uuid"], api["uuid"]);
    // Gateways: `other` addresses its own `edge`, never default's.
    let (_, gws) = other.get("/api/v1/gateways").await.unwrap();
    assert_eq!(gws["count"], 1);
    assert_ne!(
        gws["list"][0]["uuid"],
        admin.get("/api/v1/gateways/edge").await.unwrap().1["uuid"]
    );
    // Non-admin business: organizations are for the platform admin; the admin's token is per org.
    assert_eq!(
        other
            .get("/api/v1/rest-apis/secret-api/deployments")
            .await
            .unwrap()
            .1["count"],
        0
    );

    // Internal API: gateway B sees nothing of A.
    let (_, desired) = gw_b.get("/api/internal/v1/deployments").await.unwrap();
    assert_eq!(desired["deployments"].as_array().unwrap().len(), 0);
    let (s, batch) = gw_b
        .post(
            "/api/internal/v1/deployments/fetch-batch",
            &json!({"deploymentIds": [dep_id]}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(batch["deployments"].as_array().unwrap().len(), 0);
    assert_eq!(
        gw_b.get(&format!("/api/internal/v1/apis/{uuid}"))
            .await
            .unwrap()
            .0,
        404
    );
    let (_, ex) = gw_b
        .post(
            "/api/internal/v1/artifacts/exists",
            &json!({"artifactIds": [uuid]}),
        )
        .await
        .unwrap();
    assert_eq!(
        ex["artifacts"][0],
        json!({"artifactId": uuid, "exists": false})
    );
    assert!(events(&gw_b, 0)
        .await
        .iter()
        .all(|e| e["payload"]["artifactId"] != uuid));
    // A forged ack from B cannot move A's deployment.
    assert!(!ack(&gw_b, uuid, &dep, "deploy", "success").await);
    assert_eq!(
        admin
            .get(&format!(
                "/api/v1/rest-apis/secret-api/deployments/{dep_id}"
            ))
            .await
            .unwrap()
            .1["status"],
        "DEPLOYING"
    );
    // And A's own gateway does see it.
    let (_, ex) = gw_a
        .post(
            "/api/internal/v1/artifacts/exists",
            &json!({"artifactIds": [uuid]}),
        )
        .await
        .unwrap();
    assert_eq!(ex["artifacts"][0]["exists"], true);
}

/// Walks every route of the public OpenAPI document: without a token each is a 401; with a
/// valid token of another organization, each route that addresses a resource is a 404.
async fn every_route_refuses_missing_and_foreign_tokens(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    admin
        .post(
            "/api/v1/organizations",
            &json!({"id": "other", "displayName": "Other"}),
        )
        .await
        .unwrap();
    let other = p.login("other").await.unwrap();
    gateway(&admin, &p.base, "edge").await;
    gateway(&other, &p.base, "other-edge").await;
    let (_, tokens) = admin.get("/api/v1/gateways/edge/tokens").await.unwrap();
    let token_id = tokens[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin
            .post(
                "/api/v1/projects",
                &json!({"id": "proj", "displayName": "P"})
            )
            .await
            .unwrap()
            .0,
        201
    );
    create(&admin, "llm-providers", "prov", "/prov").await;
    let mut deployment_of = std::collections::HashMap::new();
    for c in COLLECTIONS {
        let id = if c == "llm-providers" {
            "prov".to_owned()
        } else {
            format!("{}-r", event_prefix(c))
        };
        if c != "llm-providers" {
            create(&admin, c, &id, &format!("/{id}")).await;
        }
        let d = deploy(&admin, c, &id, "edge").await;
        deployment_of.insert(c, (id, d["deploymentId"].as_str().unwrap().to_owned()));
    }

    let (_, spec) = Client::anonymous(&p.base)
        .get("/api/v1/openapi.json")
        .await
        .unwrap();
    let anon = Client::anonymous(&p.base);
    let mut checked = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        if template == "/api/v1/auth/login" {
            continue;
        }
        let collection = template
            .trim_start_matches("/api/v1/")
            .split('/')
            .next()
            .unwrap();
        let (id, dep) = match deployment_of.get(collection) {
            Some((id, dep)) => (id.clone(), dep.clone()),
            None if collection == "projects" => ("proj".to_owned(), String::new()),
            None => ("edge".to_owned(), String::new()),
        };
        let path = template
            .replace("{id}", &id)
            .replace("{deployment_id}", &dep)
            .replace("{token_id}", &token_id)
            .replace("{key_id}", "some-key");
        let body = if template.ends_with("/deployments") {
            json!({"gatewayId": "edge"})
        } else if template.ends_with("/api-keys") {
            json!({"displayName": "k"})
        } else if collection == "subscriptions" {
            json!({})
        } else if deployment_of.contains_key(collection) {
            artifact_body(collection, &id, &format!("/{id}"))
        } else {
            json!({"displayName": "x"})
        };
        for method in item.as_object().unwrap().keys() {
            let call = |c: Client| {
                let (path, body, method) = (path.clone(), body.clone(), method.clone());
                async move {
                    match method.as_str() {
                        "get" => c.get(&path).await,
                        "post" => c.post(&path, &body).await,
                        "put" => c.put(&path, &body).await,
                        "delete" => c.delete(&path).await,
                        m => panic!("unexpected method {m}"),
                    }
                    .unwrap()
                }
            };
            let (s, b) = call(anon.clone()).await;
            assert_eq!(s, 401, "{method} {path} without a token: {b}");
            if template.contains("{id}") {
                let (s, b) = call(other.clone()).await;
                assert_eq!(
                    s, 404,
                    "{method} {path} with another organization's token: {b}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} routes checked");
    // Nothing of `default` was changed by those calls.
    for c in COLLECTIONS {
        let (id, dep) = &deployment_of[c];
        let (s, d) = admin
            .get(&format!("/api/v1/{c}/{id}/deployments/{dep}"))
            .await
            .unwrap();
        assert_eq!((s, d["status"].as_str()), (200, Some("DEPLOYING")), "{c}");
    }
    assert_eq!(
        admin
            .get("/api/v1/gateways/edge/tokens")
            .await
            .unwrap()
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
