//! Guardrail parameters (LLM providers and LLM proxies only), enforced by the gateway's `llm/`
//! module:
//! - `regex-guardrail`: a request or response whose text matches a rule is refused (400 for a
//!   request, 502 for a response), naming the rule;
//! - `pii-masking`: e-mail addresses, phone numbers, card numbers and custom patterns are masked
//!   in prompts before they leave the gateway;
//! - `prompt-size-limit`: prompts longer than a number of characters or of estimated tokens are
//!   refused with 400.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A regular expression, checked to compile, kept as written.
#[derive(Debug, Clone)]
pub struct Pattern {
    raw: String,
    regex: regex::Regex,
}

impl Pattern {
    /// The compiled expression.
    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let regex = regex::RegexBuilder::new(&raw)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| serde::de::Error::custom(format_args!("not a regular expression: {e}")))?;
        Ok(Self { raw, regex })
    }
}

/// Which side of an exchange a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GuardrailTarget {
    #[default]
    Request,
    Response,
    Both,
}

impl GuardrailTarget {
    /// Whether the rule reads requests.
    pub fn request(self) -> bool {
        matches!(self, GuardrailTarget::Request | GuardrailTarget::Both)
    }

    /// Whether the rule reads responses.
    pub fn response(self) -> bool {
        matches!(self, GuardrailTarget::Response | GuardrailTarget::Both)
    }
}

/// One rule of `regex-guardrail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailRule {
    /// Named in the error a refused exchange gets.
    pub name: String,
    /// The regular expression (Rust `regex` syntax; `(?i)` for case-insensitive).
    #[schema(value_type = String)]
    pub pattern: Pattern,
    /// Which side it reads (default request).
    #[serde(default)]
    pub applies_to: GuardrailTarget,
}

/// `params` of `regex-guardrail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexGuardrailParams {
    /// At least one rule.
    #[serde(deserialize_with = "rules")]
    pub rules: Vec<GuardrailRule>,
}

fn rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<GuardrailRule>, D::Error> {
    let rules = Vec::<GuardrailRule>::deserialize(d)?;
    if rules.is_empty() || rules.iter().any(|r| r.name.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "must be a list of one or more rules, each with a name",
        ));
    }
    Ok(rules)
}

/// Built-in kinds of personal data `pii-masking` recognizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PiiKind {
    Email,
    Phone,
    Card,
}

impl PiiKind {
    /// Every built-in kind.
    pub const ALL: [PiiKind; 3] = [PiiKind::Email, PiiKind::Phone, PiiKind::Card];

    /// What replaces a match.
    pub fn mask(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Card => "[CARD]",
        }
    }

    /// The pattern that finds it.
    pub fn pattern(self) -> &'static str {
        match self {
            PiiKind::Email => r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
            // International or North-American style numbers of 7 to 15 digits, the area code
            // in parentheses or not (`(415) 555-0132`).
            PiiKind::Phone => {
                r"(?:\+\d{1,3}[\s.-]?)?(?:(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}[\s.-]\d{3,4}[\s.-]?\d{3,4}|\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]\d{3,4})\b"
            }
            PiiKind::Card => r"\b(?:\d[ -]?){12,18}\d\b",
        }
    }
}

/// One custom pattern of `pii-masking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PiiPattern {
    pub name: String,
    #[schema(value_type = String)]
    pub pattern: Pattern,
    /// What replaces a match (default `[NAME]` in capitals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

/// `params` of `pii-masking`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PiiMaskingParams {
    /// Built-in kinds to mask (default all: email, phone, card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<Vec<PiiKind>>,
    /// Further patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<PiiPattern>,
}

/// `params` of `prompt-size-limit`: at least one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", try_from = "PromptSizeLimitRaw")]
pub struct PromptSizeLimitParams {
    /// The most characters of prompt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_chars: Option<u64>,
    /// The most estimated tokens of prompt text (a token is taken as 4 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
}

/// `prompt-size-limit` params as written, before the check that one bound is given.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PromptSizeLimitRaw {
    #[serde(default)]
    max_chars: Option<u64>,
    #[serde(default)]
    max_tokens: Option<u64>,
}

impl TryFrom<PromptSizeLimitRaw> for PromptSizeLimitParams {
    type Error = &'static str;
    fn try_from(raw: PromptSizeLimitRaw) -> Result<Self, Self::Error> {
        match (raw.max_chars, raw.max_tokens) {
            (None, None) => Err("give maxChars, maxTokens or both"),
            (Some(0), _) | (_, Some(0)) => Err("limits must be positive integers"),
            (max_chars, max_tokens) => Ok(Self {
                max_chars,
                max_tokens,
            }),
        }
    }
}
