//! OpenAPI documents built from the handlers' annotations, and the offline docs page.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Spec;
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use gatehouse_core::ArtifactKind;

use crate::api::{artifacts, identity, internal, resources};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse control plane", description = "Define REST APIs, LLM providers, LLM proxies and MCP proxies, and deploy them to gateways."),
    paths(
        identity::login, identity::create_org, identity::list_orgs,
        resources::create_project, resources::list_projects, resources::get_project, resources::update_project, resources::delete_project,
        resources::create_gateway, resources::list_gateways, resources::get_gateway, resources::update_gateway, resources::delete_gateway,
        resources::create_token, resources::list_tokens, resources::revoke_token,
        artifacts::create, artifacts::list, artifacts::get, artifacts::update, artifacts::delete,
        artifacts::deploy, artifacts::list_deployments, artifacts::get_deployment, artifacts::undeploy, artifacts::restore,
        artifacts::delete_deployment,
    ),
    modifiers(&BearerAuth)
)]
struct PublicApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse gateway internal API", description = "What gateways read from the control plane. Every call carries the gateway's token in the api-key header."),
    paths(internal::desired_state, internal::fetch_batch, internal::current_content, internal::exists, internal::events, internal::ack),
    modifiers(&GatewayAuth)
)]
struct InternalApi;

struct BearerAuth;
impl Modify for BearerAuth {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

struct GatewayAuth;
impl Modify for GatewayAuth {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api-key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
        );
    }
}

/// Repeats the template routes annotated for `rest-apis` (and internal `apis`) for every kind,
/// since the same handlers serve all four.
fn expand_kinds(mut spec: Spec, public_prefix: &str, internal_prefix: &str) -> Spec {
    let template_public = format!("{public_prefix}/{}", ArtifactKind::RestApi.collection());
    let template_internal = format!(
        "{internal_prefix}/{}/",
        ArtifactKind::RestApi.internal_collection()
    );
    let templates: Vec<(String, utoipa::openapi::PathItem)> = spec
        .paths
        .paths
        .iter()
        .filter(|(p, _)| p.starts_with(&template_public) || p.starts_with(&template_internal))
        .map(|(p, i)| (p.clone(), i.clone()))
        .collect();
    for (path, item) in templates {
        spec.paths.paths.remove(&path);
        for kind in ArtifactKind::ALL {
            let new_path = path
                .replacen(
                    &template_public,
                    &format!("{public_prefix}/{}", kind.collection()),
                    1,
                )
                .replacen(
                    &template_internal,
                    &format!("{internal_prefix}/{}/", kind.internal_collection()),
                    1,
                );
            let mut item = item.clone();
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.tags = Some(vec![kind.label().to_owned() + "s"]);
                op.operation_id = op
                    .operation_id
                    .as_ref()
                    .map(|id| format!("{id}_{}", kind.event_prefix()));
            }
            spec.paths.paths.insert(new_path, item);
        }
    }
    spec
}

/// The public API's OpenAPI document.
pub fn public_document() -> Spec {
    expand_kinds(PublicApi::openapi(), "/api/v1", "/api/internal/v1")
}

/// The internal API's OpenAPI document.
pub fn internal_document() -> Spec {
    expand_kinds(InternalApi::openapi(), "/api/v1", "/api/internal/v1")
}

/// `GET /api/v1/openapi.json`.
pub async fn public_spec() -> Json<Spec> {
    Json(public_document())
}

/// `GET /api/internal/v1/openapi.json`.
pub async fn internal_spec() -> Json<Spec> {
    Json(internal_document())
}

/// The browsable docs page at `/docs`, served from assets built into the binary.
pub fn docs() -> axum::Router<AppState> {
    // The spec itself is served by `public_spec`; the page only points at it.
    axum::Router::from(
        SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")),
    )
}
