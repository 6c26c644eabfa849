//! Parameter value types shared by several policies. Each validates while it deserializes and
//! serializes back exactly as written, so a stored document reads the same as what was sent.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a window such as `1m` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a duration: write a positive whole number and one of ms, s, m, h, d (e.g. 1m)"
)]
pub struct WindowError(pub String);

/// A time window such as `500ms`, `1s`, `1m`, `1h`, `1d`: positive, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    raw: String,
    duration: Duration,
}

impl Window {
    /// How long the window lasts.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

/// How a [`Window`] is written, for the OpenAPI document: a whole number (more than zero, at
/// most 12 digits) and a unit.
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^0*[1-9][0-9]{0,11}(ms|s|m|h|d)$", example = "1m")]
#[allow(dead_code)]
pub struct WindowText(String);

impl FromStr for Window {
    type Err = WindowError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let fail = || WindowError(raw.to_owned());
        let idx = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(fail)?;
        let (num, unit) = raw.split_at(idx);
        if num.trim_start_matches('0').len() > 12 {
            return Err(fail());
        }
        let n: u64 = num.parse().map_err(|_| fail())?;
        let secs = |factor: u64| n.checked_mul(factor).map(Duration::from_secs);
        let duration = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => secs(1),
            "m" => secs(60),
            "h" => secs(3600),
            "d" => secs(86_400),
            _ => None,
        }
        .filter(|d| !d.is_zero())
        .ok_or_else(fail)?;
        Ok(Self {
            raw: raw.to_owned(),
            duration,
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses a window such as `500ms`, `1s`, `1m`, `1h`, `1d` into its duration.
pub fn parse_window(raw: &str) -> Result<Duration, WindowError> {
    raw.parse::<Window>().map(|w| w.duration)
}

/// How a [`HeaderNameParam`] is written, for the OpenAPI document: an HTTP token.
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", example = "X-Request-Id")]
#[allow(dead_code)]
pub struct HeaderNameText(String);

/// How a handle is written, for the OpenAPI document (`crate::handle::Handle`).
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$", example = "orders")]
#[allow(dead_code)]
pub struct HandleText(String);

/// A header name, checked to be one, kept as written (header names are case-insensitive).
#[derive(Debug, Clone)]
pub struct HeaderNameParam {
    raw: String,
    name: http::HeaderName,
}

impl HeaderNameParam {
    /// The name as the `http` crate holds it (lowercase).
    pub fn header_name(&self) -> &http::HeaderName {
        &self.name
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl PartialEq for HeaderNameParam {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for HeaderNameParam {}

impl PartialOrd for HeaderNameParam {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeaderNameParam {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}

/// A header value, checked to be one, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderValueParam {
    raw: String,
    value: http::HeaderValue,
}

impl HeaderValueParam {
    /// Checks that `value` may be sent as the value of header `name`.
    pub fn new(name: &str, value: &str) -> Result<Self, HeaderError> {
        http::HeaderValue::from_str(value)
            .map(|v| Self {
                raw: value.to_owned(),
                value: v,
            })
            .map_err(|_| HeaderError::Value(name.to_owned()))
    }

    /// The value as the `http` crate holds it.
    pub fn header_value(&self) -> &http::HeaderValue {
        &self.value
    }
}

impl Serialize for HeaderValueParam {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

/// Why a header name or value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("'{0}' is not a valid header name")]
    Name(String),
    #[error("the value of {0} is not a valid header value (visible ASCII, spaces and tabs)")]
    Value(String),
}

impl FromStr for HeaderNameParam {
    type Err = HeaderError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        http::HeaderName::from_bytes(raw.as_bytes())
            .map(|name| Self {
                raw: raw.to_owned(),
                name,
            })
            .map_err(|_| HeaderError::Name(raw.to_owned()))
    }
}

/// Implements `Serialize` as the string written and `Deserialize` through `FromStr`.
macro_rules! string_param {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

impl fmt::Display for HeaderNameParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

string_param!(Window);
string_param!(HeaderNameParam);

/// Deserializes a positive integer, refusing 0 with a message that says so.
pub fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(serde::de::Error::custom("must be a positive integer")),
        n if n > i64::MAX as u64 => Err(serde::de::Error::custom(
            "must be at most 9223372036854775807",
        )),
        n => Ok(n),
    }
}

/// What a limit counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitScope {
    /// One count for every caller of the artifact.
    #[default]
    Artifact,
    /// One count per API key (callers without a key share the artifact's count).
    Key,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("1s").ok(), Some(Duration::from_secs(1)));
        assert_eq!(parse_window("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_window("250ms").ok(), Some(Duration::from_millis(250)));
        assert_eq!(parse_window("0s").ok(), None);
        assert_eq!(parse_window("s").ok(), None);
        assert_eq!(parse_window("5y").ok(), None);
        assert!(parse_window("5y").unwrap_err().to_string().contains("'5y'"));
        assert_eq!("90s".parse::<Window>().unwrap().to_string(), "90s");
    }

    #[test]
    fn header_names_keep_their_spelling() {
        let h: HeaderNameParam = "X-Token".parse().unwrap();
        assert_eq!(h.as_str(), "X-Token");
        assert_eq!(h.header_name().as_str(), "x-token");
        assert!("bad header".parse::<HeaderNameParam>().is_err());
        assert!(HeaderValueParam::new("x", "ok value").is_ok());
        assert!(HeaderValueParam::new("x", "bad\nvalue").is_err());
    }
}
