//! References inside an artifact's spec: any string value may hold `{{ secret "id" }}` (a
//! secret of the organization) or `{{ env "NAME" }}` (a variable of the gateway's environment),
//! alone or within text (`Bearer {{ secret "token" }}`). The stored spec keeps the reference;
//! the value is put in place only where the spec is used.

use std::fmt;

use serde_json::Value;

use crate::{FieldError, Handle};

/// What a reference names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// A secret of the organization, by id.
    Secret(Handle),
    /// A variable of the gateway's environment.
    Env(String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Secret(id) => write!(f, "secret '{}'", id.as_str()),
            Reference::Env(name) => write!(f, "environment variable '{name}'"),
        }
    }
}

/// A piece of a string value: text, or a reference.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Ref(Reference),
}

const SYNTAX: &str =
    r#"only {{ secret "id" }} and {{ env "NAME" }} are understood between {{ and }}"#;

/// Splits `s` into text and references.
pub fn parse(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("a '{{{{' is not closed: {SYNTAX}"))?;
        pieces.push(Piece::Ref(reference(after[..close].trim())?));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The reference between `{{` and `}}` (trimmed).
fn reference(inner: &str) -> Result<Reference, String> {
    let unknown = || format!("'{{{{ {inner} }}}}' is not a reference: {SYNTAX}");
    let (word, arg) = inner.split_once(char::is_whitespace).ok_or_else(unknown)?;
    let arg = arg.trim();
    let quoted = arg
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .filter(|a| !a.contains('"'))
        .ok_or_else(unknown)?;
    match word {
        "secret" => Handle::parse("secret", quoted)
            .map(Reference::Secret)
            .map_err(|e| format!("'{{{{ {inner} }}}}': the secret id {}", e.message)),
        "env" => {
            let valid = quoted
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && quoted
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "'{{{{ {inner} }}}}': an environment variable name is letters, digits and '_', not starting with a digit"
                ));
            }
            Ok(Reference::Env(quoted.to_owned()))
        }
        _ => Err(unknown()),
    }
}

/// Calls `f` with the path (`upstream.main.url`, `operations[1].path`) and text of every
/// string value in `v`.
fn each_string<'a>(
    v: &'a Value,
    path: &mut String,
    f: &mut impl FnMut(&str, &'a str) -> Result<(), FieldError>,
) -> Result<(), FieldError> {
    match v {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                each_string(item, path, f)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                each_string(item, path, f)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every reference in `spec`, each with the field that holds it; a malformed one is an error
/// naming its field.
pub fn find(spec: &Value) -> Result<Vec<(String, Reference)>, FieldError> {
    let mut found = Vec::new();
    each_string(spec, &mut String::new(), &mut |field, s| {
        if !s.contains("{{") {
            return Ok(());
        }
        for piece in parse(s).map_err(|m| FieldError::new(field, m))? {
            if let Piece::Ref(r) = piece {
                found.push((field.to_owned(), r));
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// Whether `s` holds at least one well-formed reference (a field whose value is checked once
/// resolved, where its value is known).
pub fn holds_reference(s: &str) -> bool {
    s.contains("{{") && parse(s).is_ok_and(|p| p.iter().any(|p| matches!(p, Piece::Ref(_))))
}

/// The ids of the secrets `found` (from [`find`]) names, sorted, once each.
pub fn secret_ids(found: &[(String, Reference)]) -> Vec<String> {
    let mut ids: Vec<String> = found
        .iter()
        .filter_map(|(_, r)| match r {
            Reference::Secret(id) => Some(id.as_str().to_owned()),
            Reference::Env(_) => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `spec` with every reference replaced by its value from `lookup`; a reference `lookup` has
/// no value for is an error naming its field.
pub fn resolve(
    spec: &Value,
    lookup: &impl Fn(&Reference) -> Option<String>,
) -> Result<Value, FieldError> {
    fn walk(
        v: &Value,
        path: &mut String,
        lookup: &impl Fn(&Reference) -> Option<String>,
    ) -> Result<Value, FieldError> {
        Ok(match v {
            Value::String(s) if s.contains("{{") => {
                let mut out = String::with_capacity(s.len());
                for piece in parse(s).map_err(|m| FieldError::new(path.as_str(), m))? {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Ref(r) => match lookup(&r) {
                            Some(value) => out.push_str(&value),
                            None => {
                                return Err(FieldError::new(
                                    path.as_str(),
                                    format!("{r} is not available"),
                                ))
                            }
                        },
                    }
                }
                Value::String(out)
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(walk(item, path, lookup)?);
                    path.truncate(len);
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (key, item) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    out.insert(key.clone(), walk(item, path, lookup)?);
                    path.truncate(len);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
    walk(spec, &mut String::new(), lookup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_well_formed_references_count_as_held() {
        assert!(holds_reference(r#"http://{{ env "HOST" }}:8080"#));
        assert!(holds_reference(r#"{{ secret "x" }}"#));
        assert!(!holds_reference("http://example.com"));
        assert!(!holds_reference("{{ nonsense }}"));
        assert!(!holds_reference("{{ unclosed"));
    }

    #[test]
    fn a_url_or_header_name_holding_a_reference_is_checked_once_resolved() {
        let spec = json!({"displayName": "x", "context": "/x", "template": "openai",
            "upstream": {"url": "http://{{ env \"HOST\" }}:8080", "auth": {"type": "api-key", "header": "{{ env \"H\" }}", "value": "v"}}});
        assert!(crate::spec::ArtifactSpec::parse(crate::ArtifactKind::LlmProvider, spec).is_ok());
        let spec = json!({"displayName": "x", "context": "/x", "template": "openai",
            "upstream": {"url": "{{ nonsense }}"}});
        assert!(crate::spec::ArtifactSpec::parse(crate::ArtifactKind::LlmProvider, spec).is_err());
    }

    fn secret(id: &str) -> Reference {
        Reference::Secret(Handle::parse("id", id).unwrap())
    }

    #[test]
    fn references_are_found_alone_and_within_text() {
        assert_eq!(
            parse(r#"{{ secret "openai" }}"#).unwrap(),
            [Piece::Ref(secret("openai"))]
        );
        assert_eq!(
            parse(r#"Bearer {{secret "tok-1"}} and {{ env "HOME_DIR" }}!"#).unwrap(),
            [
                Piece::Text("Bearer "),
                Piece::Ref(secret("tok-1")),
                Piece::Text(" and "),
                Piece::Ref(Reference::Env("HOME_DIR".into())),
                Piece::Text("!"),
            ]
        );
        assert_eq!(
            parse("plain }} text").unwrap(),
            [Piece::Text("plain }} text")]
        );
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        for (bad, says) in [
            (r#"{{ secret "openai" "#, "not closed"),
            (r#"{{ secret openai }}"#, "not a reference"),
            (r#"{{ vault "x" }}"#, "not a reference"),
            (r#"{{ secret "Bad Id" }}"#, "the secret id"),
            (r#"{{ env "9LIVES" }}"#, "environment variable name"),
            (r#"{{ env "A-B" }}"#, "environment variable name"),
            ("{{}}", "not a reference"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn references_are_found_with_their_fields_and_resolved() {
        let spec = json!({
            "upstream": {"main": {"url": "https://api.example", "auth": {"value": "{{ secret \"openai\" }}"}}},
            "policies": [{"name": "set-headers", "params": {"request": {"set": {"X-Env": "{{ env \"STAGE\" }}-1"}}}}],
            "count": 3
        });
        let mut found = find(&spec).unwrap();
        found.sort();
        assert_eq!(
            found,
            [
                (
                    "policies[0].params.request.set.X-Env".to_owned(),
                    Reference::Env("STAGE".into())
                ),
                ("upstream.main.auth.value".to_owned(), secret("openai")),
            ]
        );
        let values = |r: &Reference| match r {
            Reference::Secret(_) => Some("sk-1".to_owned()),
            Reference::Env(_) => Some("prod".to_owned()),
        };
        let resolved = resolve(&spec, &values).unwrap();
        assert_eq!(resolved["upstream"]["main"]["auth"]["value"], "sk-1");
        assert_eq!(
            resolved["policies"][0]["params"]["request"]["set"]["X-Env"],
            "prod-1"
        );
        assert_eq!(resolved["count"], 3);
        assert_eq!(resolved["upstream"]["main"]["url"], "https://api.example");

        let err = resolve(&spec, &|r: &Reference| {
            matches!(r, Reference::Env(_)).then(String::new)
        })
        .unwrap_err();
        assert_eq!(err.field, "upstream.main.auth.value");
        assert!(
            err.message.contains("secret 'openai' is not available"),
            "{err}"
        );
        let err = find(&json!({"a": ["ok", "{{ nope }}"]})).unwrap_err();
        assert_eq!(err.field, "a[1]");
    }
}
