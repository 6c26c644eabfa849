//! The specs of the four artifact kinds and their validation (CONTRACT §5).
//!
//! Parsing a spec validates it completely; a value of these types is always servable.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

use crate::handle::Handle;
use crate::kind::ArtifactKind;
use crate::validate::{from_value, FieldError};

/// Built-in LLM provider templates.
pub const LLM_TEMPLATES: [&str; 5] = ["openai", "anthropic", "azure-openai", "gemini", "mistral"];

/// HTTP methods an operation may name.
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Path prefix the gateway keeps for itself.
pub const RESERVED_PREFIX: &str = "/_gateway-health";

fn default_version() -> String {
    "v1.0".to_owned()
}

fn default_policy_version() -> String {
    "v1".to_owned()
}

/// A policy attached to an artifact or an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    #[serde(default = "default_policy_version")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
}

/// An upstream endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    pub url: String,
}

/// Main and optional sandbox upstreams of a REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestUpstream {
    pub main: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Endpoint>,
}

/// One operation of a REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
}

/// `spec` of a `RestApi`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestApiSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    pub context: String,
    pub upstream: RestUpstream,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_plans: Vec<String>,
}

/// How the gateway authenticates to an LLM upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamAuth {
    #[serde(rename = "type")]
    pub auth_type: String,
    pub header: String,
    /// The credential. Absent in what the public API returns; sealed at rest in the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The upstream of an LLM provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmUpstream {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<UpstreamAuth>,
}

/// Access control mode of an LLM provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    #[default]
    AllowAll,
    DenyAll,
}

/// A path (and optionally methods) excepted from the access mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessException {
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// Which provider paths are reachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessControl {
    #[serde(default)]
    pub mode: AccessMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<AccessException>,
}

/// `spec` of an `LlmProvider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmProviderSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    pub template: String,
    pub context: String,
    pub upstream: LlmUpstream,
    #[serde(default)]
    pub access_control: AccessControl,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_plans: Vec<String>,
}

/// Reference from an LLM proxy to its provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRef {
    #[schema(value_type = String)]
    pub id: Handle,
}

/// `spec` of an `LlmProxy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmProxySpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    pub context: String,
    pub provider: ProviderRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_plans: Vec<String>,
}

/// `spec` of an `Mcp` proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    pub context: String,
    pub upstream: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Handles of the subscription plans offered; when any, callers need a subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_plans: Vec<String>,
}

/// A validated spec of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactSpec {
    RestApi(RestApiSpec),
    LlmProvider(LlmProviderSpec),
    LlmProxy(LlmProxySpec),
    Mcp(McpSpec),
}

impl ArtifactSpec {
    /// Parses and validates `value` as the spec of `kind`. Error fields are relative to the spec.
    pub fn parse(kind: ArtifactKind, value: Value) -> Result<Self, FieldError> {
        if !value.is_object() {
            return Err(FieldError::new("", "must be an object"));
        }
        let spec = match kind {
            ArtifactKind::RestApi => ArtifactSpec::RestApi(from_value(value)?),
            ArtifactKind::LlmProvider => ArtifactSpec::LlmProvider(from_value(value)?),
            ArtifactKind::LlmProxy => ArtifactSpec::LlmProxy(from_value(value)?),
            ArtifactKind::Mcp => ArtifactSpec::Mcp(from_value(value)?),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The kind of this spec.
    pub fn kind(&self) -> ArtifactKind {
        match self {
            ArtifactSpec::RestApi(_) => ArtifactKind::RestApi,
            ArtifactSpec::LlmProvider(_) => ArtifactKind::LlmProvider,
            ArtifactSpec::LlmProxy(_) => ArtifactKind::LlmProxy,
            ArtifactSpec::Mcp(_) => ArtifactKind::Mcp,
        }
    }

    /// The spec as JSON.
    pub fn to_value(&self) -> Value {
        let v = match self {
            ArtifactSpec::RestApi(s) => serde_json::to_value(s),
            ArtifactSpec::LlmProvider(s) => serde_json::to_value(s),
            ArtifactSpec::LlmProxy(s) => serde_json::to_value(s),
            ArtifactSpec::Mcp(s) => serde_json::to_value(s),
        };
        // Serializing plain structs of strings, vectors and maps cannot fail.
        v.unwrap_or(Value::Null)
    }

    /// `displayName`.
    pub fn display_name(&self) -> &str {
        match self {
            ArtifactSpec::RestApi(s) => &s.display_name,
            ArtifactSpec::LlmProvider(s) => &s.display_name,
            ArtifactSpec::LlmProxy(s) => &s.display_name,
            ArtifactSpec::Mcp(s) => &s.display_name,
        }
    }

    /// `version`.
    pub fn version(&self) -> &str {
        match self {
            ArtifactSpec::RestApi(s) => &s.version,
            ArtifactSpec::LlmProvider(s) => &s.version,
            ArtifactSpec::LlmProxy(s) => &s.version,
            ArtifactSpec::Mcp(s) => &s.version,
        }
    }

    /// `context` as written (may hold `$version`).
    pub fn context(&self) -> &str {
        match self {
            ArtifactSpec::RestApi(s) => &s.context,
            ArtifactSpec::LlmProvider(s) => &s.context,
            ArtifactSpec::LlmProxy(s) => &s.context,
            ArtifactSpec::Mcp(s) => &s.context,
        }
    }

    /// The context with `$version` replaced: the path prefix the gateway serves.
    pub fn resolved_context(&self) -> String {
        self.context().replace("$version", self.version())
    }

    /// The provider an LLM proxy forwards through.
    pub fn provider(&self) -> Option<&Handle> {
        match self {
            ArtifactSpec::LlmProxy(s) => Some(&s.provider.id),
            _ => None,
        }
    }

    /// The policies at API level.
    pub fn policies(&self) -> &[Policy] {
        match self {
            ArtifactSpec::RestApi(s) => &s.policies,
            ArtifactSpec::LlmProvider(s) => &s.policies,
            ArtifactSpec::LlmProxy(s) => &s.policies,
            ArtifactSpec::Mcp(s) => &s.policies,
        }
    }

    /// Handles of the subscription plans the artifact offers.
    pub fn subscription_plans(&self) -> &[String] {
        match self {
            ArtifactSpec::RestApi(s) => &s.subscription_plans,
            ArtifactSpec::LlmProvider(s) => &s.subscription_plans,
            ArtifactSpec::LlmProxy(s) => &s.subscription_plans,
            ArtifactSpec::Mcp(s) => &s.subscription_plans,
        }
    }

    /// The upstream credential, for kinds that carry one.
    pub fn credential_mut(&mut self) -> Option<&mut Option<String>> {
        match self {
            ArtifactSpec::LlmProvider(s) => s.upstream.auth.as_mut().map(|a| &mut a.value),
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), FieldError> {
        let kind = self.kind();
        validate_display_name(self.display_name())?;
        validate_version(self.version())?;
        validate_context(self.context(), self.version())?;
        validate_policies(kind, self.policies(), "policies")?;
        for (i, p) in self.subscription_plans().iter().enumerate() {
            crate::handle::Handle::parse(&format!("subscriptionPlans[{i}]"), p)?;
        }
        match self {
            ArtifactSpec::RestApi(s) => {
                validate_url("upstream.main.url", &s.upstream.main.url)?;
                if let Some(sb) = &s.upstream.sandbox {
                    validate_url("upstream.sandbox.url", &sb.url)?;
                }
                let mut seen = std::collections::HashSet::new();
                for (i, op) in s.operations.iter().enumerate() {
                    let at = format!("operations[{i}]");
                    validate_method(&format!("{at}.method"), &op.method)?;
                    validate_operation_path(&format!("{at}.path"), &op.path)?;
                    validate_policies(kind, &op.policies, &format!("{at}.policies"))?;
                    if !seen.insert((op.method.as_str(), normalized_path(&op.path))) {
                        return Err(FieldError::new(
                            at,
                            format!("duplicate operation {} {}", op.method, op.path),
                        ));
                    }
                }
            }
            ArtifactSpec::LlmProvider(s) => {
                if !LLM_TEMPLATES.contains(&s.template.as_str()) {
                    return Err(FieldError::new(
                        "template",
                        format!(
                            "unknown template '{}'; expected one of {}",
                            s.template,
                            LLM_TEMPLATES.join(", ")
                        ),
                    ));
                }
                validate_url("upstream.url", &s.upstream.url)?;
                if let Some(auth) = &s.upstream.auth {
                    if auth.auth_type != "api-key" {
                        return Err(FieldError::new(
                            "upstream.auth.type",
                            "only 'api-key' is supported",
                        ));
                    }
                    validate_header_name("upstream.auth.header", &auth.header)?;
                    if auth.value.as_deref().is_some_and(str::is_empty) {
                        return Err(FieldError::new("upstream.auth.value", "must not be empty"));
                    }
                }
                for (i, ex) in s.access_control.exceptions.iter().enumerate() {
                    let at = format!("accessControl.exceptions[{i}]");
                    validate_operation_path(&format!("{at}.path"), &ex.path)?;
                    for (j, m) in ex.methods.iter().enumerate() {
                        validate_method(&format!("{at}.methods[{j}]"), m)?;
                    }
                }
            }
            ArtifactSpec::LlmProxy(_) => {}
            ArtifactSpec::Mcp(s) => {
                validate_url("upstream.url", &s.upstream.url)?;
                if let Some(tools) = &s.tools {
                    for (i, t) in tools.iter().enumerate() {
                        if t.trim().is_empty() {
                            return Err(FieldError::new(
                                format!("tools[{i}]"),
                                "must not be empty",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn validate_display_name(name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(FieldError::new("displayName", "must not be empty"));
    }
    if name.chars().count() > 128 {
        return Err(FieldError::new(
            "displayName",
            "must be at most 128 characters",
        ));
    }
    Ok(())
}

fn validate_version(version: &str) -> Result<(), FieldError> {
    let ok = !version.is_empty()
        && version.len() <= 30
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "version",
            format!("'{version}' is not a valid version: 1 to 30 characters of letters, digits, '.', '-' and '_'"),
        ))
    }
}

fn validate_context(context: &str, version: &str) -> Result<(), FieldError> {
    let resolved = context.replace("$version", version);
    let fail = |m: &str| Err(FieldError::new("context", format!("'{context}' {m}")));
    if !resolved.starts_with('/') {
        return fail("must start with '/'");
    }
    if resolved.len() < 2 {
        return fail("must name at least one path segment");
    }
    if resolved.len() > 232 {
        return fail("is longer than 232 characters");
    }
    if resolved.ends_with('/') || resolved.contains("//") {
        return fail("must not end with '/' or contain empty segments");
    }
    if context.contains('$') && context.replace("$version", "").contains('$') {
        return fail("may only use the variable $version");
    }
    if !resolved
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'))
    {
        return fail("may only contain letters, digits, '/', '-', '_', '.' and '~'");
    }
    if resolved == RESERVED_PREFIX || resolved.starts_with(&format!("{RESERVED_PREFIX}/")) {
        return fail("is reserved by the gateway");
    }
    Ok(())
}

fn validate_url(field: &str, raw: &str) -> Result<(), FieldError> {
    let parsed = url::Url::parse(raw)
        .map_err(|e| FieldError::new(field, format!("'{raw}' is not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FieldError::new(
            field,
            format!("'{raw}' must use http or https"),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(field, format!("'{raw}' has no host")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(FieldError::new(
            field,
            format!("'{raw}' must not carry a query or fragment"),
        ));
    }
    Ok(())
}

fn validate_method(field: &str, method: &str) -> Result<(), FieldError> {
    if METHODS.contains(&method) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "'{method}' is not a supported method; expected one of {}",
                METHODS.join(", ")
            ),
        ))
    }
}

fn validate_header_name(field: &str, name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("'{name}' is not a valid header name"),
        ))
    }
}

/// Operation paths: segments are literals, `{param}` (one segment), or a final `*` (prefix).
fn validate_operation_path(field: &str, path: &str) -> Result<(), FieldError> {
    let fail = |m: &str| Err(FieldError::new(field, format!("'{path}' {m}")));
    if !path.starts_with('/') {
        return fail("must start with '/'");
    }
    if path == "/" {
        return Ok(());
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = trimmed[1..].split('/').collect();
    let mut params = std::collections::HashSet::new();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            return fail("must not contain empty segments");
        }
        if *seg == "*" {
            if i + 1 != segments.len() {
                return fail("may use '*' only as the last segment");
            }
            continue;
        }
        if let Some(inner) = seg.strip_prefix('{') {
            let Some(name) = inner.strip_suffix('}') else {
                return fail("has an unclosed '{'");
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return fail("has an invalid parameter name");
            }
            if !params.insert(name) {
                return fail("repeats a parameter name");
            }
            continue;
        }
        if seg.contains(['{', '}', '*', '?', '#']) {
            return fail("may use '{param}' and '*' only as whole segments");
        }
    }
    Ok(())
}

/// Paths equal up to a trailing slash and parameter names are the same operation.
fn normalized_path(path: &str) -> String {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    trimmed
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses a window such as `500ms`, `1s`, `1m`, `1h`, `1d`.
pub fn parse_window(raw: &str) -> Option<Duration> {
    let idx = raw.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = raw.split_at(idx);
    let n: u64 = num.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

const POLICY_NAMES: [&str; 6] = [
    "api-key-auth",
    "rate-limit",
    "cors",
    "set-headers",
    "model-allow-list",
    "token-rate-limit",
];

fn validate_policies(kind: ArtifactKind, policies: &[Policy], at: &str) -> Result<(), FieldError> {
    for (i, p) in policies.iter().enumerate() {
        validate_policy(kind, p).map_err(|e| e.prefixed(&format!("{at}[{i}]")))?;
    }
    Ok(())
}

fn validate_policy(kind: ArtifactKind, p: &Policy) -> Result<(), FieldError> {
    if !POLICY_NAMES.contains(&p.name.as_str()) {
        return Err(FieldError::new(
            "name",
            format!(
                "unknown policy '{}'; expected one of {}",
                p.name,
                POLICY_NAMES.join(", ")
            ),
        ));
    }
    if p.version != "v1" {
        return Err(FieldError::new(
            "version",
            format!(
                "'{}' is not a version of {}; expected v1",
                p.version, p.name
            ),
        ));
    }
    let llm = matches!(kind, ArtifactKind::LlmProvider | ArtifactKind::LlmProxy);
    let params = &p.params;
    let known: &[&str] = match p.name.as_str() {
        "api-key-auth" => &["header"],
        "rate-limit" => &["requests", "window", "per"],
        "cors" => &[
            "allowOrigins",
            "allowMethods",
            "allowHeaders",
            "exposeHeaders",
            "maxAge",
            "allowCredentials",
        ],
        "set-headers" => &["request", "response"],
        "model-allow-list" => &["models"],
        "token-rate-limit" => &["tokens", "window", "count", "per"],
        _ => &[],
    };
    if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(FieldError::new(
            format!("params.{unknown}"),
            format!("is not a parameter of {}", p.name),
        ));
    }
    let positive = |key: &str| -> Result<(), FieldError> {
        match params.get(key).and_then(Value::as_u64) {
            Some(n) if n > 0 => Ok(()),
            _ => Err(FieldError::new(
                format!("params.{key}"),
                "must be a positive integer",
            )),
        }
    };
    let window = || -> Result<(), FieldError> {
        match params
            .get("window")
            .and_then(Value::as_str)
            .and_then(parse_window)
        {
            Some(_) => Ok(()),
            None => Err(FieldError::new(
                "params.window",
                "must be a duration such as 1s, 1m or 1h",
            )),
        }
    };
    let one_of = |key: &str, allowed: &[&str]| -> Result<(), FieldError> {
        match params.get(key) {
            None => Ok(()),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
            Some(_) => Err(FieldError::new(
                format!("params.{key}"),
                format!("must be one of {}", allowed.join(", ")),
            )),
        }
    };
    let strings = |key: &str, required: bool| -> Result<(), FieldError> {
        match params.get(key) {
            None if !required => Ok(()),
            Some(Value::Array(a))
                if a.iter().all(Value::is_string) && (!required || !a.is_empty()) =>
            {
                Ok(())
            }
            _ => Err(FieldError::new(
                format!("params.{key}"),
                "must be a list of strings",
            )),
        }
    };
    match p.name.as_str() {
        "api-key-auth" => match params.get("header") {
            None => Ok(()),
            Some(Value::String(h)) => validate_header_name("params.header", h),
            Some(_) => Err(FieldError::new("params.header", "must be a header name")),
        },
        "rate-limit" => {
            positive("requests")?;
            window()?;
            one_of("per", &["artifact", "key"])
        }
        "cors" => {
            strings("allowOrigins", false)?;
            strings("allowMethods", false)?;
            strings("allowHeaders", false)?;
            strings("exposeHeaders", false)?;
            if params.contains_key("maxAge")
                && params.get("maxAge").and_then(Value::as_u64).is_none()
            {
                return Err(FieldError::new(
                    "params.maxAge",
                    "must be a number of seconds",
                ));
            }
            Ok(())
        }
        "set-headers" => {
            for side in ["request", "response"] {
                let Some(v) = params.get(side) else { continue };
                let Some(obj) = v.as_object() else {
                    return Err(FieldError::new(
                        format!("params.{side}"),
                        "must be an object with set and remove",
                    ));
                };
                for (k, v) in obj {
                    let ok = match k.as_str() {
                        "set" => v
                            .as_object()
                            .is_some_and(|m| m.values().all(Value::is_string)),
                        "remove" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                        _ => false,
                    };
                    if !ok {
                        return Err(FieldError::new(
                            format!("params.{side}.{k}"),
                            "set is a map of header to value, remove a list of header names",
                        ));
                    }
                }
            }
            Ok(())
        }
        "model-allow-list" | "token-rate-limit" if !llm => Err(FieldError::new(
            "name",
            format!("{} applies only to LLM providers and LLM proxies", p.name),
        )),
        "model-allow-list" => strings("models", true),
        "token-rate-limit" => {
            positive("tokens")?;
            window()?;
            one_of("count", &["prompt", "completion", "total"])?;
            one_of("per", &["artifact", "key"])
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rest(spec: Value) -> Result<ArtifactSpec, FieldError> {
        ArtifactSpec::parse(ArtifactKind::RestApi, spec)
    }

    fn base() -> Value {
        json!({
            "displayName": "Orders", "version": "v1", "context": "/orders/$version",
            "upstream": {"main": {"url": "http://127.0.0.1:9000/api"}},
            "operations": [{"method": "GET", "path": "/items/{id}"}, {"method": "GET", "path": "/files/*"}]
        })
    }

    fn field_of(mut v: Value, pointer: &str, new: Value) -> String {
        *v.pointer_mut(pointer).unwrap() = new;
        rest(v).unwrap_err().field
    }

    #[test]
    fn valid_rest_api_parses_with_defaults() {
        let s = rest(base()).unwrap();
        assert_eq!(s.resolved_context(), "/orders/v1");
        let mut v = base();
        v.as_object_mut().unwrap().remove("version");
        assert_eq!(rest(v).unwrap().version(), "v1.0");
    }

    #[test]
    fn invalid_rest_fields_are_named() {
        assert_eq!(field_of(base(), "/context", json!("orders")), "context");
        assert_eq!(field_of(base(), "/context", json!("/a//b")), "context");
        assert_eq!(
            field_of(base(), "/context", json!("/_gateway-health")),
            "context"
        );
        assert_eq!(field_of(base(), "/context", json!("/x/$other")), "context");
        assert_eq!(field_of(base(), "/version", json!("v 1")), "version");
        assert_eq!(field_of(base(), "/displayName", json!(" ")), "displayName");
        assert_eq!(
            field_of(base(), "/upstream/main/url", json!("not a url")),
            "upstream.main.url"
        );
        assert_eq!(
            field_of(base(), "/operations/0/method", json!("FETCH")),
            "operations[0].method"
        );
        assert_eq!(
            field_of(base(), "/operations/1/path", json!("/a/*/b")),
            "operations[1].path"
        );
        assert_eq!(
            field_of(base(), "/operations/1/path", json!("/a/{x")),
            "operations[1].path"
        );
        assert_eq!(
            field_of(base(), "/operations/1/path", json!("/items/{other}")),
            "operations[1]"
        );
        assert_eq!(field_of(base(), "/context", json!(5)), "context");
        let mut v = base();
        v["colour"] = json!("red");
        assert!(rest(v).unwrap_err().message.contains("colour"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("upstream");
        assert!(rest(v).unwrap_err().message.contains("upstream"));
    }

    #[test]
    fn policies_are_validated_by_name_and_params() {
        let with = |p: Value| {
            let mut v = base();
            v["policies"] = json!([p]);
            rest(v)
        };
        assert!(with(json!({"name": "api-key-auth", "version": "v1"})).is_ok());
        assert!(with(
            json!({"name": "rate-limit", "params": {"requests": 10, "window": "1m", "per": "key"}})
        )
        .is_ok());
        assert_eq!(
            with(json!({"name": "nope"})).unwrap_err().field,
            "policies[0].name"
        );
        assert_eq!(
            with(json!({"name": "rate-limit", "params": {"requests": 0, "window": "1m"}}))
                .unwrap_err()
                .field,
            "policies[0].params.requests"
        );
        assert_eq!(
            with(json!({"name": "rate-limit", "params": {"requests": 1, "window": "soon"}}))
                .unwrap_err()
                .field,
            "policies[0].params.window"
        );
        assert_eq!(
            with(json!({"name": "model-allow-list", "params": {"models": ["gpt"]}}))
                .unwrap_err()
                .field,
            "policies[0].name"
        );
        assert_eq!(
            with(json!({"name": "cors", "params": {"allowOrigins": "*"}}))
                .unwrap_err()
                .field,
            "policies[0].params.allowOrigins"
        );
        assert_eq!(
            with(json!({"name": "set-headers", "params": {"request": {"set": {"a": 1}}}}))
                .unwrap_err()
                .field,
            "policies[0].params.request.set"
        );
        assert_eq!(
            with(json!({"name": "api-key-auth", "params": {"colour": 1}}))
                .unwrap_err()
                .field,
            "policies[0].params.colour"
        );
    }

    #[test]
    fn llm_and_mcp_specs_validate() {
        let provider = json!({
            "displayName": "OpenAI", "template": "openai", "context": "/openai",
            "upstream": {"url": "https://api.openai.com/v1", "auth": {"type": "api-key", "header": "Authorization", "value": "Bearer sk"}},
            "accessControl": {"mode": "deny_all", "exceptions": [{"path": "/chat/completions", "methods": ["POST"]}]},
            "policies": [{"name": "model-allow-list", "params": {"models": ["gpt-4o"]}}]
        });
        let mut p = ArtifactSpec::parse(ArtifactKind::LlmProvider, provider.clone()).unwrap();
        assert_eq!(p.credential_mut().unwrap().as_deref(), Some("Bearer sk"));
        let mut bad = provider.clone();
        bad["template"] = json!("skynet");
        assert_eq!(
            ArtifactSpec::parse(ArtifactKind::LlmProvider, bad)
                .unwrap_err()
                .field,
            "template"
        );
        let mut bad = provider;
        bad["accessControl"]["mode"] = json!("some");
        assert_eq!(
            ArtifactSpec::parse(ArtifactKind::LlmProvider, bad)
                .unwrap_err()
                .field,
            "accessControl.mode"
        );

        let proxy =
            json!({"displayName": "Chat", "context": "/chat", "provider": {"id": "openai"}});
        let s = ArtifactSpec::parse(ArtifactKind::LlmProxy, proxy).unwrap();
        assert_eq!(s.provider().unwrap().as_str(), "openai");
        let bad = json!({"displayName": "Chat", "context": "/chat", "provider": {"id": "Open AI"}});
        assert_eq!(
            ArtifactSpec::parse(ArtifactKind::LlmProxy, bad)
                .unwrap_err()
                .field,
            "provider.id"
        );

        let mcp = json!({"displayName": "Tools", "context": "/tools", "upstream": {"url": "http://127.0.0.1:7000"}, "tools": ["search"]});
        assert!(ArtifactSpec::parse(ArtifactKind::Mcp, mcp).is_ok());
        let bad = json!({"displayName": "Tools", "context": "/tools", "upstream": {"url": "http://127.0.0.1:7000"}, "tools": [""]});
        assert_eq!(
            ArtifactSpec::parse(ArtifactKind::Mcp, bad)
                .unwrap_err()
                .field,
            "tools[0]"
        );
    }

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_window("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_window("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_window("0s"), None);
        assert_eq!(parse_window("s"), None);
        assert_eq!(parse_window("5y"), None);
    }
}
