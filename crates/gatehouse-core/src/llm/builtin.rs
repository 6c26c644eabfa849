//! The built-in templates, written as data (the same JSON an organization posts for its own).

use std::sync::OnceLock;

use serde_json::json;

use super::LlmTemplate;

/// Ids of the built-in templates.
pub const BUILTIN: [&str; 6] = [
    "openai",
    "azure-openai",
    "anthropic",
    "gemini",
    "mistral",
    "openai-compatible",
];

/// Ids of the built-in templates, for messages.
pub fn builtin_ids() -> String {
    BUILTIN.join(", ")
}

/// OpenAI-style usage: chat completions (`prompt_tokens`) and responses (`input_tokens`).
fn openai_like(
    id: &str,
    name: &str,
    header: &str,
    prefix: Option<&str>,
    ask: bool,
) -> serde_json::Value {
    let mut auth = json!({"header": header});
    if let Some(p) = prefix {
        auth["prefix"] = json!(p);
    }
    let model = if id == "azure-openai" {
        json!([{"in": "path", "after": "deployments"}, {"in": "body", "pointer": "/model"}])
    } else {
        json!([{"in": "body", "pointer": "/model"}])
    };
    json!({
        "id": id,
        "displayName": name,
        "api": "openai",
        "auth": auth,
        "extract": {
            "requestModel": model,
            "responseModel": ["/model", "/response/model"],
            "promptTokens": ["/usage/prompt_tokens", "/usage/input_tokens"],
            "completionTokens": ["/usage/completion_tokens", "/usage/output_tokens"],
            "stream": {
                "model": ["/model", "/response/model"],
                "promptTokens": ["/usage/prompt_tokens", "/response/usage/input_tokens"],
                "completionTokens": ["/usage/completion_tokens", "/response/usage/output_tokens"],
                "askForUsage": ask
            }
        }
    })
}

fn definitions() -> Vec<serde_json::Value> {
    vec![
        openai_like("openai", "OpenAI", "Authorization", Some("Bearer "), true),
        openai_like("azure-openai", "Azure OpenAI", "api-key", None, true),
        json!({
            "id": "anthropic",
            "displayName": "Anthropic",
            "api": "anthropic",
            "auth": {"header": "x-api-key"},
            "headers": {"anthropic-version": "2023-06-01"},
            "extract": {
                "requestModel": [{"in": "body", "pointer": "/model"}],
                "responseModel": ["/model"],
                "promptTokens": ["/usage/input_tokens"],
                "completionTokens": ["/usage/output_tokens"],
                "stream": {
                    "model": ["/message/model"],
                    "promptTokens": ["/message/usage/input_tokens", "/usage/input_tokens"],
                    "completionTokens": ["/usage/output_tokens"]
                }
            }
        }),
        json!({
            "id": "gemini",
            "displayName": "Google Gemini",
            "api": "gemini",
            "auth": {"header": "x-goog-api-key"},
            "extract": {
                "requestModel": [{"in": "path", "after": "models"}],
                "responseModel": ["/modelVersion"],
                "promptTokens": ["/usageMetadata/promptTokenCount"],
                "completionTokens": ["/usageMetadata/candidatesTokenCount"],
                "stream": {
                    "model": ["/modelVersion"],
                    "promptTokens": ["/usageMetadata/promptTokenCount"],
                    "completionTokens": ["/usageMetadata/candidatesTokenCount"]
                }
            }
        }),
        openai_like(
            "mistral",
            "Mistral AI",
            "Authorization",
            Some("Bearer "),
            false,
        ),
        openai_like(
            "openai-compatible",
            "OpenAI-compatible (vLLM, Ollama, LM Studio)",
            "Authorization",
            Some("Bearer "),
            true,
        ),
    ]
}

/// Every built-in template, parsed once.
fn all() -> &'static [LlmTemplate] {
    static ALL: OnceLock<Vec<LlmTemplate>> = OnceLock::new();
    ALL.get_or_init(|| {
        definitions()
            .into_iter()
            .map(|d| LlmTemplate::parse(d).expect("built-in templates are valid"))
            .collect()
    })
}

/// The built-in template `id`.
pub fn builtin(id: &str) -> Option<&'static LlmTemplate> {
    all().iter().find(|t| t.id == id)
}

/// Every built-in template, in `BUILTIN` order.
pub fn builtins() -> &'static [LlmTemplate] {
    all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ApiFamily;

    #[test]
    fn every_builtin_parses_and_is_listed() {
        assert_eq!(builtins().len(), BUILTIN.len());
        for id in BUILTIN {
            let t = builtin(id).unwrap();
            assert_eq!(t.id, id);
        }
        assert_eq!(builtin("anthropic").unwrap().api, ApiFamily::Anthropic);
        assert_eq!(
            builtin("azure-openai").unwrap().auth.header.as_str(),
            "api-key"
        );
        assert!(builtin("skynet").is_none());
    }

    #[test]
    fn models_are_found_in_body_and_path() {
        let body = json!({"model": "gpt-4o"});
        let openai = builtin("openai").unwrap();
        assert_eq!(
            openai.extract.request_model[0].find("/chat/completions", Some(&body)),
            Some("gpt-4o")
        );
        let gemini = builtin("gemini").unwrap();
        assert_eq!(
            gemini.extract.request_model[0].find(
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                None
            ),
            Some("gemini-2.0-flash")
        );
        let azure = builtin("azure-openai").unwrap();
        assert_eq!(
            azure.extract.request_model[0]
                .find("/openai/deployments/my-gpt/chat/completions", Some(&body)),
            Some("my-gpt")
        );
    }
}
