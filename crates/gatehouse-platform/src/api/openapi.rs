//! OpenAPI documents built from the handlers' annotations, and the offline docs page.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Spec;
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use gatehouse_core::ArtifactKind;

use crate::api::{
    artifacts, identity, internal, llm_templates, people, resources, secrets, subscriptions, ws,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse control plane", description = "Define REST APIs, LLM providers, LLM proxies and MCP proxies, and deploy them to gateways."),
    paths(
        identity::login, identity::logout, identity::create_org, identity::list_orgs,
        resources::create_project, resources::list_projects, resources::get_project, resources::update_project, resources::delete_project,
        resources::create_gateway, resources::list_gateways, resources::get_gateway, resources::update_gateway, resources::delete_gateway,
        resources::create_token, resources::list_tokens, resources::revoke_token,
        artifacts::create, artifacts::list, artifacts::get, artifacts::update, artifacts::delete,
        artifacts::deploy, artifacts::list_deployments, artifacts::get_deployment, artifacts::undeploy, artifacts::restore,
        artifacts::delete_deployment, artifacts::create_key, artifacts::list_keys, artifacts::revoke_key,
        subscriptions::create_plan, subscriptions::list_plans, subscriptions::get_plan, subscriptions::update_plan, subscriptions::delete_plan,
        subscriptions::create, subscriptions::list, subscriptions::get, subscriptions::update, subscriptions::delete,
        llm_templates::list, llm_templates::get, llm_templates::create, llm_templates::replace, llm_templates::delete,
        secrets::create, secrets::list, secrets::get, secrets::update, secrets::delete,
        people::create_user, people::list_users, people::me, people::change_password, people::get_user,
        people::update_user, people::delete_user, people::create_token, people::list_tokens,
        people::revoke_token, people::audit_log,
    ),
    components(schemas(
        gatehouse_core::spec::RestApiSpec, gatehouse_core::spec::LlmProviderSpec,
        gatehouse_core::spec::LlmProxySpec, gatehouse_core::spec::McpSpec, ArtifactIdentity, ArtifactMeta,
    )),
    modifiers(&BearerAuth)
)]
struct PublicApi;

/// Identity fields of an artifact body, beside its spec fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
struct ArtifactIdentity {
    /// The handle; derived from `displayName` when omitted. Immutable.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    id: Option<String>,
    /// Handle of the project (all kinds but LLM providers).
    project_id: Option<String>,
    /// Read-only, ignored: a body read from a GET may be sent back as it is.
    uuid: Option<serde_json::Value>,
    /// Read-only, ignored.
    kind: Option<serde_json::Value>,
    /// Read-only, ignored.
    created_at: Option<serde_json::Value>,
    /// Read-only, ignored.
    updated_at: Option<serde_json::Value>,
    /// Read-only, ignored.
    origin: Option<serde_json::Value>,
    /// Read-only, ignored.
    gateway_id: Option<serde_json::Value>,
    /// Read-only, ignored.
    gateway_state: Option<serde_json::Value>,
}

/// Where an artifact was defined.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "kebab-case")]
enum ArtifactOrigin {
    /// Through this API.
    ControlPlane,
    /// On a gateway's own management API (read-only here).
    Gateway,
}

/// Fields the platform adds to an artifact it returns.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
struct ArtifactMeta {
    id: String,
    uuid: String,
    kind: ArtifactKind,
    project_id: Option<String>,
    origin: ArtifactOrigin,
    /// The gateway that defined it (origin `gateway`).
    gateway_id: Option<String>,
    /// Its state on that gateway (origin `gateway`).
    gateway_state: Option<String>,
    created_at: String,
    updated_at: String,
}

fn spec_schema(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::RestApi => "RestApiSpec",
        ArtifactKind::LlmProvider => "LlmProviderSpec",
        ArtifactKind::LlmProxy => "LlmProxySpec",
        ArtifactKind::Mcp => "McpSpec",
    }
}

/// `allOf` the kind's spec and `extra`.
fn kind_schema(
    kind: ArtifactKind,
    extra: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::AllOfBuilder;
    use utoipa::openapi::Ref;
    AllOfBuilder::new()
        .item(Ref::from_schema_name(spec_schema(kind)))
        .item(Ref::from_schema_name(extra))
        .into()
}

/// Gives an artifact route of `kind` the kind's own request and response schemas.
fn type_artifact_operation(op: &mut utoipa::openapi::path::Operation, kind: ArtifactKind) {
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::{ContentBuilder, RefOr, Required};
    let is_artifact_body = op
        .request_body
        .as_ref()
        .and_then(|b| b.content.get("application/json"))
        .is_some_and(|c| {
            matches!(
                c.schema,
                Some(RefOr::T(utoipa::openapi::schema::Schema::Object(_)))
            )
        });
    if is_artifact_body {
        op.request_body = Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(kind_schema(kind, "ArtifactIdentity")))
                        .build(),
                )
                .required(Some(Required::True))
                .build(),
        );
    }
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    use utoipa::openapi::Ref;
    // A list route takes the page parameters.
    let paged = op
        .parameters
        .as_ref()
        .is_some_and(|ps| ps.iter().any(|p| p.name == "limit"));
    for (code, resp) in op.responses.responses.iter_mut() {
        if code != "200" && code != "201" {
            continue;
        }
        use utoipa::openapi::schema::Schema;
        let Some(content) = (match resp {
            RefOr::T(resp) => resp.content.get_mut("application/json"),
            RefOr::Ref(_) => None,
        }) else {
            continue;
        };
        if !matches!(content.schema, Some(RefOr::T(Schema::Object(_)))) {
            continue;
        }
        content.schema = Some(if paged {
            // The list envelope, its items the kind's.
            ObjectBuilder::new()
                .property(
                    "count",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .property(
                    "list",
                    ArrayBuilder::new().items(kind_schema(kind, "ArtifactMeta")),
                )
                .property("pagination", Ref::from_schema_name("Pagination"))
                .required("count")
                .required("list")
                .required("pagination")
                .into()
        } else {
            kind_schema(kind, "ArtifactMeta")
        });
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse gateway internal API", description = "What gateways read from the control plane. Every call carries the gateway's token in the api-key header."),
    paths(ws::connect, internal::desired_state, internal::fetch_batch, internal::current_content, internal::exists, internal::events, internal::ack, internal::api_keys, internal::secrets, internal::publish, subscriptions::internal_plans, subscriptions::internal_subscriptions),
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
                if path.starts_with(&template_public) {
                    type_artifact_operation(op, kind);
                }
            }
            spec.paths.paths.insert(new_path, item);
        }
    }
    spec
}

/// The answers every route of a kind can give besides its own, documented once here so that no
/// route leaves one out: 401 for a route that needs a token, 403 for a public route (the role),
/// 404 for a route naming a resource in its path, 400 for a route reading a body or a query,
/// 413 for a body over the limit. Each with the error body.
fn document_common_answers(spec: &mut Spec, public: bool) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in spec.paths.paths.iter_mut() {
        let named = path.contains('{');
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let queried = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query))
            });
            let body = op.request_body.is_some();
            let mut wanted: Vec<(&str, &str)> = vec![];
            if secured {
                wanted.push((
                    "401",
                    "No token, or one that is invalid, expired or revoked",
                ));
            }
            if secured && public {
                wanted.push(("403", "Your role does not allow it"));
            }
            if named {
                wanted.push(("404", "No such resource"));
            }
            if body || queried || named {
                wanted.push(("400", "Invalid input, naming the field"));
            }
            if body {
                wanted.push(("413", "The body is larger than the limit"));
                // A body may name what does not exist (a plan, a provider, a secret) or try to
                // change an id.
                wanted.push(("404", "The body refers to something that does not exist"));
                wanted.push(("409", "A conflict, e.g. an id that cannot change"));
            }
            for (code, description) in wanted {
                op.responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
}

/// The public API's OpenAPI document.
pub fn public_document() -> Spec {
    let mut spec = expand_kinds(PublicApi::openapi(), "/api/v1", "/api/internal/v1");
    document_common_answers(&mut spec, true);
    spec
}

/// The internal API's OpenAPI document.
pub fn internal_document() -> Spec {
    let mut spec = expand_kinds(InternalApi::openapi(), "/api/v1", "/api/internal/v1");
    document_common_answers(&mut spec, false);
    spec
}

/// `spec` as JSON, finished (`openapi_shapes`).
fn finished(spec: Spec) -> Json<serde_json::Value> {
    let mut doc = serde_json::to_value(spec).unwrap_or_default();
    policies_per_kind(&mut doc);
    super::openapi_shapes::finish(&mut doc);
    Json(doc)
}

/// Each kind's spec takes only the policies that apply to it (`PolicyName::applies_to`):
/// `PolicyOfRestApi`, ... hold those variants of `Policy`, and each spec (and a REST API's
/// operations) refers to its own.
fn policies_per_kind(doc: &mut serde_json::Value) {
    use gatehouse_core::policy::PolicyName;
    use serde_json::Value;
    let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    let Some(variants) = schemas
        .get("Policy")
        .and_then(|p| p.get("oneOf"))
        .and_then(Value::as_array)
        .cloned()
    else {
        return;
    };
    for kind in ArtifactKind::ALL {
        let own: Vec<Value> = variants
            .iter()
            .filter(|v| {
                v.pointer("/properties/name/enum/0")
                    .and_then(Value::as_str)
                    .and_then(|n| n.parse::<PolicyName>().ok())
                    .is_some_and(|n| n.applies_to(kind))
            })
            .cloned()
            .collect();
        let name = format!("PolicyOf{}", kind.as_str());
        schemas.insert(
            name.clone(),
            serde_json::json!({"description": format!("A policy a {} may carry.", kind.label()), "oneOf": own}),
        );
        let holders: &[&str] = match kind {
            ArtifactKind::RestApi => &["RestApiSpec", "Operation"],
            _ => &[spec_schema(kind)],
        };
        for holder in holders {
            if let Some(schema) = schemas.get_mut(*holder) {
                let text = schema.to_string().replace(
                    "\"#/components/schemas/Policy\"",
                    &format!("\"#/components/schemas/{name}\""),
                );
                if let Ok(v) = serde_json::from_str(&text) {
                    *schema = v;
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn public_spec() -> Json<serde_json::Value> {
    finished(public_document())
}

/// `GET /api/internal/v1/openapi.json`.
pub async fn internal_spec() -> Json<serde_json::Value> {
    finished(internal_document())
}

/// The browsable docs page at `/docs`, served from assets built into the binary.
pub fn docs() -> axum::Router<AppState> {
    // The spec itself is served by `public_spec`; the page only points at it.
    axum::Router::from(
        SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")),
    )
}
