//! Handles: the user-facing, immutable identifier of a resource within its organization.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::validate::FieldError;

/// Longest handle accepted.
pub const MAX_HANDLE_LEN: usize = 40;

/// A validated handle: `^[a-z0-9][a-z0-9-]{0,39}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    /// Validates `value` as a handle; the error names `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let valid = !value.is_empty()
            && value.len() <= MAX_HANDLE_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                format!(
                    "'{value}' is not a valid handle: 1 to {MAX_HANDLE_LEN} characters of a-z, 0-9 and '-', not starting with '-'"
                ),
            ))
        }
    }

    /// Derives a handle from a display name ("Orders API v2" → "orders-api-v2").
    pub fn derive(field: &str, display_name: &str) -> Result<Self, FieldError> {
        let mut out = String::with_capacity(display_name.len());
        for c in display_name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.truncate(MAX_HANDLE_LEN);
        while out.ends_with('-') {
            out.pop();
        }
        if out.is_empty() {
            return Err(FieldError::new(
                field,
                format!("cannot derive a handle from '{display_name}'; give an id explicitly"),
            ));
        }
        Ok(Self(out))
    }

    /// The handle as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Handle {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Handle::parse("id", &value)
    }
}

impl From<Handle> for String {
    fn from(h: Handle) -> String {
        h.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_rejects_invalid_handles() {
        assert!(Handle::parse("id", "orders").is_ok());
        assert!(Handle::parse("id", "a").is_ok());
        assert!(Handle::parse("id", "0-abc-9").is_ok());
        assert!(Handle::parse("id", &"a".repeat(40)).is_ok());
        for bad in ["", "-a", "Orders", "a_b", "a b", &"a".repeat(41), "é"] {
            let err = Handle::parse("id", bad).unwrap_err();
            assert_eq!(err.field, "id", "{bad}");
        }
    }

    #[test]
    fn derives_handles_from_display_names() {
        assert_eq!(
            Handle::derive("id", "Orders API v2").unwrap().as_str(),
            "orders-api-v2"
        );
        assert_eq!(
            Handle::derive("id", "  --Hello__World!! ")
                .unwrap()
                .as_str(),
            "hello-world"
        );
        assert_eq!(
            Handle::derive("id", &"x".repeat(60))
                .unwrap()
                .as_str()
                .len(),
            40
        );
        assert!(Handle::derive("id", "!!!").is_err());
    }
}
