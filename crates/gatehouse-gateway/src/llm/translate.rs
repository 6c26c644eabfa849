//! OpenAI chat completions ⇄ Anthropic messages, for a proxy whose clients speak OpenAI in
//! front of an Anthropic provider: the request one way, the answer (plain, error or streamed)
//! the other.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::sse::SseEvent;
use super::usage::Usage;

/// Anthropic requires `max_tokens`; this is sent when the client gave none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The text of an OpenAI content value (a string or a list of text parts).
fn text_of(content: &Value, at: &str) -> Result<String, String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => out.push_str(p["text"].as_str().unwrap_or_default()),
                    other => {
                        return Err(format!(
                            "{at}[{i}]: content parts of type '{}' are not translated to the anthropic API; only text is",
                            other.unwrap_or("?")
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(format!("{at}: must be a string or a list of parts")),
    }
}

/// An OpenAI chat completions request as an Anthropic messages request.
pub fn chat_request_to_messages(body: &Value) -> Result<Value, String> {
    let obj = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or("model: is required")?;
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err("n: only 1 is translated to the anthropic API".into());
    }
    // Fields whose meaning would be lost: refused rather than silently dropped.
    for field in [
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "logprobs",
        "audio",
    ] {
        if obj
            .get(field)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        {
            return Err(format!(
                "{field}: is not translated to the anthropic API yet"
            ));
        }
    }
    if obj
        .get("response_format")
        .and_then(|f| f.get("type"))
        .is_some_and(|t| t != "text")
    {
        return Err("response_format: only text is translated to the anthropic API".into());
    }
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: is required and must be a list")?;
    let mut system: Vec<String> = vec![];
    let mut out: Vec<Value> = vec![];
    for (i, m) in msgs.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.role: is required"))?;
        let text = text_of(
            m.get("content").unwrap_or(&Value::Null),
            &format!("{at}.content"),
        )?;
        let role = match role {
            "system" | "developer" => {
                system.push(text);
                continue;
            }
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(format!(
                    "{at}.role: '{other}' messages are not translated to the anthropic API"
                ))
            }
        };
        // Anthropic wants alternating roles: consecutive messages of one role are merged.
        match out.last_mut() {
            Some(last) if last["role"] == role => {
                let prev = last["content"].as_str().unwrap_or_default().to_owned();
                last["content"] = Value::String(format!("{prev}\n\n{text}"));
            }
            _ => out.push(json!({"role": role, "content": text})),
        }
    }
    let mut req = Map::new();
    req.insert("model".into(), json!(model));
    if !system.is_empty() {
        req.insert("system".into(), json!(system.join("\n\n")));
    }
    req.insert("messages".into(), Value::Array(out));
    let max = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    req.insert("max_tokens".into(), json!(max));
    for key in ["temperature", "top_p", "stream"] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            req.insert(key.into(), v.clone());
        }
    }
    match obj.get("stop") {
        Some(Value::String(s)) => {
            req.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            req.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(user) = obj.get("user").and_then(Value::as_str) {
        req.insert("metadata".into(), json!({"user_id": user}));
    }
    Ok(Value::Object(req))
}

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`.
fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        _ => "stop",
    }
}

/// An Anthropic message as an OpenAI chat completion.
pub fn messages_response_to_chat(body: &Value) -> Value {
    let text: String = body["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let p = body
        .pointer("/usage/input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let c = body
        .pointer("/usage/output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "id": body["id"].as_str().unwrap_or("msg"),
        "object": "chat.completion",
        "created": now_secs(),
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason(body["stop_reason"].as_str()),
            "logprobs": null
        }],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    })
}

/// An Anthropic error answer as an OpenAI error.
pub fn messages_error_to_chat(status: u16, body: &Value) -> Value {
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("the provider refused the request");
    let kind = match status {
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    json!({"error": {"message": message, "type": kind, "code": body.pointer("/error/type"), "param": null}})
}

/// Turns an Anthropic event stream into OpenAI chat completion chunks.
pub struct MessagesStreamToChat {
    include_usage: bool,
    id: String,
    model: Value,
    created: u64,
    usage: Usage,
}

impl MessagesStreamToChat {
    /// A translator; `include_usage` when the client asked for the usage chunk.
    pub fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            id: "msg".into(),
            model: Value::Null,
            created: now_secs(),
            usage: Usage::default(),
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut c = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model, "choices": choices});
        if let Some(u) = usage {
            c["usage"] = u;
        } else if self.include_usage {
            c["usage"] = Value::Null;
        }
        Bytes::from(format!("data: {c}\n\n"))
    }

    /// The OpenAI frames for one Anthropic event.
    pub fn event(&mut self, ev: &SseEvent) -> Vec<Bytes> {
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return vec![];
        };
        let kind = data["type"]
            .as_str()
            .or(ev.event.as_deref())
            .unwrap_or_default();
        match kind {
            "message_start" => {
                let m = &data["message"];
                if let Some(id) = m["id"].as_str() {
                    self.id = id.to_owned();
                }
                self.model = m["model"].clone();
                self.usage.model = m["model"].as_str().map(str::to_owned);
                self.usage.prompt_tokens = m.pointer("/usage/input_tokens").and_then(Value::as_u64);
                vec![self.chunk(
                    json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
                    None,
                )]
            }
            "content_block_delta" => match data.pointer("/delta/text").and_then(Value::as_str) {
                Some(t) => vec![self.chunk(
                    json!([{"index": 0, "delta": {"content": t}, "finish_reason": null}]),
                    None,
                )],
                None => vec![],
            },
            "message_delta" => {
                if let Some(n) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.completion_tokens = Some(n);
                }
                if let Some(n) = data.pointer("/usage/input_tokens").and_then(Value::as_u64) {
                    self.usage.prompt_tokens = Some(n);
                }
                let reason =
                    finish_reason(data.pointer("/delta/stop_reason").and_then(Value::as_str));
                vec![self.chunk(
                    json!([{"index": 0, "delta": {}, "finish_reason": reason}]),
                    None,
                )]
            }
            "message_stop" => {
                let mut out = vec![];
                if self.include_usage {
                    let (p, c) = (
                        self.usage.prompt_tokens.unwrap_or(0),
                        self.usage.completion_tokens.unwrap_or(0),
                    );
                    out.push(self.chunk(
                        json!([]),
                        Some(json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})),
                    ));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                out
            }
            "error" => {
                let err = messages_error_to_chat(500, &data);
                vec![
                    Bytes::from(format!("data: {err}\n\n")),
                    Bytes::from_static(b"data: [DONE]\n\n"),
                ]
            }
            _ => vec![],
        }
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Usage {
        self.usage.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::sse::SseParser;

    #[test]
    fn requests_become_messages() {
        let chat = json!({"model": "claude-3-5-haiku", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "no jokes"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "user", "content": "there"},
            {"role": "assistant", "content": "hello"}],
            "max_tokens": 50, "stop": "END", "temperature": 0.2, "stream": true, "user": "u1"});
        let m = chat_request_to_messages(&chat).unwrap();
        assert_eq!(m["system"], "be brief\n\nno jokes");
        assert_eq!(
            m["messages"],
            json!([{"role": "user", "content": "hi\n\nthere"}, {"role": "assistant", "content": "hello"}])
        );
        assert_eq!(m["max_tokens"], 50);
        assert_eq!(m["stop_sequences"], json!(["END"]));
        assert_eq!(
            (m["temperature"].clone(), m["stream"].clone()),
            (json!(0.2), json!(true))
        );
        assert_eq!(m["metadata"]["user_id"], "u1");
        let m = chat_request_to_messages(
            &json!({"model": "c", "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        assert_eq!(m["max_tokens"], DEFAULT_MAX_TOKENS);
        assert!(m.get("system").is_none());
        let e =
            chat_request_to_messages(&json!({"model": "c", "n": 2, "messages": []})).unwrap_err();
        assert!(e.starts_with("n:"), "{e}");
        let e = chat_request_to_messages(&json!({"model": "c", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})).unwrap_err();
        assert!(e.starts_with("messages[0].content[0]"), "{e}");
        assert!(chat_request_to_messages(&json!({"messages": []}))
            .unwrap_err()
            .starts_with("model"));
    }

    #[test]
    fn answers_and_errors_come_back_in_openai_shape() {
        let msg = json!({"id": "msg_1", "type": "message", "model": "claude-3-5-haiku", "role": "assistant",
            "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 2}});
        let c = messages_response_to_chat(&msg);
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(c["choices"][0]["finish_reason"], "length");
        assert_eq!(
            c["usage"],
            json!({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12})
        );
        let e = messages_error_to_chat(
            429,
            &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
        );
        assert_eq!(e["error"]["type"], "rate_limit_error");
        assert_eq!(e["error"]["message"], "slow");
    }

    #[test]
    fn streams_become_chunks() {
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_7\",\"model\":\"claude-3-5-haiku\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        for include in [false, true] {
            let mut t = MessagesStreamToChat::new(include);
            let frames: Vec<Bytes> = SseParser::new()
                .push(sse.as_bytes())
                .iter()
                .flat_map(|e| t.event(e))
                .collect();
            let text: String = frames
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            let chunks: Vec<Value> = text
                .split("\n\n")
                .filter_map(|e| e.strip_prefix("data: "))
                .filter(|d| *d != "[DONE]")
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            assert!(chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "msg_7"));
            assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
            assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
            assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
            let usage_chunks: Vec<&Value> = chunks
                .iter()
                .filter(|c| c["choices"] == json!([]))
                .collect();
            assert_eq!(usage_chunks.len(), usize::from(include));
            if include {
                assert_eq!(usage_chunks[0]["usage"]["completion_tokens"], 4);
            } else {
                assert!(chunks.iter().all(|c| c.get("usage").is_none()));
            }
            assert_eq!(t.usage().prompt_tokens, Some(9));
            assert_eq!(t.usage().completion_tokens, Some(4));
        }
    }

    #[test]
    fn request_fields_map_one_by_one_and_unsupported_ones_are_named() {
        let m = chat_request_to_messages(&json!({"model": "claude-sonnet-4-20250514",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "max_tokens": 10, "max_completion_tokens": 20, "stop": ["x", "y"], "top_p": 0.9,
            "temperature": null, "n": 1, "tools": null, "response_format": {"type": "text"}}))
        .unwrap();
        assert_eq!(m["model"], "claude-sonnet-4-20250514");
        assert_eq!(m["max_tokens"], 20, "max_completion_tokens wins");
        assert_eq!(m["stop_sequences"], json!(["x", "y"]));
        assert_eq!(m["top_p"], 0.9);
        assert!(m.get("temperature").is_none());
        assert_eq!(m["messages"], json!([{"role": "user", "content": "ab"}]));
        for (field, body) in [
            (
                "tools",
                json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
            ),
            ("tool_choice", json!({"tool_choice": "auto"})),
            (
                "response_format",
                json!({"response_format": {"type": "json_object"}}),
            ),
            (
                "messages[1].role",
                json!({"messages": [{"role": "user", "content": "x"},
                                                      {"role": "tool", "content": "r", "tool_call_id": "t"}]}),
            ),
            (
                "messages[0].content",
                json!({"messages": [{"role": "user", "content": 42}]}),
            ),
            ("messages", json!({"messages": "hi"})),
        ] {
            let mut req = json!({"model": "c", "messages": [{"role": "user", "content": "x"}]});
            for (k, v) in body.as_object().unwrap() {
                req[k] = v.clone();
            }
            let e = chat_request_to_messages(&req).unwrap_err();
            assert!(e.starts_with(field), "{field}: {e}");
        }
        assert!(chat_request_to_messages(&json!([1])).is_err());
    }

    #[test]
    fn stop_reasons_become_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "stop"),
        ] {
            let c = messages_response_to_chat(&json!({"id": "msg_1", "model": "m",
                "content": [], "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 0}}));
            assert_eq!(c["choices"][0]["finish_reason"], finish, "{stop}");
            assert_eq!(c["choices"][0]["message"]["content"], "");
            assert!(c["created"].as_u64().is_some_and(|t| t > 1_700_000_000));
        }
        let e = messages_error_to_chat(
            529,
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        assert_eq!(
            e,
            json!({"error": {"message": "Overloaded", "type": "api_error", "code": "overloaded_error", "param": null}})
        );
        let e = messages_error_to_chat(400, &json!("not an anthropic error"));
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert!(e["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    /// The frames of `sse` through a translator, parsed back: the JSON chunks, and whether
    /// the stream ended with `[DONE]`.
    fn translate(t: &mut MessagesStreamToChat, sse: &str) -> (Vec<Value>, bool) {
        let text: String = SseParser::new()
            .push(sse.as_bytes())
            .iter()
            .flat_map(|e| t.event(e))
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        let mut done = false;
        let mut chunks = vec![];
        for frame in text.split_terminator("\n\n") {
            let data = frame
                .strip_prefix("data: ")
                .expect("every frame is one data line");
            if data == "[DONE]" {
                done = true;
            } else {
                assert!(!done, "nothing after [DONE]");
                chunks.push(serde_json::from_str(data).unwrap());
            }
        }
        (chunks, done)
    }

    #[test]
    fn every_chunk_has_the_openai_chunk_members() {
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XF\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":2}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\", here\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        let mut t = MessagesStreamToChat::new(true);
        let (chunks, done) = translate(&mut t, sse);
        assert!(done);
        assert_eq!(
            chunks.len(),
            5,
            "start, two deltas, finish, usage: {chunks:?}"
        );
        let created = &chunks[0]["created"];
        for c in &chunks {
            assert_eq!(c["id"], "msg_01XF");
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "claude-sonnet-4-20250514");
            assert_eq!(&c["created"], created);
            assert!(c["choices"].is_array());
            assert!(c.get("usage").is_some(), "usage member present when asked");
        }
        let text: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/content")?.as_str())
            .collect();
        assert_eq!(text, "Okay, here");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
        assert_eq!(
            chunks[4]["usage"],
            json!({"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561})
        );
        assert_eq!(
            t.usage(),
            Usage {
                model: Some("claude-sonnet-4-20250514".into()),
                prompt_tokens: Some(472),
                completion_tokens: Some(89),
            }
        );
    }

    #[test]
    fn a_stream_error_becomes_an_openai_error_then_done() {
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"claude-3-5-haiku-20241022\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        );
        let (chunks, done) = translate(&mut MessagesStreamToChat::new(false), sse);
        assert!(done);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[2]["error"]["message"], "Overloaded");
        assert_eq!(chunks[2]["error"]["code"], "overloaded_error");
        assert!(chunks[..2].iter().all(|c| c.get("usage").is_none()));
    }
}
