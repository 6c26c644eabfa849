//! OpenAI's `stream_options.include_usage`: a stream reports its usage only when the request
//! asks. The gateway asks for it to count tokens, then gives the client exactly what it would
//! have received without asking: no usage-only chunk, no `"usage":null` member in the chunks.

use bytes::Bytes;
use serde_json::{json, Value};

use super::sse::SseEvent;

/// Asks for usage in a streamed request that did not. Returns whether the gateway added it.
pub fn ask_for_usage(body: &mut Value) -> bool {
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return false;
    }
    let asked = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    if asked {
        return false;
    }
    match body.get_mut("stream_options") {
        Some(Value::Object(o)) => {
            o.insert("include_usage".into(), Value::Bool(true));
        }
        _ => body["stream_options"] = json!({"include_usage": true}),
    }
    true
}

/// What to do with one chunk of a stream whose usage the gateway asked for.
#[derive(Debug, PartialEq)]
pub enum Scrubbed {
    /// Forward as received.
    Keep,
    /// The usage-only chunk: not forwarded.
    Drop,
    /// The chunk without its `"usage":null` member.
    Rewrite(Bytes),
}

/// Decides the fate of one event.
pub fn scrub_chunk(ev: &SseEvent) -> Scrubbed {
    if !ev.data.starts_with('{') || !ev.data.contains("\"usage\"") {
        return Scrubbed::Keep;
    }
    // A usage that is not null may be the usage-only chunk: that one needs parsing.
    if super::usage::mentions(&ev.data, "usage") {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return Scrubbed::Keep;
        };
        let usage_only = v
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
            && v.get("usage").is_some_and(|u| !u.is_null());
        if usage_only {
            return Scrubbed::Drop;
        }
        if v.get("usage") != Some(&Value::Null) {
            return Scrubbed::Keep;
        }
    }
    // Most chunks carry `"usage":null`: removed in the text, without parsing the chunk.
    match without_null_member(&ev.data, "usage") {
        Some(data) => Scrubbed::Rewrite(super::sse::encode(ev.event.as_deref(), &data)),
        None => Scrubbed::Keep,
    }
}

/// `object` (JSON text) without its top-level member `key` whose value is `null`, the text
/// otherwise unchanged (key order and spacing kept).
fn without_null_member(object: &str, key: &str) -> Option<String> {
    let b = object.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    // Start of the last top-level token, to find the comma before a member.
    let mut last_comma: Option<usize> = None;
    let mut after_open: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let end = i; // closing quote
                if depth == 1 && &object[start + 1..end] == key {
                    // A key at top level: `: null` must follow.
                    let mut j = end + 1;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if b.get(j) == Some(&b':') {
                        j += 1;
                        while j < b.len() && b[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        if object[j..].starts_with("null") {
                            let value_end = j + 4;
                            let (from, to) = match last_comma {
                                // `, "usage": null` — the comma before goes with it.
                                Some(c) => (c, value_end),
                                None => {
                                    // First member: take the comma after it too.
                                    let mut k = value_end;
                                    while k < b.len() && b[k].is_ascii_whitespace() {
                                        k += 1;
                                    }
                                    if b.get(k) == Some(&b',') {
                                        k += 1;
                                        while k < b.len() && b[k].is_ascii_whitespace() {
                                            k += 1;
                                        }
                                    }
                                    (after_open.unwrap_or(start), k)
                                }
                            };
                            let mut out = String::with_capacity(object.len());
                            out.push_str(&object[..from]);
                            out.push_str(&object[to..]);
                            return Some(out);
                        }
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    after_open = Some(i + 1);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => last_comma = Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::sse::SseParser;

    fn ev(data: &str) -> SseEvent {
        SseParser::new()
            .push(format!("data: {data}\n\n").as_bytes())
            .remove(0)
    }

    #[test]
    fn asks_only_streams_that_did_not() {
        let mut b = json!({"model": "m", "stream": true});
        assert!(ask_for_usage(&mut b));
        assert_eq!(b["stream_options"]["include_usage"], true);
        let mut b =
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}});
        assert!(!ask_for_usage(&mut b));
        let mut b = json!({"model": "m", "stream": true, "stream_options": {"include_usage": false, "x": 1}});
        assert!(ask_for_usage(&mut b));
        assert_eq!(b["stream_options"], json!({"include_usage": true, "x": 1}));
        let mut b = json!({"model": "m"});
        assert!(!ask_for_usage(&mut b));
        assert_eq!(b, json!({"model": "m"}));
    }

    #[test]
    fn the_usage_chunk_is_dropped_and_null_usage_removed_in_place() {
        let usage_only = r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        assert_eq!(scrub_chunk(&ev(usage_only)), Scrubbed::Drop);
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"\"usage\":null"},"finish_reason":null}],"usage":null}"#;
        let Scrubbed::Rewrite(b) = scrub_chunk(&ev(chunk)) else {
            panic!("rewritten")
        };
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\\"usage\\\":null\"},\"finish_reason\":null}]}\n\n"
        );
        assert_eq!(scrub_chunk(&ev("[DONE]")), Scrubbed::Keep);
        assert_eq!(
            scrub_chunk(&ev(r#"{"choices":[{"delta":{}}]}"#)),
            Scrubbed::Keep
        );
    }

    #[test]
    fn members_come_out_wherever_they_stand() {
        assert_eq!(
            without_null_member(r#"{"usage": null, "a": 1}"#, "usage").unwrap(),
            r#"{"a": 1}"#
        );
        assert_eq!(
            without_null_member(r#"{"a": 1 , "usage" : null }"#, "usage").unwrap(),
            r#"{"a": 1  }"#
        );
        assert_eq!(
            without_null_member(r#"{"a": {"usage": null}, "usage":null}"#, "usage").unwrap(),
            r#"{"a": {"usage": null}}"#
        );
        assert!(without_null_member(r#"{"usage": 3}"#, "usage").is_none());
        for text in [
            r#"{"usage":null,"b":[1,2]}"#,
            r#"{"a":"x,y","usage":null}"#,
            r#"{"a":"\"usage\":null","usage":null,"c":{}}"#,
        ] {
            let out = without_null_member(text, "usage").unwrap();
            let v: Value = serde_json::from_str(&out).unwrap();
            assert!(v.get("usage").is_none(), "{out}");
        }
    }

    /// What the client gets from a stream the gateway asked usage for is, byte for byte, the
    /// stream it would have got without asking.
    #[test]
    fn the_client_receives_the_stream_it_would_have_had_without_the_option() {
        let chunk = |content: &str, finish: &str, usage: bool| {
            let usage = if usage { ",\"usage\":null" } else { "" };
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1733000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{{\"index\":0,\"delta\":{{{content}}},\"logprobs\":null,\"finish_reason\":{finish}}}]{usage}}}\n\n"
            )
        };
        let stream = |asked: bool| {
            let mut s = String::new();
            s += &chunk(
                "\"role\":\"assistant\",\"content\":\"\",\"refusal\":null",
                "null",
                asked,
            );
            s += &chunk("\"content\":\"Hello\"", "null", asked);
            s += &chunk("\"content\":\" \\\"usage\\\": null\"", "null", asked);
            s += &chunk("", "\"stop\"", asked);
            if asked {
                s += "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1733000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":9,\"total_tokens\":17,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n";
            }
            s += "data: [DONE]\n\n";
            s
        };
        let mut delivered = Vec::new();
        for ev in SseParser::new().push(stream(true).as_bytes()) {
            match scrub_chunk(&ev) {
                Scrubbed::Keep => delivered.extend_from_slice(&ev.raw),
                Scrubbed::Drop => {}
                Scrubbed::Rewrite(b) => delivered.extend_from_slice(&b),
            }
        }
        assert_eq!(
            String::from_utf8(delivered).unwrap(),
            stream(false),
            "same bytes as a stream that did not ask"
        );
    }

    #[test]
    fn azure_filter_chunks_and_client_usage_are_left_alone() {
        // Azure's first chunk has no choices but no usage either: it is not the usage chunk.
        let filter = r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#;
        assert_eq!(scrub_chunk(&ev(filter)), Scrubbed::Keep);
        let filter_with_null = r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[],"usage":null}"#;
        assert_eq!(
            scrub_chunk(&ev(filter_with_null)),
            Scrubbed::Rewrite(Bytes::from(
                "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[]}\n\n"
            ))
        );
        // A named event keeps its name when rewritten.
        let named = SseParser::new()
            .push(b"event: chunk\ndata: {\"choices\":[],\"usage\":null}\n\n")
            .remove(0);
        assert_eq!(
            scrub_chunk(&named),
            Scrubbed::Rewrite(Bytes::from("event: chunk\ndata: {\"choices\":[]}\n\n"))
        );
        // Not JSON, or a usage member that is not null inside a chunk with choices: kept.
        assert_eq!(scrub_chunk(&ev("not json \"usage\":null")), Scrubbed::Keep);
        let both = r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":1}}"#;
        assert_eq!(scrub_chunk(&ev(both)), Scrubbed::Keep);
    }

    #[test]
    fn an_only_member_and_spaced_out_json_come_out_valid() {
        assert_eq!(
            without_null_member(r#"{"usage":null}"#, "usage").unwrap(),
            "{}"
        );
        assert_eq!(
            without_null_member(
                "{\n  \"a\": [1, {\"b\": \"}\"}],\n  \"usage\": null\n}",
                "usage"
            )
            .unwrap(),
            "{\n  \"a\": [1, {\"b\": \"}\"}]\n}"
        );
        assert_eq!(
            without_null_member(r#"{"usages":null,"usage":null,"z":1}"#, "usage").unwrap(),
            r#"{"usages":null,"z":1}"#
        );
        assert!(without_null_member(r#"{"a":"usage","b":null}"#, "usage").is_none());
        assert!(without_null_member(r#"{"a":1}"#, "usage").is_none());
    }

    #[test]
    fn a_nested_usage_does_not_hide_the_null_one() {
        let chunk = r#"{"choices":[{"delta":{"tool":{"usage":{"n":1}}}}],"usage":null}"#;
        assert_eq!(
            scrub_chunk(&ev(chunk)),
            Scrubbed::Rewrite(Bytes::from(
                "data: {\"choices\":[{\"delta\":{\"tool\":{\"usage\":{\"n\":1}}}}]}\n\n"
            ))
        );
    }
}
