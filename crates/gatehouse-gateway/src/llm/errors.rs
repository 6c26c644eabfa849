//! Errors in each provider API's own shape, so that SDKs raise their usual exceptions.

use bytes::Bytes;
use gatehouse_core::llm::ApiFamily;
use serde_json::json;

/// What went wrong, as the error's type and code say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmErrorKind {
    /// The request cannot be served as written (bad JSON, unknown path).
    InvalidRequest,
    /// `model-allow-list` refused the model.
    ModelNotAllowed,
    /// `prompt-size-limit` refused the prompt.
    PromptTooLarge,
    /// A `regex-guardrail` rule matched the request.
    GuardrailRequest,
    /// A `regex-guardrail` rule matched the response.
    GuardrailResponse,
    /// A token limit is spent.
    RateLimited,
    /// The provider could not be reached or answered badly.
    Upstream,
}

impl LlmErrorKind {
    /// OpenAI's `type` and `code`.
    fn openai(self) -> (&'static str, &'static str) {
        match self {
            LlmErrorKind::InvalidRequest => ("invalid_request_error", "invalid_request"),
            LlmErrorKind::ModelNotAllowed => ("invalid_request_error", "model_not_allowed"),
            LlmErrorKind::PromptTooLarge => ("invalid_request_error", "prompt_too_large"),
            LlmErrorKind::GuardrailRequest => ("invalid_request_error", "guardrail_violation"),
            LlmErrorKind::GuardrailResponse => ("api_error", "guardrail_violation"),
            LlmErrorKind::RateLimited => ("rate_limit_error", "rate_limit_exceeded"),
            LlmErrorKind::Upstream => ("api_error", "upstream_unavailable"),
        }
    }

    /// Anthropic's error `type`.
    fn anthropic(self, status: u16) -> &'static str {
        match (self, status) {
            (LlmErrorKind::RateLimited, _) => "rate_limit_error",
            (LlmErrorKind::Upstream, 503) => "overloaded_error",
            (LlmErrorKind::Upstream | LlmErrorKind::GuardrailResponse, _) => "api_error",
            (_, 404) => "not_found_error",
            (_, 413) => "request_too_large",
            _ => "invalid_request_error",
        }
    }

    /// Gemini's `status`.
    fn gemini(self, status: u16) -> &'static str {
        match (self, status) {
            (LlmErrorKind::RateLimited, _) => "RESOURCE_EXHAUSTED",
            (LlmErrorKind::Upstream, 503) => "UNAVAILABLE",
            (LlmErrorKind::Upstream, 504) => "DEADLINE_EXCEEDED",
            (LlmErrorKind::Upstream | LlmErrorKind::GuardrailResponse, _) => "INTERNAL",
            (_, 404) => "NOT_FOUND",
            _ => "INVALID_ARGUMENT",
        }
    }
}

/// The error body of `api` for `status`, `kind` and `message`.
pub fn error_body(api: ApiFamily, status: u16, kind: LlmErrorKind, message: &str) -> Bytes {
    let v = match api {
        ApiFamily::Openai => {
            let (t, code) = kind.openai();
            let param = (kind == LlmErrorKind::ModelNotAllowed).then_some("model");
            json!({"error": {"message": message, "type": t, "code": code, "param": param}})
        }
        ApiFamily::Anthropic => {
            json!({"type": "error", "error": {"type": kind.anthropic(status), "message": message}})
        }
        ApiFamily::Gemini => {
            json!({"error": {"code": status, "message": message, "status": kind.gemini(status)}})
        }
    };
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn each_api_gets_its_shape() {
        let parse = |b: Bytes| serde_json::from_slice::<Value>(&b).unwrap();
        let o = parse(error_body(
            ApiFamily::Openai,
            400,
            LlmErrorKind::ModelNotAllowed,
            "model 'x' is not allowed",
        ));
        assert_eq!(o["error"]["code"], "model_not_allowed");
        assert_eq!(o["error"]["type"], "invalid_request_error");
        assert_eq!(o["error"]["param"], "model");
        assert_eq!(o["error"]["message"], "model 'x' is not allowed");
        let a = parse(error_body(
            ApiFamily::Anthropic,
            429,
            LlmErrorKind::RateLimited,
            "slow down",
        ));
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "rate_limit_error");
        assert_eq!(a["error"]["message"], "slow down");
        let g = parse(error_body(
            ApiFamily::Gemini,
            400,
            LlmErrorKind::PromptTooLarge,
            "too long",
        ));
        assert_eq!(
            g["error"],
            json!({"code": 400, "message": "too long", "status": "INVALID_ARGUMENT"})
        );
    }

    #[test]
    fn every_kind_in_every_api_is_json_carrying_the_message() {
        use LlmErrorKind::*;
        let message = "model \"gpt-5\" is not allowed\nask an admin: {x}";
        for api in [ApiFamily::Openai, ApiFamily::Anthropic, ApiFamily::Gemini] {
            for (kind, status) in [
                (InvalidRequest, 400),
                (ModelNotAllowed, 403),
                (PromptTooLarge, 413),
                (GuardrailRequest, 400),
                (GuardrailResponse, 502),
                (RateLimited, 429),
                (Upstream, 503),
            ] {
                let b = error_body(api, status, kind, message);
                let v: Value =
                    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{api:?} {kind:?}: {e}"));
                let found = match api {
                    ApiFamily::Gemini => {
                        assert_eq!(v["error"]["code"], status, "{kind:?}");
                        &v["error"]["message"]
                    }
                    _ => &v["error"]["message"],
                };
                assert_eq!(found, message, "{api:?} {kind:?}");
            }
        }
    }

    #[test]
    fn types_and_statuses_follow_each_api() {
        let field = |api, status, kind, pointer: &str| {
            let v: Value = serde_json::from_slice(&error_body(api, status, kind, "m")).unwrap();
            v.pointer(pointer).cloned().unwrap_or(Value::Null)
        };
        use LlmErrorKind::*;
        let openai = |kind, p| field(ApiFamily::Openai, 400, kind, p);
        assert_eq!(openai(RateLimited, "/error/type"), "rate_limit_error");
        assert_eq!(openai(RateLimited, "/error/code"), "rate_limit_exceeded");
        assert_eq!(openai(PromptTooLarge, "/error/code"), "prompt_too_large");
        assert_eq!(
            openai(GuardrailRequest, "/error/code"),
            "guardrail_violation"
        );
        assert_eq!(openai(Upstream, "/error/type"), "api_error");
        assert_eq!(openai(PromptTooLarge, "/error/param"), Value::Null);
        assert_eq!(
            field(ApiFamily::Anthropic, 502, Upstream, "/error/type"),
            "api_error"
        );
        assert_eq!(
            field(ApiFamily::Anthropic, 400, GuardrailRequest, "/error/type"),
            "invalid_request_error"
        );
        assert_eq!(
            field(ApiFamily::Gemini, 429, RateLimited, "/error/status"),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(
            field(ApiFamily::Gemini, 502, Upstream, "/error/status"),
            "INTERNAL"
        );
    }
}
