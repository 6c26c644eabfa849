//! The route table against a simple reference matcher, over generated contexts and paths: the
//! artifact a path reaches is the one whose context is its longest segment-aligned prefix; and
//! the MCP filter takes any body without panicking.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::proxy::mcp::filter::{self, AllowLists, ListKind, ToolGate};

fn rest(id: &str, context: &str) -> StoredArtifact {
    super::tests::art(
        id,
        json!({"apiVersion": "gatehouse.dev/v1", "kind": "RestApi", "metadata": {"name": id},
            "spec": {"displayName": id, "version": "v1", "context": context,
                     "upstream": {"main": {"url": "http://127.0.0.1:9"}}}}),
    )
}

/// The reference: the context that is the path itself or a prefix of it followed by `/`, the
/// longest such.
fn reference<'c>(contexts: &'c [String], path: &str) -> Option<&'c str> {
    contexts
        .iter()
        .filter(|c| path == c.as_str() || path.starts_with(&format!("{c}/")))
        .max_by_key(|c| c.len())
        .map(String::as_str)
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("ab".to_owned()),
        Just("v1".to_owned())
    ]
}

fn context() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..4).prop_map(|s| format!("/{}", s.join("/")))
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![segment(), Just(String::new()), Just("x".to_owned())],
        0..6,
    )
    .prop_map(|s| format!("/{}", s.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_path_reaches_the_longest_matching_context(
        contexts in prop::collection::btree_set(context(), 1..8),
        paths in prop::collection::vec(path(), 1..16),
    ) {
        let contexts: Vec<String> = contexts.into_iter().collect();
        let arts: Vec<StoredArtifact> = contexts
            .iter()
            .enumerate()
            .map(|(i, c)| rest(&format!("api-{i}"), c))
            .collect();
        let table = RouteTable::compile(&arts, &[], &RateLimiters::default());
        prop_assert_eq!(table.len(), contexts.len());
        for p in &paths {
            let got = table.find(p).map(|(e, rest)| {
                let i: usize = e.handle.trim_start_matches("api-").parse().unwrap();
                // The rest is what follows the context.
                assert_eq!(format!("{}{rest}", contexts[i]), *p);
                contexts[i].as_str()
            });
            prop_assert_eq!(got, reference(&contexts, p), "path {}", p);
        }
    }

    #[test]
    fn the_mcp_filter_takes_any_body(body in prop::collection::vec(any::<u8>(), 0..300), text in ".{0,200}") {
        let allow = AllowLists { tools: Some(vec!["get_*".into()]), resources: None, prompts: Some(vec![]) };
        let gate = ToolGate::default();
        let lists: HashMap<String, ListKind> = [("1".to_owned(), ListKind::Tools)].into_iter().collect();
        let _ = filter::inspect(&body, &allow, &gate);
        let _ = filter::inspect(text.as_bytes(), &allow, &gate);
        let _ = filter::filter_json(&body, &lists, &allow, &gate);
        let _ = filter::filter_event_data(&text, &lists, &allow, &gate);
    }

    #[test]
    fn the_mcp_filter_takes_any_json_rpc_shape(method in "[a-z/]{0,16}", name in ".{0,12}", id in any::<i64>()) {
        let allow = AllowLists { tools: Some(vec!["get_*".into()]), resources: Some(vec!["file:*".into()]), prompts: None };
        let gate = ToolGate::default();
        for body in [
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {"name": name, "uri": name}}),
            json!([{"jsonrpc": "2.0", "id": id, "method": method}, {"jsonrpc": "2.0", "method": method, "params": [name]}]),
            json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": name}, {"name": 5}], "resources": "x"}}),
        ] {
            let bytes = body.to_string().into_bytes();
            let _ = filter::inspect(&bytes, &allow, &gate);
            let lists: HashMap<String, ListKind> = [(id.to_string(), ListKind::Tools)].into_iter().collect();
            let _ = filter::filter_json(&bytes, &lists, &allow, &gate);
        }
    }
}
