//! The shape of an LLM provider template.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::HeaderNameParam;
use crate::validate::FieldError;

/// The API family a provider speaks: it fixes how requests, responses, streams and errors are
/// shaped, and which translations apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiFamily {
    /// OpenAI's chat completions and responses (also Azure OpenAI, Mistral, vLLM, Ollama).
    Openai,
    /// Anthropic's messages API.
    Anthropic,
    /// Google's Gemini `generateContent`.
    Gemini,
}

impl ApiFamily {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFamily::Openai => "openai",
            ApiFamily::Anthropic => "anthropic",
            ApiFamily::Gemini => "gemini",
        }
    }
}

impl fmt::Display for ApiFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a [`JsonPointer`] is written, for the OpenAPI document: `/` and a key, one or more times.
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^(/[^/]+)+$", example = "/usage/prompt_tokens")]
#[allow(dead_code)]
pub struct JsonPointerText(String);

/// A JSON pointer (RFC 6901) such as `/usage/prompt_tokens`, checked to be one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JsonPointer(String);

impl JsonPointer {
    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value `self` points at in `v`.
    pub fn get<'v>(&self, v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        v.pointer(&self.0)
    }
}

/// Why a JSON pointer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a JSON pointer: write '/' and the keys, e.g. /usage/prompt_tokens")]
pub struct PointerError(pub String);

impl FromStr for JsonPointer {
    type Err = PointerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > 1 && s.starts_with('/') && !s.contains("//") && !s.ends_with('/') {
            Ok(Self(s.to_owned()))
        } else {
            Err(PointerError(s.to_owned()))
        }
    }
}

impl Serialize for JsonPointer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How the gateway sends the provider's credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateAuth {
    /// The request header that carries the credential (`Authorization`, `x-api-key`, ...).
    #[schema(value_type = crate::policy::HeaderNameText, example = "Authorization")]
    pub header: HeaderNameParam,
    /// Written before the credential unless it already starts with it (`Bearer `).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$")]
    pub prefix: Option<String>,
}

/// Where a request names its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "in", rename_all = "lowercase", deny_unknown_fields)]
pub enum ModelLocation {
    /// A field of the JSON body.
    Body {
        #[schema(value_type = JsonPointerText, example = "/model")]
        pointer: JsonPointer,
    },
    /// The path segment after the segment `after` (up to a `:`), as in Gemini's
    /// `/models/{model}:generateContent` and Azure's `/deployments/{deployment}/...`.
    Path {
        #[schema(pattern = "^[^/]+$")]
        after: String,
    },
}

impl ModelLocation {
    /// The model `self` finds in a request with `path` (after the context) and JSON `body`.
    pub fn find<'a>(&self, path: &'a str, body: Option<&'a serde_json::Value>) -> Option<&'a str> {
        match self {
            ModelLocation::Body { pointer } => pointer.get(body?)?.as_str(),
            ModelLocation::Path { after } => {
                let mut segs = path.split('/');
                segs.find(|s| s == after)?;
                let seg = segs.next()?;
                let model = seg.split(':').next().unwrap_or(seg);
                (!model.is_empty()).then_some(model)
            }
        }
    }
}

/// Where a streamed (SSE) response reports the model and its usage. Each event's JSON `data`
/// is read; for each field the first pointer found wins within an event, and a later event's
/// value replaces an earlier one (providers report cumulative counts).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamExtract {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<JsonPointerText>)]
    pub model: Vec<JsonPointer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<JsonPointerText>)]
    pub prompt_tokens: Vec<JsonPointer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<JsonPointerText>)]
    pub completion_tokens: Vec<JsonPointer>,
    /// The provider reports usage in a stream only when the request sets OpenAI's
    /// `stream_options.include_usage`; the gateway sets it and hides the extra chunk from
    /// clients that did not ask for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ask_for_usage: bool,
}

/// What the gateway reads from requests and responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateExtract {
    /// Where the request names its model; the first location found wins.
    #[schema(min_items = 1)]
    pub request_model: Vec<ModelLocation>,
    /// Where a JSON response names the model that answered; first found wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<JsonPointerText>)]
    pub response_model: Vec<JsonPointer>,
    /// Prompt (input) tokens in a JSON response; first found wins.
    #[schema(value_type = Vec<JsonPointerText>)]
    pub prompt_tokens: Vec<JsonPointer>,
    /// Completion (output) tokens in a JSON response; first found wins.
    #[schema(value_type = Vec<JsonPointerText>)]
    pub completion_tokens: Vec<JsonPointer>,
    /// The same in streamed responses.
    #[serde(default)]
    pub stream: StreamExtract,
}

/// An LLM provider template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmTemplate {
    /// `openai`, `anthropic`, ... or an organization's own (lowercase letters, digits, `-`).
    #[schema(pattern = "^[a-z][a-z0-9-]{0,62}$")]
    pub id: String,
    pub display_name: String,
    /// The API family: request, response, stream and error shapes.
    pub api: ApiFamily,
    pub auth: TemplateAuth,
    /// Headers always sent upstream (`anthropic-version`), unless the client sent them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    pub extract: TemplateExtract,
}

impl LlmTemplate {
    /// Checks what serde cannot: the id's spelling, a display name, the header values.
    pub fn validate(&self) -> Result<(), FieldError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 63
            && self.id.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(FieldError::new(
                "id",
                format!(
                    "'{}' is not a template id: 1 to 63 lowercase letters, digits and '-', starting with a letter",
                    self.id
                ),
            ));
        }
        if self.display_name.trim().is_empty() {
            return Err(FieldError::new("displayName", "must not be empty"));
        }
        if self.display_name.chars().count() > 128 {
            return Err(FieldError::new(
                "displayName",
                "must be at most 128 characters",
            ));
        }
        if let Some(p) = &self.auth.prefix {
            if http::HeaderValue::from_str(p).is_err() {
                return Err(FieldError::new(
                    "auth.prefix",
                    "must be visible ASCII, spaces and tabs",
                ));
            }
        }
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(FieldError::new(
                    format!("headers.{name}"),
                    format!("'{name}' is not a valid header name"),
                ));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(FieldError::new(
                    format!("headers.{name}"),
                    "is not a valid header value",
                ));
            }
        }
        if self.extract.request_model.is_empty() {
            return Err(FieldError::new(
                "extract.requestModel",
                "must name at least one location",
            ));
        }
        for (i, loc) in self.extract.request_model.iter().enumerate() {
            if let ModelLocation::Path { after } = loc {
                if after.is_empty() || after.contains('/') {
                    return Err(FieldError::new(
                        format!("extract.requestModel[{i}].after"),
                        "must be one path segment",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Parses and validates a template from JSON.
    pub fn parse(value: serde_json::Value) -> Result<Self, FieldError> {
        let t: Self = crate::validate::from_value(value)?;
        t.validate()?;
        Ok(t)
    }
}
