//! What a response reports: the model that answered and the tokens it used, found where the
//! provider's template says; and the model a request names.

use gatehouse_core::llm::{JsonPointer, StreamExtract, TemplateExtract};
use serde_json::Value;

/// The usage of one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The model that answered, as the provider names it (often with a version suffix).
    pub model: Option<String>,
    /// Tokens of the prompt (input).
    pub prompt_tokens: Option<u64>,
    /// Tokens of the answer (output).
    pub completion_tokens: Option<u64>,
}

fn first_u64(pointers: &[JsonPointer], v: &Value) -> Option<u64> {
    pointers.iter().find_map(|p| p.get(v)?.as_u64())
}

fn first_str(pointers: &[JsonPointer], v: &Value) -> Option<String> {
    pointers
        .iter()
        .find_map(|p| p.get(v)?.as_str().filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

/// The usage a JSON response reports.
pub fn from_json(x: &TemplateExtract, body: &Value) -> Usage {
    Usage {
        model: first_str(&x.response_model, body),
        prompt_tokens: first_u64(&x.prompt_tokens, body),
        completion_tokens: first_u64(&x.completion_tokens, body),
    }
}

/// The model a request names (at `path`, the path after the context).
pub fn request_model(x: &TemplateExtract, path: &str, body: Option<&Value>) -> Option<String> {
    x.request_model
        .iter()
        .find_map(|loc| loc.find(path, body))
        .map(str::to_owned)
}

/// The usage of a stream, gathered event by event: a later event's value replaces an earlier
/// one, as providers report cumulative counts.
#[derive(Debug, Clone, Default)]
pub struct StreamUsage {
    seen: Usage,
}

/// Whether `data` (JSON text) has a member `key` whose value is not `null`. A cheap test that
/// lets most stream events pass without being parsed; a false positive only costs a parse.
pub fn mentions(data: &str, key: &str) -> bool {
    let b = data.as_bytes();
    let mut from = 0;
    while let Some(i) = data[from..].find(key) {
        let start = from + i;
        let end = start + key.len();
        from = end;
        if start == 0 || b[start - 1] != b'"' || b.get(end) != Some(&b'"') {
            continue;
        }
        let rest = data[end + 1..].trim_start();
        let Some(value) = rest.strip_prefix(':') else {
            continue;
        };
        if !value.trim_start().starts_with("null") {
            return true;
        }
    }
    false
}

/// The first key of a pointer (`usage` of `/usage/prompt_tokens`).
fn first_key(p: &JsonPointer) -> &str {
    p.as_str()[1..].split('/').next().unwrap_or_default()
}

impl StreamUsage {
    /// Whether the event `data` may report something not known yet, and so must be parsed.
    pub fn wants(&self, x: &StreamExtract, data: &str) -> bool {
        let tokens = x.prompt_tokens.iter().chain(&x.completion_tokens);
        let model = x.model.iter().filter(|_| self.seen.model.is_none());
        tokens.chain(model).any(|p| mentions(data, first_key(p)))
    }

    /// Reads one event's JSON data.
    pub fn observe(&mut self, x: &StreamExtract, data: &Value) {
        if let Some(m) = first_str(&x.model, data) {
            self.seen.model = Some(m);
        }
        if let Some(n) = first_u64(&x.prompt_tokens, data) {
            self.seen.prompt_tokens = Some(n);
        }
        if let Some(n) = first_u64(&x.completion_tokens, data) {
            self.seen.completion_tokens = Some(n);
        }
    }

    /// What was seen so far.
    pub fn usage(&self) -> Usage {
        self.seen.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::sse::SseParser;
    use gatehouse_core::llm::builtin;
    use serde_json::json;

    fn x(id: &str) -> &'static TemplateExtract {
        &builtin(id).unwrap().extract
    }

    fn stream(id: &str, sse: &str) -> Usage {
        let mut u = StreamUsage::default();
        for ev in SseParser::new().push(sse.as_bytes()) {
            if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                u.observe(&x(id).stream, &v);
            }
        }
        u.usage()
    }

    fn usage(model: &str, p: u64, c: u64) -> Usage {
        Usage {
            model: Some(model.into()),
            prompt_tokens: Some(p),
            completion_tokens: Some(c),
        }
    }

    #[test]
    fn openai_family_plain_streamed_and_responses() {
        let chat = json!({"id": "chatcmpl-9", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}});
        for id in ["openai", "azure-openai", "mistral", "openai-compatible"] {
            assert_eq!(
                from_json(x(id), &chat),
                usage("gpt-4o-2024-08-06", 12, 3),
                "{id}"
            );
        }
        let responses = json!({"id": "resp_1", "object": "response", "model": "gpt-4.1",
            "output": [], "usage": {"input_tokens": 20, "output_tokens": 7, "total_tokens": 27}});
        assert_eq!(from_json(x("openai"), &responses), usage("gpt-4.1", 20, 7));
        let sse = concat!(
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
            "data: [DONE]\n\n"
        );
        assert_eq!(stream("openai", sse), usage("gpt-4o", 9, 2));
        // Mistral reports usage in its last chunk unasked.
        let mistral = "data: {\"id\":\"m\",\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\ndata: [DONE]\n\n";
        assert_eq!(
            stream("mistral", mistral),
            usage("mistral-small-latest", 5, 1)
        );
    }

    #[test]
    fn only_events_that_report_something_are_parsed() {
        assert!(mentions(r#"{"a":1,"usage":{"x":1}}"#, "usage"));
        assert!(!mentions(r#"{"a":1,"usage":null}"#, "usage"));
        assert!(!mentions(r#"{"a":"usage","usage" : null}"#, "usage"));
        assert!(!mentions(r#"{"usageMetadata":{}}"#, "usage"));
        let x = &x("openai").stream;
        let mut u = StreamUsage::default();
        let chunk = r#"{"model":"m","choices":[{"delta":{"content":"x"}}],"usage":null}"#;
        assert!(u.wants(x, chunk), "the model is not known yet");
        u.observe(x, &serde_json::from_str(chunk).unwrap());
        assert!(!u.wants(x, chunk), "nothing new in a content chunk");
        assert!(u.wants(
            x,
            r#"{"model":"m","choices":[],"usage":{"prompt_tokens":1}}"#
        ));
    }

    #[test]
    fn models_in_requests() {
        let body = json!({"model": "gpt-4o", "messages": []});
        assert_eq!(
            request_model(x("openai"), "/chat/completions", Some(&body)).as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(
            request_model(
                x("azure-openai"),
                "/openai/deployments/prod-gpt/chat/completions",
                Some(&json!({}))
            )
            .as_deref(),
            Some("prod-gpt")
        );
        assert_eq!(
            request_model(
                x("gemini"),
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                None
            )
            .as_deref(),
            Some("gemini-2.0-flash")
        );
        assert_eq!(request_model(x("openai"), "/models", None), None);
    }

    #[test]
    fn anthropic_plain_and_streamed() {
        let msg = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 25, "output_tokens": 4, "cache_read_input_tokens": 0}});
        assert_eq!(
            from_json(x("anthropic"), &msg),
            usage("claude-sonnet-4-20250514", 25, 4)
        );
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-haiku-20241022\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        assert_eq!(
            stream("anthropic", sse),
            usage("claude-3-5-haiku-20241022", 25, 15)
        );
    }

    #[test]
    fn gemini_plain_and_streamed() {
        let plain = json!({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2, "totalTokenCount": 10},
            "modelVersion": "gemini-2.0-flash-001"});
        assert_eq!(
            from_json(x("gemini"), &plain),
            usage("gemini-2.0-flash-001", 8, 2)
        );
        let sse = concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"}}],\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8},\"modelVersion\":\"gemini-2.0-flash-001\"}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":5,\"totalTokenCount\":13},\"modelVersion\":\"gemini-2.0-flash-001\"}\r\n\r\n"
        );
        assert_eq!(stream("gemini", sse), usage("gemini-2.0-flash-001", 8, 5));
    }

    #[test]
    fn openai_responses_stream_reports_in_its_completed_event() {
        let sse = concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\"}]}],\"usage\":{\"input_tokens\":14,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":2,\"total_tokens\":16}}}\n\n"
        );
        assert_eq!(stream("openai", sse), usage("gpt-4.1-2025-04-14", 14, 2));
    }

    #[test]
    fn azure_stream_with_its_content_filter_chunk_first() {
        // Azure opens with a chunk of empty model and no choices, carrying prompt filter
        // results; the model comes with the next chunk.
        let sse = concat!(
            "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n",
            "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"Hi\",\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0}],\"created\":1733000000,\"id\":\"chatcmpl-A\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_1\",\"usage\":null}\n\n",
            "data: {\"choices\":[],\"created\":1733000000,\"id\":\"chatcmpl-A\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",\"usage\":{\"completion_tokens\":1,\"prompt_tokens\":18,\"total_tokens\":19}}\n\n",
            "data: [DONE]\n\n"
        );
        assert_eq!(
            stream("azure-openai", sse),
            usage("gpt-4o-2024-11-20", 18, 1)
        );
        let plain = json!({"choices": [{"content_filter_results": {}, "finish_reason": "stop", "index": 0,
            "message": {"content": "Hi", "role": "assistant"}}], "created": 1733000000, "id": "chatcmpl-A",
            "model": "gpt-4o-2024-11-20", "object": "chat.completion",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "usage": {"completion_tokens": 1, "prompt_tokens": 18, "total_tokens": 19}});
        assert_eq!(
            from_json(x("azure-openai"), &plain),
            usage("gpt-4o-2024-11-20", 18, 1)
        );
    }

    #[test]
    fn openai_compatible_servers_plain_and_streamed() {
        // vLLM with stream_options.include_usage: usage null in each chunk, then the usage chunk.
        let vllm = concat!(
            "data: {\"id\":\"chatcmpl-v\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
            "data: {\"id\":\"chatcmpl-v\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
            "data: {\"id\":\"chatcmpl-v\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"total_tokens\":23,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n"
        );
        assert_eq!(
            stream("openai-compatible", vllm),
            usage("meta-llama/Llama-3.1-8B-Instruct", 21, 2)
        );
        // Ollama's OpenAI endpoint answers plainly with the same usage members.
        let ollama = json!({"id": "chatcmpl-42", "object": "chat.completion", "created": 1, "model": "llama3.2",
            "system_fingerprint": "fp_ollama", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
            "finish_reason": "stop"}], "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33}});
        assert_eq!(
            from_json(x("openai-compatible"), &ollama),
            usage("llama3.2", 30, 3)
        );
        // A server that reports nothing leaves the counts unknown rather than zero.
        let silent = "data: {\"model\":\"local\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(
            stream("openai-compatible", silent),
            Usage {
                model: Some("local".into()),
                ..Usage::default()
            }
        );
    }

    #[test]
    fn gemini_names_its_model_in_the_path() {
        for path in [
            "/v1beta/models/gemini-2.0-flash:generateContent",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            "/v1/models/gemini-2.0-flash:countTokens",
        ] {
            assert_eq!(
                request_model(x("gemini"), path, Some(&json!({"contents": []}))).as_deref(),
                Some("gemini-2.0-flash"),
                "{path}"
            );
        }
        assert_eq!(request_model(x("gemini"), "/v1beta/models", None), None);
        // Anthropic and Mistral name it in the body only.
        let body = json!({"model": "claude-3-5-haiku-20241022", "max_tokens": 10, "messages": []});
        assert_eq!(
            request_model(x("anthropic"), "/v1/messages", Some(&body)).as_deref(),
            Some("claude-3-5-haiku-20241022")
        );
        assert_eq!(
            request_model(x("mistral"), "/v1/chat/completions", None),
            None
        );
    }
}
