//! Prices of LLM models in US dollars per million tokens, for `gatehouse_llm_cost_usd_total`.
//! The built-in table holds published list prices of common models as defaults; operators
//! override or extend it with `--llm-pricing` (a JSON file), since prices change and contracts
//! differ.

use std::collections::HashMap;

use serde::Deserialize;

/// The price of one model.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per million prompt (input) tokens.
    pub input: f64,
    /// USD per million completion (output) tokens.
    pub output: f64,
}

/// Prices by model name.
#[derive(Debug, Clone, Default)]
pub struct Pricing {
    by_model: HashMap<String, Price>,
}

/// Defaults: list prices per million tokens (input, output) as published by the providers.
const BUILTIN: [(&str, f64, f64); 16] = [
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-4.1-nano", 0.1, 0.4),
    ("o3-mini", 1.1, 4.4),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-opus-4", 15.0, 75.0),
    ("gemini-1.5-pro", 1.25, 5.0),
    ("gemini-1.5-flash", 0.075, 0.3),
    ("gemini-2.0-flash", 0.1, 0.4),
    ("mistral-large", 2.0, 6.0),
    ("mistral-small", 0.1, 0.3),
    ("mistral-medium", 0.4, 2.0),
];

impl Pricing {
    /// The built-in defaults.
    pub fn builtin() -> Self {
        Self {
            by_model: BUILTIN
                .iter()
                .map(|(m, input, output)| {
                    (
                        (*m).to_owned(),
                        Price {
                            input: *input,
                            output: *output,
                        },
                    )
                })
                .collect(),
        }
    }

    /// `self` with the prices of `json` (`{"model": {"input": 2.5, "output": 10}}`) added or
    /// replacing the defaults.
    pub fn with_overrides(mut self, json: &str) -> Result<Self, String> {
        let extra: HashMap<String, Price> = serde_json::from_str(json).map_err(|e| {
            format!("expected {{\"model\": {{\"input\": <USD per million>, \"output\": <USD per million>}}}}: {e}")
        })?;
        for (model, p) in &extra {
            if !(p.input >= 0.0 && p.output >= 0.0 && p.input.is_finite() && p.output.is_finite()) {
                return Err(format!("prices of '{model}' must be zero or more"));
            }
        }
        self.by_model.extend(extra);
        Ok(self)
    }

    /// The price of `model`: its own, else that of the longest name it extends with `-`
    /// (`gpt-4o-2024-08-06` is priced as `gpt-4o`).
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.by_model.get(model) {
            return Some(*p);
        }
        self.by_model
            .iter()
            .filter(|(name, _)| {
                model.len() > name.len()
                    && model.starts_with(name.as_str())
                    && model.as_bytes()[name.len()] == b'-'
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    /// What `prompt` and `completion` tokens of `model` cost, in USD.
    pub fn cost(&self, model: &str, prompt: u64, completion: u64) -> Option<f64> {
        let p = self.price(model)?;
        Some((prompt as f64 * p.input + completion as f64 * p.output) / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_priced_as_their_model_and_overrides_win() {
        let p = Pricing::builtin();
        assert_eq!(p.cost("gpt-4o", 1_000_000, 0), Some(2.5));
        assert_eq!(p.price("gpt-4o-2024-08-06"), p.price("gpt-4o"));
        assert_eq!(p.price("gpt-4o-mini-2024-07-18"), p.price("gpt-4o-mini"));
        assert_eq!(p.price("gpt-4oo"), None);
        assert_eq!(p.cost("unknown-model", 10, 10), None);
        let p = p
            .with_overrides(
                r#"{"gpt-4o": {"input": 1, "output": 2}, "local": {"input": 0, "output": 0}}"#,
            )
            .unwrap();
        assert_eq!(p.cost("gpt-4o", 1_000_000, 1_000_000), Some(3.0));
        assert_eq!(p.cost("local", 5, 5), Some(0.0));
        assert!(Pricing::builtin()
            .with_overrides(r#"{"x": {"input": -1, "output": 0}}"#)
            .is_err());
        assert!(Pricing::builtin().with_overrides("[1]").is_err());
    }
}
