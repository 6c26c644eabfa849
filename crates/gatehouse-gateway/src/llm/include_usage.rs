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
    // Most chunks carry `"usage":null`: removed in the text, without parsing the chunk.
    if !super::usage::mentions(&ev.data, "usage") {
        return match without_null_member(&ev.data, "usage") {
            Some(data) => Scrubbed::Rewrite(super::sse::encode(ev.event.as_deref(), &data)),
            None => Scrubbed::Keep,
        };
    }
    let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
        return Scrubbed::Keep;
    };
    let usage_only = v
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && v.get("usage").is_some_and(|u| !u.is_null());
    if usage_only {
        Scrubbed::Drop
    } else {
        Scrubbed::Keep
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
}
