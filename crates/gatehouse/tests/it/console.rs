//! The console's security, with a plain HTTP client (the browser flows are in
//! tests/sdk/test_console.py): the session cookie is HttpOnly and SameSite=Strict, every form
//! needs the session's CSRF token, pages carry a Content-Security-Policy without inline script,
//! signing out ends the session on the server, and a viewer's form is refused like the API.

use crate::common::*;
use serde_json::json;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in; returns the session cookie (`name=value`) and the CSRF token of the overview.
async fn sign_in(base: &str, user: &str, password: &str) -> (String, String) {
    let res = client()
        .post(format!("{base}/console/login"))
        .form(&[
            ("username", user),
            ("password", password),
            ("organization", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = client()
        .get(format!("{base}/console/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" onclick="),
        "no inline script"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_forms_and_roles_are_guarded() {
    let p = platform(Backend::Sqlite, &[]).await.unwrap();
    let admin = p.login("default").await.unwrap();
    let (s, _) = admin
        .post(
            "/api/v1/users",
            &json!({"username": "watcher", "password": "watcher-password", "role": "viewer"}),
        )
        .await
        .unwrap();
    assert_eq!(s, 201);
    let base = &p.base;
    let (cookie, csrf) = sign_in(base, "admin", &p.admin_password).await;
    let create = |cookie: String, csrf: String| async move {
        let doc = "id: guarded\ndisplayName: Guarded\nprojectId: default\ncontext: /guarded\nupstream:\n  main:\n    url: http://127.0.0.1:9\n";
        client()
            .post(format!("{base}/console/rest-apis/new"))
            .header("cookie", cookie)
            .form(&[("csrf", csrf.as_str()), ("document", doc)])
            .send()
            .await
            .unwrap()
            .status()
    };
    // Without the session's CSRF token, or with another, nothing is done.
    assert_eq!(create(cookie.clone(), String::new()).await, 403);
    assert_eq!(create(cookie.clone(), "forged".into()).await, 403);
    assert_eq!(admin.get("/api/v1/rest-apis/guarded").await.unwrap().0, 404);
    // A viewer's form is refused like the API would refuse it, and audited.
    let (vcookie, vcsrf) = sign_in(base, "watcher", "watcher-password").await;
    assert_eq!(create(vcookie, vcsrf).await, 403);
    assert_eq!(admin.get("/api/v1/rest-apis/guarded").await.unwrap().0, 404);
    let (_, log) = admin
        .get("/api/v1/audit-log?username=watcher")
        .await
        .unwrap();
    assert_eq!(log["list"][0]["status"], 403, "{log}");
    assert_eq!(log["list"][0]["via"], "console", "{log}");
    // With it, done.
    assert_eq!(create(cookie.clone(), csrf.clone()).await, 303);
    assert_eq!(admin.get("/api/v1/rest-apis/guarded").await.unwrap().0, 200);

    // Signing out ends the session on the server: the same cookie opens nothing after.
    let out = client()
        .post(format!("{base}/console/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let again = client()
        .get(format!("{base}/console/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()["location"], "/console/login");
}
