//! Reading artifact documents written in YAML.

use serde_json::Value;

/// Parses YAML into a JSON value.
///
/// Operation paths such as `/items/{id}` are often written unquoted inside flow mappings
/// (`- { method: GET, path: /items/{id} }`), where strict YAML reads the braces as syntax. When
/// a document fails to parse, such path values are quoted and the parse is tried once more.
/// On failure the error is the first parse's: it points at what the author wrote.
///
/// A JSON document is read as JSON first (what JSON accepts, YAML reads the same, except): JSON allows characters YAML refuses (control
/// characters in strings), and a JSON document must read the same whichever reader a tool picks.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_norway::Error> {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    match serde_norway::from_slice::<Value>(bytes) {
        Ok(v) => Ok(v),
        Err(first) => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return Err(first);
            };
            let quoted = quote_brace_paths(text);
            if quoted == text {
                return Err(first);
            }
            serde_norway::from_str::<Value>(&quoted).map_err(|_| first)
        }
    }
}

fn quote_brace_paths(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE
        .get_or_init(|| regex::Regex::new(r"(\bpath:[ \t]*)(/[^\s,'\x22]*)").expect("valid regex"));
    re.replace_all(text, |caps: &regex::Captures| {
        let mut value = caps[2].to_owned();
        let mut tail = String::new();
        while value.ends_with('}') && value.matches('}').count() > value.matches('{').count() {
            value.pop();
            tail.insert(0, '}');
        }
        if value.contains('{') {
            format!("{}\"{}\"{}", &caps[1], value, tail)
        } else {
            caps[0].to_owned()
        }
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contract_example_with_unquoted_brace_paths() {
        let doc = "spec:\n  operations:\n    - { method: GET, path: /items/{id} }\n    - {method: POST, path: /items/{id}/parts/{part}}\n    - { method: GET, path: /plain }\n  other: '{x}'\n";
        let v = from_slice(doc.as_bytes()).unwrap();
        assert_eq!(v["spec"]["operations"][0]["path"], "/items/{id}");
        assert_eq!(
            v["spec"]["operations"][1]["path"],
            "/items/{id}/parts/{part}"
        );
        assert_eq!(v["spec"]["operations"][2]["path"], "/plain");
        assert_eq!(v["spec"]["other"], "{x}");
    }

    #[test]
    fn block_style_and_errors() {
        let v = from_slice(b"a:\n  path: /items/{id}\n").unwrap();
        assert_eq!(v["a"]["path"], "/items/{id}");
        assert!(from_slice(b"a: [1, 2\n").is_err());
    }
}
