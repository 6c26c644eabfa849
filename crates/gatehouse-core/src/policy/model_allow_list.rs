//! `model-allow-list` parameters (LLM providers and LLM proxies only). Enforced by the gateway's
//! `llm/` module: a request naming another model gets 400 in the provider API's error shape.

use serde::{Deserialize, Deserializer, Serialize};

/// `params` of `model-allow-list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelAllowListParams {
    /// The models callers may name (at least one): exact names, or globs where `*` stands for
    /// any run of characters (`gpt-4o*`).
    #[serde(deserialize_with = "models")]
    pub models: Vec<String>,
}

impl ModelAllowListParams {
    /// Whether `model` is allowed.
    pub fn allows(&self, model: &str) -> bool {
        self.models.iter().any(|pattern| glob_match(pattern, model))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also none).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn models<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let models = Vec::<String>::deserialize(d)?;
    if models.is_empty() || models.iter().any(|m| m.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "must be a list of one or more model names",
        ));
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_match("gpt-4o", "gpt-4o"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("claude-*-sonnet*", "claude-3-5-sonnet-latest"));
        assert!(!glob_match("claude-*-sonnet", "claude-3-opus"));
        assert!(glob_match("*-mini", "gpt-4o-mini"));
        assert!(!glob_match("a*a", "a"));
    }
}
