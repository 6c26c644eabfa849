//! The web console at `/console/`: server-rendered pages (maud), one small script of our own
//! for live values (server-sent events), confirmations and copy buttons, and one stylesheet,
//! all inside the binary. Nothing is fetched from elsewhere; a Content-Security-Policy allows
//! only this origin and no inline script. Actions are plain forms carrying the session's CSRF
//! token, handled by the same services as the API, with the same role checks and audit log.

mod actions;
mod artifacts;
mod layout;
mod live;
mod overview;
mod people;
mod records;
pub mod session;

use axum::extract::{Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;
use session::Signed;

const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// What every console answer carries: only this origin's script, style and connections, no
/// framing, no sniffing, no caching of pages that show secrets once.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(overview::page))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/live", get(live::stream))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
        .merge(artifacts::router())
        .merge(records::router())
        .merge(people::router())
        .layer(axum::middleware::from_fn_with_state(state, headers))
}

async fn headers(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    organization: String,
}

fn login_form(error: Option<&str>, username: &str, organization: &str) -> Response {
    let body = html! {
        form.signin method="post" action="/console/login" {
            h1 { "Sign in to Gatehouse" }
            @if let Some(e) = error {
                p.error #signin-error role="alert" { (e) }
            }
            label for="username" { "Username" }
            input #username name="username" autocomplete="username" required value=(username);
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required;
            label for="organization" { "Organization" }
            input #organization name="organization" placeholder="default" value=(organization);
            button #signin type="submit" { "Sign in" }
        }
    };
    let status = if error.is_some() {
        axum::http::StatusCode::UNAUTHORIZED
    } else {
        axum::http::StatusCode::OK
    };
    (status, layout::page(None, "Sign in", None, body)).into_response()
}

async fn login_page() -> Response {
    login_form(None, "", "")
}

async fn login(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let org = (!f.organization.trim().is_empty()).then(|| f.organization.trim().to_owned());
    let address = Some(peer.ip());
    let checked =
        crate::service::identity::check_password(&state.db, &f.username, f.password, org, address)
            .await;
    match checked {
        Ok((caller, org_handle)) => match session::start(&state, &caller, &org_handle).await {
            Ok(cookie) => {
                ([(header::SET_COOKIE, cookie)], Redirect::to("/console/")).into_response()
            }
            Err(e) => e.into_response(),
        },
        Err(ApiError::Unauthorized(m) | ApiError::Forbidden(m)) => {
            login_form(Some(&m), &f.username, &f.organization)
        }
        Err(e @ ApiError::Throttled { .. }) => {
            let mut page = login_form(Some(&e.to_string()), &f.username, &f.organization);
            *page.status_mut() = e.status();
            page
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    Signed(s): Signed,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(e) = s.check_csrf(&f.csrf) {
        return e.into_response();
    }
    match session::end(&state, &headers).await {
        Ok(cookie) => (
            [(header::SET_COOKIE, cookie)],
            Redirect::to("/console/login"),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
