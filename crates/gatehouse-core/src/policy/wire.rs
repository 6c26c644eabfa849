//! How a `Policy` reads and writes: `{name, version: v1, params?}`, with the params validated by
//! the type the name selects, and its OpenAPI schema made from the same params types.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::*;

/// The one policy version there is.
const VERSION: &str = "v1";

impl Policy {
    fn params_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Policy::ApiKeyAuth(p) => serde_json::to_value(p),
            Policy::RateLimit(p) => serde_json::to_value(p),
            Policy::Cors(p) => serde_json::to_value(p),
            Policy::SetHeaders(p) => serde_json::to_value(p),
            Policy::ModelAllowList(p) => serde_json::to_value(p),
            Policy::TokenRateLimit(p) => serde_json::to_value(p),
            Policy::RegexGuardrail(p) => serde_json::to_value(p),
            Policy::PiiMasking(p) => serde_json::to_value(p),
            Policy::PromptSizeLimit(p) => serde_json::to_value(p),
            Policy::JwtAuth(p) => serde_json::to_value(p),
            Policy::McpAuthz(p) => serde_json::to_value(p),
        }
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let params = self.params_value().map_err(serde::ser::Error::custom)?;
        let has_params = params.as_object().is_some_and(|m| !m.is_empty());
        let mut out = s.serialize_struct("Policy", 2 + usize::from(has_params))?;
        out.serialize_field("name", &self.name())?;
        out.serialize_field("version", VERSION)?;
        if has_params {
            out.serialize_field("params", &params)?;
        }
        out.end()
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Name,
    Version,
    Params,
}

/// Deserializes the params of one named policy.
struct ParamsOf(PolicyName);

impl<'de> DeserializeSeed<'de> for ParamsOf {
    type Value = Policy;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Policy, D::Error> {
        Ok(match self.0 {
            PolicyName::ApiKeyAuth => Policy::ApiKeyAuth(Deserialize::deserialize(d)?),
            PolicyName::RateLimit => Policy::RateLimit(Deserialize::deserialize(d)?),
            PolicyName::Cors => Policy::Cors(Deserialize::deserialize(d)?),
            PolicyName::SetHeaders => Policy::SetHeaders(Deserialize::deserialize(d)?),
            PolicyName::ModelAllowList => Policy::ModelAllowList(Deserialize::deserialize(d)?),
            PolicyName::TokenRateLimit => Policy::TokenRateLimit(Deserialize::deserialize(d)?),
            PolicyName::RegexGuardrail => Policy::RegexGuardrail(Deserialize::deserialize(d)?),
            PolicyName::PiiMasking => Policy::PiiMasking(Deserialize::deserialize(d)?),
            PolicyName::PromptSizeLimit => Policy::PromptSizeLimit(Deserialize::deserialize(d)?),
            PolicyName::JwtAuth => Policy::JwtAuth(Deserialize::deserialize(d)?),
            PolicyName::McpAuthz => Policy::McpAuthz(Deserialize::deserialize(d)?),
        })
    }
}

/// The params of one named policy, read from an object only.
struct ObjectParams(PolicyName);

impl<'de> DeserializeSeed<'de> for ObjectParams {
    type Value = Policy;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Policy, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectParams {
    type Value = Policy;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of params")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Policy, A::Error> {
        ParamsOf(self.0).deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// Params given before the name (or not at all): parsed once the name is known, naming the
/// failing field inside `params` in the message.
fn params_from_value<E: de::Error>(name: PolicyName, value: Value) -> Result<Policy, E> {
    let mut track = serde_path_to_error::Track::new();
    let d = serde_path_to_error::Deserializer::new(value, &mut track);
    ObjectParams(name).deserialize(d).map_err(|e| {
        let path = track.path().to_string();
        let message = e.to_string();
        let inner = crate::validate::without_position(&message);
        if path == "." {
            E::custom(format_args!("params: {inner}"))
        } else {
            E::custom(format_args!("params.{path}: {inner}"))
        }
    })
}

/// `version`, which must be `v1`.
struct VersionV1;

impl<'de> Deserialize<'de> for VersionV1 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        if v == VERSION {
            Ok(VersionV1)
        } else {
            Err(de::Error::custom(format_args!(
                "'{v}' is not a version of this policy; expected {VERSION}"
            )))
        }
    }
}

struct PolicyVisitor;

impl<'de> Visitor<'de> for PolicyVisitor {
    type Value = Policy;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a policy {name, version, params}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Policy, A::Error> {
        let mut name: Option<PolicyName> = None;
        let mut policy: Option<Policy> = None;
        let mut early_params: Option<Value> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Name => name = Some(map.next_value()?),
                Field::Version => {
                    map.next_value::<VersionV1>()?;
                }
                // With the name known, the params deserialize in place, so errors name their
                // field (`params.requests`); either way they must be an object (a list is not
                // read as a struct).
                Field::Params => match name {
                    Some(n) => policy = Some(map.next_value_seed(ObjectParams(n))?),
                    None => early_params = Some(map.next_value()?),
                },
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        match policy {
            Some(p) => Ok(p),
            None => params_from_value(
                name,
                early_params.unwrap_or_else(|| Value::Object(Map::new())),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PolicyVisitor)
    }
}

fn variant_schema(name: PolicyName, params: RefOr<Schema>, params_required: bool) -> ObjectBuilder {
    let about = match name {
        PolicyName::ApiKeyAuth => "401 without an active, unexpired API key of the artifact.",
        PolicyName::RateLimit => "429 with RateLimit-* and Retry-After beyond `requests` per `window`.",
        PolicyName::Cors => "Preflights answered at the gateway; Access-Control-Allow-* on responses.",
        PolicyName::SetHeaders => "Sets and removes request and response headers.",
        PolicyName::ModelAllowList => {
            "400 in the provider API's error shape for a model outside `models` (globs with `*`). LLM providers and LLM proxies only."
        }
        PolicyName::TokenRateLimit => {
            "429 in the provider API's error shape once `tokens` per `window` were used; the crossing request completes. LLM providers and LLM proxies only."
        }
        PolicyName::RegexGuardrail => {
            "Refuses a request (400) or response (502) whose text matches a rule, naming it. LLM providers and LLM proxies only."
        }
        PolicyName::PiiMasking => {
            "Masks e-mail addresses, phone numbers, card numbers and custom patterns in prompts before they leave. LLM providers and LLM proxies only."
        }
        PolicyName::PromptSizeLimit => {
            "400 for a prompt over `maxChars` characters or `maxTokens` estimated tokens. LLM providers and LLM proxies only."
        }
        PolicyName::McpAuthz => {
            "Tools matched by a rule are listed and callable only for tokens holding its scopes and claim values; others get a JSON-RPC error naming the tool. MCP proxies with jwt-auth only."
        }
        PolicyName::JwtAuth => {
            "401 with WWW-Authenticate: Bearer without a valid JWT from `issuer` for one of `audiences`, signed by a key of `jwksUrl` (RS/ES/EdDSA; none and HMAC refused)."
        }
    };
    let mut obj = ObjectBuilder::new()
        .title(Some(name.as_str()))
        .description(Some(about))
        .property(
            "name",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([name.as_str()])),
        )
        .required("name")
        .property(
            "version",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([VERSION]))
                .default(Some(VERSION.into())),
        )
        .property("params", params)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    if params_required {
        obj = obj.required("params");
    }
    obj
}

impl PartialSchema for Policy {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "A policy: `{name, version: v1, params?}`. See docs/policies.md for each policy.",
            ))
            .item(variant_schema(
                PolicyName::ApiKeyAuth,
                ApiKeyAuthParams::schema(),
                false,
            ))
            .item(variant_schema(
                PolicyName::RateLimit,
                RateLimitParams::schema(),
                true,
            ))
            .item(variant_schema(
                PolicyName::Cors,
                CorsParams::schema(),
                false,
            ))
            .item(variant_schema(
                PolicyName::SetHeaders,
                SetHeadersParams::schema(),
                false,
            ))
            .item(variant_schema(
                PolicyName::ModelAllowList,
                ModelAllowListParams::schema(),
                true,
            ))
            .item(variant_schema(
                PolicyName::TokenRateLimit,
                TokenRateLimitParams::schema(),
                true,
            ))
            .item(variant_schema(
                PolicyName::RegexGuardrail,
                RegexGuardrailParams::schema(),
                true,
            ))
            .item(variant_schema(
                PolicyName::PiiMasking,
                PiiMaskingParams::schema(),
                false,
            ))
            .item(variant_schema(
                PolicyName::PromptSizeLimit,
                PromptSizeLimitParams::schema(),
                true,
            ))
            .item(variant_schema(
                PolicyName::JwtAuth,
                JwtAuthParams::schema(),
                true,
            ))
            .item(variant_schema(
                PolicyName::McpAuthz,
                McpAuthzParams::schema(),
                true,
            ))
            .into()
    }
}

impl ToSchema for Policy {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <ApiKeyAuthParams as ToSchema>::schemas(schemas);
        <RateLimitParams as ToSchema>::schemas(schemas);
        <CorsParams as ToSchema>::schemas(schemas);
        <SetHeadersParams as ToSchema>::schemas(schemas);
        <ModelAllowListParams as ToSchema>::schemas(schemas);
        <TokenRateLimitParams as ToSchema>::schemas(schemas);
        <RegexGuardrailParams as ToSchema>::schemas(schemas);
        <PiiMaskingParams as ToSchema>::schemas(schemas);
        <PromptSizeLimitParams as ToSchema>::schemas(schemas);
        <JwtAuthParams as ToSchema>::schemas(schemas);
        <McpAuthzParams as ToSchema>::schemas(schemas);
    }
}
