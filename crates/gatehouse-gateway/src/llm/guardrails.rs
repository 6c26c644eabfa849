//! Guardrails over the text of prompts and answers: where that text lives in each API's JSON,
//! `regex-guardrail` rules, `pii-masking` and the size of a prompt.

use std::borrow::Cow;

use gatehouse_core::llm::ApiFamily;
use gatehouse_core::policy::{PiiKind, PiiMaskingParams, RegexGuardrailParams};
use regex::Regex;
use serde_json::Value;

/// Calls `f` on each string of a content value: a string, or a list of strings and of parts
/// with `text` (or a nested `content`).
fn content_mut(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => f(s),
                    Value::Object(o) => {
                        if let Some(Value::String(s)) = o.get_mut("text") {
                            f(s);
                        } else if let Some(c) = o.get_mut("content") {
                            content_mut(c, f);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Calls `f` on every string of prompt text in a request body of `api`.
pub fn prompt_texts_mut(api: ApiFamily, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match api {
        ApiFamily::Openai => {
            if let Some(Value::Array(msgs)) = body.get_mut("messages") {
                for m in msgs {
                    if let Some(c) = m.get_mut("content") {
                        content_mut(c, f);
                    }
                }
            }
            for field in ["input", "instructions", "prompt"] {
                if let Some(v) = body.get_mut(field) {
                    content_mut(v, f);
                }
            }
        }
        ApiFamily::Anthropic => {
            if let Some(s) = body.get_mut("system") {
                content_mut(s, f);
            }
            if let Some(Value::Array(msgs)) = body.get_mut("messages") {
                for m in msgs {
                    if let Some(c) = m.get_mut("content") {
                        content_mut(c, f);
                    }
                }
            }
        }
        ApiFamily::Gemini => {
            let mut parts = |holder: &mut Value| {
                if let Some(Value::Array(ps)) = holder.get_mut("parts") {
                    for p in ps {
                        if let Some(Value::String(s)) = p.get_mut("text") {
                            f(s);
                        }
                    }
                }
            };
            if let Some(si) = body.get_mut("systemInstruction") {
                parts(si);
            }
            if let Some(Value::Array(contents)) = body.get_mut("contents") {
                for c in contents {
                    parts(c);
                }
            }
        }
    }
}

/// Every string of prompt text in a request body of `api`.
pub fn prompt_texts(api: ApiFamily, body: &Value) -> Vec<String> {
    // The mutable walk on a copy keeps one definition of where prompt text lives.
    let mut copy = body.clone();
    let mut out = vec![];
    prompt_texts_mut(api, &mut copy, &mut |s| out.push(std::mem::take(s)));
    out
}

/// Characters of prompt text in a request body of `api`.
pub fn prompt_text_len(api: ApiFamily, body: &Value) -> usize {
    prompt_texts(api, body)
        .iter()
        .map(|s| s.chars().count())
        .sum()
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
            let replaced = m.regex.replace_all(text, |caps: &regex::Captures| {
                let found = &caps[0];
                let digits = found.chars().filter(char::is_ascii_digit).count();
                let keep = (m.luhn && !luhn(found)) || (m.phone && !(7..=15).contains(&digits));
                if keep {
                    found.to_owned()
                } else {
                    count += 1;
                    m.replacement.clone()
                }
            });
            if let Cow::Owned(s) = replaced {
                *text = s;
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
}
