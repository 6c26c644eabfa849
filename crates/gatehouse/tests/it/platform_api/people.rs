//! Users and roles, API tokens and the audit log, end to end: every route checks the caller's
//! role, tokens are shown once and work as bearer tokens, and every change is audited without
//! a secret in it.

use crate::common::*;
use gatehouse_testkit::Client;
use serde_json::{json, Value};

both_backends!(
    roles_decide_what_each_user_may_do,
    api_tokens_are_shown_once_bounded_by_role_and_revocable,
);

const EDITOR_PW: &str = "editor-password-1";
const VIEWER_PW: &str = "viewer-password-1";

async fn login_as(p: &Platform, user: &str, password: &str) -> Client {
    let anon = Client::anonymous(&p.base);
    let (s, b) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": user, "password": password}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{user}: {b}");
    anon.with_bearer(b["token"].as_str().unwrap())
}

async fn add_user(admin: &Client, user: &str, password: &str, role: &str) {
    let (s, b) = admin
        .post(
            "/api/v1/users",
            &json!({"username": user, "password": password, "role": role}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["role"], role);
    assert!(b.get("password").is_none(), "{b}");
}

fn refused(answer: &(u16, Value), role: &str) {
    let (s, b) = answer;
    assert_eq!(*s, 403, "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains(&format!("your role '{role}'")),
        "{b}"
    );
}

async fn roles_decide_what_each_user_may_do(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    add_user(&admin, "editor1", EDITOR_PW, "editor").await;
    add_user(&admin, "viewer1", VIEWER_PW, "viewer").await;
    let editor = login_as(&p, "editor1", EDITOR_PW).await;
    let viewer = login_as(&p, "viewer1", VIEWER_PW).await;
    let (s, me) = viewer.get("/api/v1/users/me").await.unwrap();
    assert_eq!((s, me["role"].as_str()), (200, Some("viewer")), "{me}");

    // A viewer reads, and changes nothing.
    assert_eq!(viewer.get("/api/v1/rest-apis").await.unwrap().0, 200);
    let body = artifact_body("rest-apis", "orders", "/orders");
    refused(
        &viewer.post("/api/v1/rest-apis", &body).await.unwrap(),
        "viewer",
    );
    refused(&viewer.get("/api/v1/users").await.unwrap(), "viewer");
    refused(&viewer.get("/api/v1/audit-log").await.unwrap(), "viewer");

    // An editor changes artifacts and deployments, not gateways, secrets or users.
    let (s, b) = editor.post("/api/v1/rest-apis", &body).await.unwrap();
    assert_eq!(s, 201, "{b}");
    gateway(&admin, &p.base, "edge").await;
    let deploy = editor
        .post(
            "/api/v1/rest-apis/orders/deployments",
            &json!({"gatewayId": "edge"}),
        )
        .await
        .unwrap();
    assert_eq!(deploy.0, 201, "{}", deploy.1);
    refused(
        &viewer
            .post(
                "/api/v1/rest-apis/orders/deployments",
                &json!({"gatewayId": "edge"}),
            )
            .await
            .unwrap(),
        "viewer",
    );
    refused(
        &editor
            .post(
                "/api/v1/gateways",
                &json!({"id": "other", "displayName": "x"}),
            )
            .await
            .unwrap(),
        "editor",
    );
    refused(
        &editor
            .post("/api/v1/secrets", &json!({"id": "s", "value": "v"}))
            .await
            .unwrap(),
        "editor",
    );
    refused(
        &editor
            .post(
                "/api/v1/users",
                &json!({"username": "x1", "password": "long-enough-pw", "role": "admin"}),
            )
            .await
            .unwrap(),
        "editor",
    );

    // Users: bad input named, the last admin kept, one's own password changed.
    let (s, b) = admin
        .post(
            "/api/v1/users",
            &json!({"username": "short", "password": "short", "role": "viewer"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("password")), "{b}");
    let (s, b) = admin
        .post(
            "/api/v1/users",
            &json!({"username": "x2", "password": "long-enough-pw", "role": "root"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 400, "{b}");
    let (s, b) = admin
        .post(
            "/api/v1/users",
            &json!({"username": "editor1", "password": "long-enough-pw", "role": "viewer"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    let (s, b) = admin
        .put("/api/v1/users/admin", &json!({"role": "viewer"}))
        .await
        .unwrap();
    assert_eq!(s, 409, "{b}");
    assert!(b["message"].as_str().unwrap().contains("last admin"), "{b}");
    let (s, b) = admin.delete("/api/v1/users/admin").await.unwrap();
    assert_eq!(s, 409, "{b}");
    let (s, b) = viewer
        .put(
            "/api/v1/users/me/password",
            &json!({"currentPassword": "wrong-password", "newPassword": "a-new-password-2"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 403, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("currentPassword"),
        "{b}"
    );
    let (s, b) = viewer
        .put(
            "/api/v1/users/me/password",
            &json!({"currentPassword": VIEWER_PW, "newPassword": "a-new-password-2"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 204, "{b}");
    login_as(&p, "viewer1", "a-new-password-2").await;
    // Promoted, the viewer may edit at its next login.
    let (s, b) = admin
        .put("/api/v1/users/viewer1", &json!({"role": "editor"}))
        .await
        .unwrap();
    assert_eq!((s, b["role"].as_str()), (200, Some("editor")), "{b}");
    let promoted = login_as(&p, "viewer1", "a-new-password-2").await;
    let (s, b) = promoted
        .put("/api/v1/rest-apis/orders", &body)
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
    let (_, list) = admin.get("/api/v1/users").await.unwrap();
    assert_eq!(list["pagination"]["total"], 3, "{list}");

    // The audit log: who changed what, from where, with the outcome; never a password.
    let (s, log) = admin.get("/api/v1/audit-log?limit=1000").await.unwrap();
    assert_eq!(s, 200, "{log}");
    let entries = log["list"].as_array().unwrap();
    let find = |user: &str, method: &str, path: &str, status: u64| {
        entries.iter().any(|e| {
            e["username"] == user
                && e["method"] == method
                && e["path"] == path
                && e["status"] == status
                && e["address"] == "127.0.0.1"
                && e["via"] == "login"
        })
    };
    assert!(find("editor1", "POST", "/api/v1/rest-apis", 201), "{log}");
    assert!(
        find(
            "editor1",
            "POST",
            "/api/v1/rest-apis/orders/deployments",
            201
        ),
        "{log}"
    );
    assert!(find("viewer1", "POST", "/api/v1/rest-apis", 403), "{log}");
    assert!(find("admin", "POST", "/api/v1/users", 201), "{log}");
    assert!(
        find("viewer1", "PUT", "/api/v1/users/me/password", 204),
        "{log}"
    );
    for secret in [EDITOR_PW, VIEWER_PW, "a-new-password-2", "long-enough-pw"] {
        assert!(
            !log.to_string().contains(secret),
            "{secret} in the audit log"
        );
    }
    // Filters.
    let (_, refusals) = admin
        .get("/api/v1/audit-log?username=viewer1&failed=true")
        .await
        .unwrap();
    let refusals = refusals["list"].as_array().unwrap();
    assert!(!refusals.is_empty());
    assert!(
        refusals
            .iter()
            .all(|e| e["username"] == "viewer1" && e["status"].as_u64() >= Some(400)),
        "{refusals:?}"
    );
    let (_, puts) = admin
        .get("/api/v1/audit-log?method=put&path=/api/v1/rest-apis")
        .await
        .unwrap();
    assert_eq!(puts["pagination"]["total"], 1, "{puts}");
    let (s, b) = admin
        .get("/api/v1/audit-log?since=yesterday")
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("since")), "{b}");

    // A removed user is out at once, tokens and all.
    assert_eq!(admin.delete("/api/v1/users/editor1").await.unwrap().0, 204);
    let anon = Client::anonymous(&p.base);
    let (s, _) = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "editor1", "password": EDITOR_PW}),
        )
        .await
        .unwrap();
    assert_eq!(s, 401);
}

async fn api_tokens_are_shown_once_bounded_by_role_and_revocable(backend: Backend) {
    let Some(p) = platform(backend, &[]).await else {
        return;
    };
    let admin = p.login("default").await.unwrap();
    add_user(&admin, "editor1", EDITOR_PW, "editor").await;
    let editor = login_as(&p, "editor1", EDITOR_PW).await;

    let (s, b) = editor
        .post("/api/v1/tokens", &json!({"name": "ci", "role": "admin"}))
        .await
        .unwrap();
    assert_eq!(s, 403, "{b}");
    let (s, b) = editor
        .post(
            "/api/v1/tokens",
            &json!({"name": "ci", "expiresIn": "forever"}),
        )
        .await
        .unwrap();
    assert_eq!((s, b["field"].as_str()), (400, Some("expiresIn")), "{b}");
    let (s, created) = editor
        .post(
            "/api/v1/tokens",
            &json!({"name": "ci", "role": "viewer", "expiresIn": "30d"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ght_"), "{created}");
    assert_eq!(created["role"], "viewer");

    // Works as a bearer token, with its own role.
    let bot = Client::anonymous(&p.base).with_bearer(&token);
    assert_eq!(bot.get("/api/v1/rest-apis").await.unwrap().0, 200);
    refused(
        &bot.post(
            "/api/v1/rest-apis",
            &artifact_body("rest-apis", "orders", "/orders"),
        )
        .await
        .unwrap(),
        "viewer",
    );
    let (s, b) = bot
        .post("/api/v1/tokens", &json!({"name": "more"}))
        .await
        .unwrap();
    assert_eq!(s, 403, "a token cannot make tokens: {b}");

    // Listed without its value; stored hashed.
    let (_, list) = editor.get("/api/v1/tokens").await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(!list.to_string().contains(&token), "{list}");
    assert!(list[0]["lastUsedAt"].is_string(), "{list}");
    let db = database(&p).await;
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_ne!(stored, token);
    assert_eq!(stored.len(), 64);

    // An editor token edits; revoked, it stops at once.
    let (_, created) = editor
        .post("/api/v1/tokens", &json!({"name": "deployer"}))
        .await
        .unwrap();
    let deployer = Client::anonymous(&p.base).with_bearer(created["token"].as_str().unwrap());
    let (s, b) = deployer
        .post(
            "/api/v1/rest-apis",
            &artifact_body("rest-apis", "orders", "/orders"),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{b}");
    let (_, log) = admin.get("/api/v1/audit-log").await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(log["list"][0]["via"], format!("api-token:{id}"), "{log}");
    assert_eq!(log["list"][0]["username"], "editor1", "{log}");
    assert_eq!(
        editor
            .delete(&format!("/api/v1/tokens/{id}"))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(deployer.get("/api/v1/rest-apis").await.unwrap().0, 401);
    // The admin sees everyone's tokens and may revoke them.
    let (_, all) = admin.get("/api/v1/tokens").await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let ci = created_id(&all, "ci");
    assert_eq!(
        admin
            .delete(&format!("/api/v1/tokens/{ci}"))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(bot.get("/api/v1/rest-apis").await.unwrap().0, 401);
}

fn created_id(list: &Value, name: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}
