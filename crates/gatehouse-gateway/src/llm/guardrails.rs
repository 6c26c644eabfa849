//! Guardrails over the text of prompts and answers: where that text lives in each API's JSON,
//! `regex-guardrail` rules, `pii-masking` and the size of a prompt.

use gatehouse_core::llm::ApiFamily;
use gatehouse_core::policy::{PiiKind, PiiMaskingParams, RegexGuardrailParams};
use regex::Regex;
use serde_json::Value;

/// A walk over the prompt strings of a request body, keeping the JSON pointer of the string
/// being visited so that the mutable walk can reach it again.
struct Walk<'v, 'f> {
    at: String,
    f: &'f mut dyn FnMut(&str, &'v str),
}

impl<'v> Walk<'v, '_> {
    /// Runs `g` one segment deeper.
    fn enter(&mut self, seg: &dyn std::fmt::Display, g: impl FnOnce(&mut Self)) {
        use std::fmt::Write;
        let len = self.at.len();
        let _ = write!(self.at, "/{seg}");
        g(self);
        self.at.truncate(len);
    }

    /// Visits `v` when it is a string.
    fn string(&mut self, v: &'v Value) {
        if let Value::String(s) = v {
            (self.f)(&self.at, s);
        }
    }

    /// Visits `obj[key]` with `g` when present.
    fn field(&mut self, obj: &'v Value, key: &str, g: impl FnOnce(&mut Self, &'v Value)) {
        if let Some(v) = obj.get(key) {
            self.enter(&key, |w| g(w, v));
        }
    }

    /// Visits each item of `v` when it is a list.
    fn items(&mut self, v: &'v Value, mut g: impl FnMut(&mut Self, &'v Value)) {
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            self.enter(&i, |w| g(w, item));
        }
    }

    /// A content value: a string, or a list of strings and of parts with `text` (or a nested
    /// `content`, as OpenAI responses input items have).
    fn content(&mut self, v: &'v Value) {
        match v {
            Value::String(_) => self.string(v),
            Value::Array(_) => self.items(v, |w, item| match item {
                Value::String(_) => w.string(item),
                Value::Object(o) => {
                    if o.get("text").is_some_and(Value::is_string) {
                        w.field(item, "text", Walk::string);
                    } else {
                        w.field(item, "content", Walk::content);
                    }
                }
                _ => {}
            }),
            _ => {}
        }
    }

    /// Gemini's `{"parts": [{"text": ..}]}`.
    fn parts(&mut self, holder: &'v Value) {
        self.field(holder, "parts", |w, parts| {
            w.items(parts, |w, p| w.field(p, "text", Walk::string))
        });
    }

    /// Every prompt string of a request body of `api`.
    fn body(&mut self, api: ApiFamily, body: &'v Value) {
        let messages = |w: &mut Self, msgs: &'v Value| {
            w.items(msgs, |w, m| w.field(m, "content", Walk::content))
        };
        match api {
            ApiFamily::Openai => {
                self.field(body, "messages", messages);
                for key in ["input", "instructions", "prompt"] {
                    self.field(body, key, Walk::content);
                }
            }
            ApiFamily::Anthropic => {
                self.field(body, "system", Walk::content);
                self.field(body, "messages", messages);
            }
            ApiFamily::Gemini => {
                self.field(body, "systemInstruction", Walk::parts);
                self.field(body, "contents", |w, cs| w.items(cs, Walk::parts));
            }
        }
    }
}

/// Calls `f` on every string of prompt text in a request body of `api`: OpenAI chat
/// `messages[].content` (a string or parts' `text`), responses `input` and `instructions`,
/// legacy `prompt`; Anthropic `system` and `messages[].content`; Gemini
/// `systemInstruction.parts[].text` and `contents[].parts[].text`.
pub fn visit_prompt_texts<'v>(api: ApiFamily, body: &'v Value, f: &mut dyn FnMut(&'v str)) {
    Walk {
        at: String::new(),
        f: &mut |_, s| f(s),
    }
    .body(api, body);
}

/// Calls `f` on every string of prompt text in a request body of `api`, to change it.
pub fn prompt_texts_mut(api: ApiFamily, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    // One definition of where prompt text lives: the read-only walk says where, then each
    // string is reached again by its pointer.
    let mut pointers = vec![];
    Walk {
        at: String::new(),
        f: &mut |at, _| pointers.push(at.to_owned()),
    }
    .body(api, body);
    for p in pointers {
        if let Some(Value::String(s)) = body.pointer_mut(&p) {
            f(s);
        }
    }
}

/// Every string of prompt text in a request body of `api`, borrowed from it.
pub fn prompt_texts(api: ApiFamily, body: &Value) -> Vec<&str> {
    let mut out = vec![];
    visit_prompt_texts(api, body, &mut |s| out.push(s));
    out
}

/// Characters of prompt text in a request body of `api`.
pub fn prompt_text_len(api: ApiFamily, body: &Value) -> usize {
    let mut n = 0;
    visit_prompt_texts(api, body, &mut |s| n += s.chars().count());
    n
}

/// Tokens estimated from characters (4 characters a token).
pub fn estimated_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// The answer's text in a JSON response of `api`.
pub fn response_text(api: ApiFamily, body: &Value) -> String {
    let mut out = String::new();
    let mut push = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str) {
            out.push_str(s);
            out.push('\n');
        }
    };
    match api {
        ApiFamily::Openai => {
            for c in body["choices"].as_array().into_iter().flatten() {
                push(c.pointer("/message/content"));
                push(c.get("text"));
            }
            for o in body["output"].as_array().into_iter().flatten() {
                for part in o["content"].as_array().into_iter().flatten() {
                    push(part.get("text"));
                }
            }
        }
        ApiFamily::Anthropic => {
            for block in body["content"].as_array().into_iter().flatten() {
                push(block.get("text"));
            }
        }
        ApiFamily::Gemini => {
            for c in body["candidates"].as_array().into_iter().flatten() {
                for p in c
                    .pointer("/content/parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    push(p.get("text"));
                }
            }
        }
    }
    out
}

/// The text one streamed event of `api` adds to the answer.
pub fn stream_delta_text(api: ApiFamily, data: &Value) -> Option<&str> {
    match api {
        ApiFamily::Openai => data
            .pointer("/choices/0/delta/content")
            .or_else(|| {
                data.get("delta")
                    .filter(|_| data["type"] == "response.output_text.delta")
            })
            .and_then(Value::as_str),
        ApiFamily::Anthropic => data.pointer("/delta/text").and_then(Value::as_str),
        ApiFamily::Gemini => data
            .pointer("/candidates/0/content/parts/0/text")
            .and_then(Value::as_str),
    }
}

/// Compiled `regex-guardrail` rules.
pub struct RegexGuard {
    request: Vec<(String, Regex)>,
    response: Vec<(String, Regex)>,
}

impl RegexGuard {
    /// From the policy's params.
    pub fn new(params: &RegexGuardrailParams) -> Self {
        let mut g = Self {
            request: vec![],
            response: vec![],
        };
        for r in &params.rules {
            let entry = (r.name.clone(), r.pattern.regex().clone());
            if r.applies_to.request() {
                g.request.push(entry.clone());
            }
            if r.applies_to.response() {
                g.response.push(entry);
            }
        }
        g
    }

    /// The name of the first request rule the prompt text matches.
    pub fn check_request(&self, api: ApiFamily, body: &Value) -> Result<(), String> {
        if self.request.is_empty() {
            return Ok(());
        }
        let texts = prompt_texts(api, body);
        for (name, re) in &self.request {
            if texts.iter().any(|t| re.is_match(t)) {
                return Err(name.clone());
            }
        }
        Ok(())
    }

    /// The name of the first response rule `text` matches.
    pub fn check_text(&self, text: &str) -> Result<(), String> {
        match self.response.iter().find(|(_, re)| re.is_match(text)) {
            Some((name, _)) => Err(name.clone()),
            None => Ok(()),
        }
    }

    /// Whether any rule reads responses.
    pub fn reads_responses(&self) -> bool {
        !self.response.is_empty()
    }
}

/// What one pattern finds and what replaces it.
struct Mask {
    regex: Regex,
    replacement: String,
    /// Card numbers: only sequences passing the Luhn check.
    luhn: bool,
    /// Phone numbers: only sequences of 7 to 15 digits.
    phone: bool,
}

/// Compiled `pii-masking`.
pub struct PiiMasker {
    masks: Vec<Mask>,
}

/// Whether the digits of `s` pass the Luhn check.
fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether `hay[start..end]` is part of a longer dotted number (an IP address such as
/// `192.168.100.200`, a version such as `10.123.4567.1`), which is no phone number.
fn in_dotted_number(hay: &str, start: usize, end: usize) -> bool {
    let b = hay.as_bytes();
    let digit_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let dot_digit_after = b.get(end) == Some(&b'.') && digit_at(end + 1);
    let digit_dot_before = start >= 2 && b[start - 1] == b'.' && digit_at(start - 2);
    dot_digit_after || digit_dot_before
}

impl PiiMasker {
    /// From the policy's params (all built-in kinds when `builtin` is absent).
    pub fn new(params: &PiiMaskingParams) -> Self {
        let kinds = params
            .builtin
            .clone()
            .unwrap_or_else(|| PiiKind::ALL.to_vec());
        let mut masks: Vec<Mask> = kinds
            .into_iter()
            .filter_map(|k| {
                Some(Mask {
                    regex: Regex::new(k.pattern()).ok()?,
                    replacement: k.mask().to_owned(),
                    luhn: k == PiiKind::Card,
                    phone: k == PiiKind::Phone,
                })
            })
            .collect();
        // Cards before phones: a card number also looks like a long phone number.
        masks.sort_by_key(|m| !m.luhn);
        for c in &params.custom {
            masks.push(Mask {
                regex: c.pattern.regex().clone(),
                replacement: c
                    .replacement
                    .clone()
                    .unwrap_or_else(|| format!("[{}]", c.name.to_uppercase())),
                luhn: false,
                phone: false,
            });
        }
        Self { masks }
    }

    /// Masks `text`; returns how many matches were replaced.
    pub fn mask_text(&self, text: &mut String) -> usize {
        let mut count = 0;
        for m in &self.masks {
            // Built only when something is replaced: most text has nothing to mask.
            let mut out: Option<String> = None;
            let mut copied = 0;
            for found in m.regex.find_iter(text) {
                let s = found.as_str();
                let digits = s.chars().filter(char::is_ascii_digit).count();
                let keep = (m.luhn && !luhn(s))
                    || (m.phone
                        && (!(7..=15).contains(&digits)
                            || in_dotted_number(text, found.start(), found.end())));
                if keep {
                    continue;
                }
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..found.start()]);
                o.push_str(&m.replacement);
                copied = found.end();
                count += 1;
            }
            if let Some(mut o) = out {
                o.push_str(&text[copied..]);
                *text = o;
            }
        }
        count
    }

    /// Masks every prompt string of a request body of `api`; returns how many matches.
    pub fn mask(&self, api: ApiFamily, body: &mut Value) -> usize {
        let mut count = 0;
        prompt_texts_mut(api, body, &mut |s| count += self.mask_text(s));
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masker(v: Value) -> PiiMasker {
        PiiMasker::new(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn prompt_text_is_found_in_each_api() {
        let openai = json!({"model": "m", "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {"url": "x"}}]}]});
        assert_eq!(prompt_texts(ApiFamily::Openai, &openai), ["sys", "part"]);
        let responses = json!({"model": "m", "instructions": "be kind", "input": "hello"});
        assert_eq!(
            prompt_texts(ApiFamily::Openai, &responses),
            ["hello", "be kind"]
        );
        let anthropic = json!({"system": [{"type": "text", "text": "sys"}], "messages": [{"role": "user", "content": "q"}]});
        assert_eq!(prompt_texts(ApiFamily::Anthropic, &anthropic), ["sys", "q"]);
        let gemini = json!({"systemInstruction": {"parts": [{"text": "sys"}]}, "contents": [{"role": "user", "parts": [{"text": "q"}]}]});
        assert_eq!(prompt_texts(ApiFamily::Gemini, &gemini), ["sys", "q"]);
        assert_eq!(prompt_text_len(ApiFamily::Gemini, &gemini), 4);
        assert_eq!(estimated_tokens(9), 3);
    }

    #[test]
    fn personal_data_is_masked_but_not_order_numbers_or_years() {
        let m = masker(json!({}));
        let mut t = "write to ann.lee@example.co.uk or +1 415-555-0132, card 4111 1111 1111 1111, order 1234567890123 in 2024".to_owned();
        assert_eq!(m.mask_text(&mut t), 3, "{t}");
        assert_eq!(
            t,
            "write to [EMAIL] or [PHONE], card [CARD], order 1234567890123 in 2024"
        );
        let m = masker(
            json!({"builtin": ["email"], "custom": [{"name": "ticket", "pattern": "TCK-\\d+"}]}),
        );
        let mut body =
            json!({"messages": [{"role": "user", "content": "a@b.io TCK-9 4111111111111111"}]});
        assert_eq!(m.mask(ApiFamily::Openai, &mut body), 2);
        assert_eq!(
            body["messages"][0]["content"],
            "[EMAIL] [TICKET] 4111111111111111"
        );
    }

    #[test]
    fn rules_name_themselves() {
        let g = RegexGuard::new(
            &serde_json::from_value(json!({"rules": [
                {"name": "pw", "pattern": "(?i)password"},
                {"name": "leak", "pattern": "secret", "appliesTo": "response"}]}))
            .unwrap(),
        );
        let body = json!({"messages": [{"role": "user", "content": "my PASSWORD"}]});
        assert_eq!(g.check_request(ApiFamily::Openai, &body), Err("pw".into()));
        assert!(g
            .check_request(
                ApiFamily::Openai,
                &json!({"messages": [{"role": "user", "content": "secret"}]})
            )
            .is_ok());
        assert_eq!(g.check_text("a secret"), Err("leak".into()));
        assert!(g.reads_responses());
        let answer = json!({"choices": [{"message": {"content": "the secret"}}]});
        assert!(response_text(ApiFamily::Openai, &answer).contains("the secret"));
        let delta =
            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}});
        assert_eq!(stream_delta_text(ApiFamily::Anthropic, &delta), Some("x"));
    }

    #[test]
    fn responses_input_items_and_legacy_prompts_are_prompt_text() {
        let responses = json!({"model": "gpt-4.1", "instructions": "be kind", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hello"},
                                         {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
            {"type": "message", "role": "assistant", "content": "again"}]});
        assert_eq!(
            prompt_texts(ApiFamily::Openai, &responses),
            ["hello", "again", "be kind"]
        );
        let legacy = json!({"model": "gpt-3.5-turbo-instruct", "prompt": ["one", "two"]});
        assert_eq!(prompt_texts(ApiFamily::Openai, &legacy), ["one", "two"]);
        assert_eq!(prompt_text_len(ApiFamily::Openai, &legacy), 6);
        // Characters, not bytes.
        let accents = json!({"messages": [{"role": "user", "content": "été"}]});
        assert_eq!(prompt_text_len(ApiFamily::Openai, &accents), 3);
        assert_eq!(estimated_tokens(0), 0);
        assert_eq!(estimated_tokens(8), 2);
        // Fields of other APIs are not read.
        assert!(prompt_texts(ApiFamily::Gemini, &legacy).is_empty());
    }

    #[test]
    fn masks_land_where_the_text_was_in_each_api() {
        let m = masker(json!({"builtin": ["email"]}));
        let mut responses = json!({"instructions": "reply to a@b.io", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "from c@d.io"}]}]});
        assert_eq!(m.mask(ApiFamily::Openai, &mut responses), 2);
        assert_eq!(responses["instructions"], "reply to [EMAIL]");
        assert_eq!(responses["input"][0]["content"][0]["text"], "from [EMAIL]");
        let mut anthropic = json!({"system": [{"type": "text", "text": "owner a@b.io"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "x@y.org"}]}]});
        assert_eq!(m.mask(ApiFamily::Anthropic, &mut anthropic), 2);
        assert_eq!(anthropic["system"][0]["text"], "owner [EMAIL]");
        assert_eq!(anthropic["messages"][0]["content"][0]["text"], "[EMAIL]");
        let mut gemini = json!({"systemInstruction": {"parts": [{"text": "a@b.io"}]},
            "contents": [{"role": "user", "parts": [{"text": "hi"}, {"text": "c@d.io and e@f.io"}]}]});
        assert_eq!(m.mask(ApiFamily::Gemini, &mut gemini), 3);
        assert_eq!(gemini["systemInstruction"]["parts"][0]["text"], "[EMAIL]");
        assert_eq!(
            gemini["contents"][0]["parts"][1]["text"],
            "[EMAIL] and [EMAIL]"
        );
        let untouched =
            json!({"model": "m", "messages": [{"role": "user", "content": "nothing here"}]});
        let mut body = untouched.clone();
        assert_eq!(m.mask(ApiFamily::Openai, &mut body), 0);
        assert_eq!(body, untouched);
    }

    #[test]
    fn phone_numbers_are_masked_but_not_years_short_numbers_or_addresses() {
        let m = masker(json!({"builtin": ["phone"]}));
        for phone in [
            "+1 415-555-0132",
            "(415) 555-0132",
            "415.555.0132",
            "+44 20 7946 0958",
            "+1 (415) 555-0132",
            "(020) 7946 0958",
        ] {
            let mut t = format!("call {phone} now");
            assert_eq!(m.mask_text(&mut t), 1, "{phone}: {t}");
            assert_eq!(t, "call [PHONE] now", "{phone}");
        }
        for not_phone in [
            "in 2024 and 2025",
            "room 555-0132",
            "code 12345",
            "host 192.168.100.200",
            "version 10.123.4567.1",
            "order 1234567890123",
        ] {
            let mut t = not_phone.to_owned();
            assert_eq!(m.mask_text(&mut t), 0, "{not_phone}: {t}");
            assert_eq!(t, not_phone);
        }
    }

    #[test]
    fn only_card_numbers_passing_luhn_are_masked() {
        let m = masker(json!({"builtin": ["card"]}));
        for card in [
            "4111111111111111",
            "5555-5555-5555-4444",
            "3782 822463 10005",
        ] {
            let mut t = format!("pay with {card}.");
            assert_eq!(m.mask_text(&mut t), 1, "{card}: {t}");
            assert_eq!(t, "pay with [CARD].");
        }
        for not_card in [
            "4111 1111 1111 1112",
            "order 1234567890123",
            "id 123456789012",
        ] {
            let mut t = not_card.to_owned();
            assert_eq!(m.mask_text(&mut t), 0, "{not_card}");
        }
        let m = masker(json!({"builtin": [], "custom": [
            {"name": "employee id", "pattern": "EMP\\d{4}", "replacement": "<redacted>"}]}));
        let mut t = "EMP1234 and EMP5678".to_owned();
        assert_eq!(m.mask_text(&mut t), 2);
        assert_eq!(t, "<redacted> and <redacted>");
    }

    #[test]
    fn answer_text_is_read_in_each_api() {
        let responses = json!({"object": "response", "output": [{"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "from responses", "annotations": []}]}]});
        assert!(response_text(ApiFamily::Openai, &responses).contains("from responses"));
        let anthropic = json!({"type": "message", "content": [{"type": "text", "text": "one"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {}}, {"type": "text", "text": "two"}]});
        assert_eq!(
            response_text(ApiFamily::Anthropic, &anthropic),
            "one\ntwo\n"
        );
        let gemini = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "gem"}]}, "finishReason": "STOP"}]});
        assert_eq!(response_text(ApiFamily::Gemini, &gemini), "gem\n");

        let role_only =
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]});
        assert_eq!(stream_delta_text(ApiFamily::Openai, &role_only), Some(""));
        let chunk = json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hel"}}]});
        assert_eq!(stream_delta_text(ApiFamily::Openai, &chunk), Some("Hel"));
        let usage_only = json!({"choices": [], "usage": {"prompt_tokens": 1}});
        assert_eq!(stream_delta_text(ApiFamily::Openai, &usage_only), None);
        let responses_delta = json!({"type": "response.output_text.delta", "item_id": "msg_1",
            "output_index": 0, "content_index": 0, "delta": "lo"});
        assert_eq!(
            stream_delta_text(ApiFamily::Openai, &responses_delta),
            Some("lo")
        );
        let gemini_chunk =
            json!({"candidates": [{"content": {"parts": [{"text": "ge"}], "role": "model"}}]});
        assert_eq!(
            stream_delta_text(ApiFamily::Gemini, &gemini_chunk),
            Some("ge")
        );
        let thinking = json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{\"a\""}});
        assert_eq!(stream_delta_text(ApiFamily::Anthropic, &thinking), None);
    }
}
