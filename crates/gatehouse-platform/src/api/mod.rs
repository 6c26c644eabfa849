//! HTTP surface of the platform: the public API (`/api/v1`), the gateway internal API
//! (`/api/internal/v1`), docs and operations endpoints.

mod artifacts;
mod body;
mod identity;
mod internal;
mod llm_templates;
mod openapi;
mod openapi_rules;
mod openapi_shapes;
mod ops;
mod people;
mod resources;
mod secrets;
mod subscriptions;
mod ws;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};

use gatehouse_core::ArtifactKind;

use crate::state::AppState;

pub use body::{JsonBody, Params};

/// Installs the Prometheus recorder so that metrics are recorded from the start.
pub fn ops_prometheus() {
    ops::prometheus();
}

/// The whole router of a platform process.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let mut public = Router::new()
        .route("/auth/login", post(identity::login))
        .route("/auth/logout", post(identity::logout))
        .route(
            "/organizations",
            post(identity::create_org).get(identity::list_orgs),
        )
        .route(
            "/projects",
            post(resources::create_project).get(resources::list_projects),
        )
        .route(
            "/projects/{id}",
            get(resources::get_project)
                .put(resources::update_project)
                .delete(resources::delete_project),
        )
        .route(
            "/gateways",
            post(resources::create_gateway).get(resources::list_gateways),
        )
        .route(
            "/gateways/{id}",
            get(resources::get_gateway)
                .put(resources::update_gateway)
                .delete(resources::delete_gateway),
        )
        .route(
            "/gateways/{id}/tokens",
            post(resources::create_token).get(resources::list_tokens),
        )
        .route(
            "/gateways/{id}/tokens/{token_id}",
            axum::routing::delete(resources::revoke_token),
        )
        .route(
            "/subscription-plans",
            post(subscriptions::create_plan).get(subscriptions::list_plans),
        )
        .route(
            "/subscription-plans/{id}",
            get(subscriptions::get_plan)
                .put(subscriptions::update_plan)
                .delete(subscriptions::delete_plan),
        )
        .route(
            "/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/llm-provider-templates",
            post(llm_templates::create).get(llm_templates::list),
        )
        .route(
            "/llm-provider-templates/{id}",
            get(llm_templates::get)
                .put(llm_templates::replace)
                .delete(llm_templates::delete),
        )
        .route("/secrets", post(secrets::create).get(secrets::list))
        .route(
            "/secrets/{id}",
            get(secrets::get)
                .put(secrets::update)
                .delete(secrets::delete),
        )
        .route(
            "/subscriptions/{id}",
            get(subscriptions::get)
                .put(subscriptions::update)
                .delete(subscriptions::delete),
        );
    // The four kinds share one set of handlers; the route tells them which kind they serve.
    for kind in ArtifactKind::ALL {
        let c = kind.collection();
        let k = Extension(kind);
        public = public
            .route(
                &format!("/{c}"),
                post(artifacts::create).get(artifacts::list).layer(k),
            )
            .route(
                &format!("/{c}/{{id}}"),
                get(artifacts::get)
                    .put(artifacts::update)
                    .delete(artifacts::delete)
                    .layer(k),
            )
            .route(
                &format!("/{c}/{{id}}/deployments"),
                post(artifacts::deploy)
                    .get(artifacts::list_deployments)
                    .layer(k),
            )
            .route(
                &format!("/{c}/{{id}}/deployments/{{deployment_id}}"),
                get(artifacts::get_deployment)
                    .delete(artifacts::delete_deployment)
                    .layer(k),
            )
            .route(
                &format!("/{c}/{{id}}/deployments/{{deployment_id}}/undeploy"),
                post(artifacts::undeploy).layer(k),
            )
            .route(
                &format!("/{c}/{{id}}/deployments/{{deployment_id}}/restore"),
                post(artifacts::restore).layer(k),
            )
            .route(
                &format!("/{c}/{{id}}/api-keys"),
                post(artifacts::create_key)
                    .get(artifacts::list_keys)
                    .layer(k),
            )
            .route(
                &format!("/{c}/{{id}}/api-keys/{{key_id}}"),
                axum::routing::delete(artifacts::revoke_key).layer(k),
            );
    }
    public = public
        .route("/users", post(people::create_user).get(people::list_users))
        .route("/users/me", get(people::me))
        .route(
            "/users/me/password",
            axum::routing::put(people::change_password),
        )
        .route(
            "/users/{username}",
            get(people::get_user)
                .put(people::update_user)
                .delete(people::delete_user),
        )
        .route(
            "/tokens",
            post(people::create_token).get(people::list_tokens),
        )
        .route("/tokens/{id}", axum::routing::delete(people::revoke_token))
        .route("/audit-log", get(people::audit_log))
        .route("/openapi.json", get(openapi::public_spec))
        // Every route: who is calling, whether their role allows it, and the audit log.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::authorize,
        ));

    let mut internal = Router::new()
        .route("/deployments", get(internal::desired_state))
        .route("/deployments/fetch-batch", post(internal::fetch_batch))
        .route("/deployment-acks", post(internal::ack))
        .route("/artifacts/exists", post(internal::exists))
        .route("/events", get(internal::events))
        .route("/api-keys", get(internal::api_keys))
        .route("/secrets", get(internal::secrets))
        .route("/gateway-artifacts", post(internal::publish))
        .route("/subscription-plans", get(subscriptions::internal_plans))
        .route("/subscriptions", get(subscriptions::internal_subscriptions))
        .route("/ws/gateways/connect", get(ws::connect))
        .route("/openapi.json", get(openapi::internal_spec));
    for kind in ArtifactKind::ALL {
        internal = internal.route(
            &format!("/{}/{{artifact_id}}", kind.internal_collection()),
            get(internal::current_content).layer(Extension(kind)),
        );
    }

    Router::new()
        .merge(crate::console::router(state.clone()))
        .nest("/api/v1", public)
        .nest("/api/internal/v1", internal)
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .merge(openapi::docs())
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::security_headers,
        ))
        .layer(axum::middleware::from_fn(ops::record_metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
