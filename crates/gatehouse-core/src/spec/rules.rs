//! Field rules shared by the specs of every kind: names, versions, contexts, URLs, methods and
//! operation paths.

use super::{METHODS, RESERVED_PREFIX};
use crate::validate::FieldError;

pub(super) fn validate_display_name(name: &str) -> Result<(), FieldError> {
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

pub(super) fn validate_version(version: &str) -> Result<(), FieldError> {
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

/// A context as written is at most 232 characters; `$version`, used once at most, makes the
/// served path up to 22 characters longer (a version is at most 30).
pub(super) fn validate_context(context: &str, version: &str) -> Result<(), FieldError> {
    let resolved = context.replace("$version", version);
    let fail = |m: &str| Err(FieldError::new("context", format!("'{context}' {m}")));
    if !resolved.starts_with('/') {
        return fail("must start with '/'");
    }
    if resolved.len() < 2 {
        return fail("must name at least one path segment");
    }
    if context.len() > 232 {
        return fail("is longer than 232 characters");
    }
    if context.matches("$version").count() > 1 {
        return fail("may use $version once");
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

/// A URL; one holding a reference (`http://{{ env "HOST" }}:8080`) is checked on the gateway
/// once the reference is resolved.
pub(super) fn validate_url(field: &str, raw: &str) -> Result<(), FieldError> {
    if crate::references::holds_reference(raw) {
        return Ok(());
    }
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

pub(super) fn validate_method(field: &str, method: &str) -> Result<(), FieldError> {
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

/// A header name; one holding a reference is checked on the gateway once resolved.
pub(super) fn validate_header_name(field: &str, name: &str) -> Result<(), FieldError> {
    if crate::references::holds_reference(name) {
        return Ok(());
    }
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
pub(super) fn validate_operation_path(field: &str, path: &str) -> Result<(), FieldError> {
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
pub(super) fn normalized_path(path: &str) -> String {
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
