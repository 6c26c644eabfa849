//! Hostile input for the parsers every document goes through: arbitrary JSON values as specs
//! and documents, arbitrary bytes as YAML, arbitrary strings as references. Nothing panics, and
//! what is accepted reads back the same.

use proptest::prelude::*;
use serde_json::{json, Value};

use gatehouse_core::references::{self, Piece};
use gatehouse_core::spec::ArtifactSpec;
use gatehouse_core::{ArtifactDocument, ArtifactKind};

/// Arbitrary JSON, with keys drawn from the specs' own field names so that values reach the
/// validators, not only the first unknown-field check.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("displayName".to_owned()),
        Just("context".to_owned()),
        Just("version".to_owned()),
        Just("upstream".to_owned()),
        Just("main".to_owned()),
        Just("url".to_owned()),
        Just("urls".to_owned()),
        Just("operations".to_owned()),
        Just("method".to_owned()),
        Just("path".to_owned()),
        Just("policies".to_owned()),
        Just("name".to_owned()),
        Just("params".to_owned()),
        Just("template".to_owned()),
        Just("auth".to_owned()),
        Just("provider".to_owned()),
        Just("maxRequestBody".to_owned()),
        "[a-zA-Z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        "/[a-z{}$*]{0,12}".prop_map(Value::String),
        "https?://[a-z0-9.:]{0,16}/?".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn kind() -> impl Strategy<Value = ArtifactKind> {
    prop_oneof![
        Just(ArtifactKind::RestApi),
        Just(ArtifactKind::LlmProvider),
        Just(ArtifactKind::LlmProxy),
        Just(ArtifactKind::Mcp),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_spec_is_parsed_or_refused_never_panics(kind in kind(), v in json_value()) {
        if let Ok(spec) = ArtifactSpec::parse(kind, v) {
            // What is accepted reads back the same.
            let again = ArtifactSpec::parse(kind, spec.to_value());
            prop_assert!(again.is_ok(), "{:?}", again.err());
        }
    }

    #[test]
    fn any_document_is_parsed_or_refused_never_panics(kind in kind(), spec in json_value(), name in ".{0,12}") {
        let doc = json!({"apiVersion": gatehouse_core::API_VERSION, "kind": kind.as_str(),
                          "metadata": {"name": name}, "spec": spec});
        if let Ok(d) = ArtifactDocument::from_value(doc) {
            prop_assert_eq!(ArtifactDocument::from_value(d.to_value()).ok(), Some(d));
        }
    }

    #[test]
    fn any_bytes_as_yaml_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = gatehouse_core::yaml::from_slice(&bytes);
    }

    #[test]
    fn json_text_reads_the_same_as_yaml(v in json_value()) {
        // JSON is YAML: a JSON body and the same as YAML are one document. (Floats may be
        // written differently, so they are compared as numbers.)
        let text = serde_json::to_string(&v).unwrap();
        let read = gatehouse_core::yaml::from_slice(text.as_bytes());
        prop_assert!(read.is_ok(), "{text}: {:?}", read.err());
        let back = read.unwrap();
        prop_assert!(same(&v, &back), "{v} != {back}");
    }

    #[test]
    fn references_split_and_join_back(s in ".{0,40}") {
        if let Ok(pieces) = references::parse(&s) {
            // Pieces put back together give the text again (references re-spelled).
            let joined: String = pieces.iter().map(|p| match p {
                Piece::Text(t) => (*t).to_owned(),
                Piece::Ref(r) => format!("<{r}>"),
            }).collect();
            if !s.contains("{{") {
                prop_assert_eq!(joined, s);
            }
        }
    }

    #[test]
    fn references_in_any_value_are_found_or_refused(v in json_value()) {
        let _ = references::find(&v);
        let _ = references::resolve(&v, &|_| Some("x".to_owned()));
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
