//! How an MCP proxy over several servers names their things: a tool or prompt `add` of server
//! `math` is `math_add`; a resource `file:///a` of server `docs` is `docs+file:///a` (the name
//! joins the URI's scheme, so the URI stays a valid URI). List pages across servers are walked
//! with one cursor that holds each server's own.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::filter::ListKind;

/// `<server>_<name>`, a tool's or prompt's name as clients see it.
pub fn prefix_name(server: &str, name: &str) -> String {
    format!("{server}_{name}")
}

/// `<server>+<uri>`, a resource URI (or URI template) as clients see it.
pub fn prefix_uri(server: &str, uri: &str) -> String {
    format!("{server}+{uri}")
}

/// The server and its own name of a prefixed tool or prompt name. Server names hold no `_`,
/// so the first one ends the prefix.
pub fn split_name(name: &str) -> Option<(&str, &str)> {
    name.split_once('_')
        .filter(|(s, n)| !s.is_empty() && !n.is_empty())
}

/// The server and its own URI of a prefixed resource URI. Schemes are case-insensitive and
/// some clients lowercase them; server names are lowercase.
pub fn split_uri(uri: &str) -> Option<(String, &str)> {
    let (server, rest) = uri.split_once('+')?;
    (!server.is_empty() && !rest.is_empty() && !server.contains(':'))
        .then(|| (server.to_ascii_lowercase(), rest))
}

/// Prefixes the names in one page of a list answer of `server`.
pub fn prefix_items(kind: ListKind, server: &str, items: &mut [Value]) {
    let (_, key) = kind.fields();
    for item in items {
        if let Some(Value::String(n)) = item.get_mut(key) {
            *n = match kind {
                ListKind::Tools | ListKind::Prompts => prefix_name(server, n),
                ListKind::Resources | ListKind::ResourceTemplates => prefix_uri(server, n),
            };
        }
    }
}

/// Prefixes the URIs a `resources/read` result names.
pub fn prefix_contents(server: &str, result: &mut Value) {
    if let Some(items) = result.get_mut("contents").and_then(Value::as_array_mut) {
        for item in items {
            if let Some(Value::String(u)) = item.get_mut("uri") {
                *u = prefix_uri(server, u);
            }
        }
    }
}

/// The cursor of the next page: each server with more to list, and its own cursor.
pub fn encode_cursor(next: &BTreeMap<String, String>) -> Option<String> {
    (!next.is_empty()).then(|| URL_SAFE_NO_PAD.encode(serde_json::to_vec(next).unwrap_or_default()))
}

/// The servers' cursors a client's cursor holds; `None` for one this proxy did not make.
pub fn decode_cursor(cursor: &str) -> Option<BTreeMap<String, String>> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let next: BTreeMap<String, String> = serde_json::from_slice(&raw).ok()?;
    (!next.is_empty()).then_some(next)
}

/// The id a server's request to the client (sampling, elicitation, roots) gets on its way
/// out: the server's name and its own id, so the client's answer finds its way back.
pub fn prefix_request_id(server: &str, id: &Value) -> Value {
    Value::String(format!("{server}:{id}"))
}

/// The server and its own id of a client's answer to a server's request.
pub fn split_request_id(id: &Value) -> Option<(&str, Value)> {
    let (server, own) = id.as_str()?.split_once(':')?;
    Some((server, serde_json::from_str(own).ok()?))
}

/// A server's message on its way to the client: its requests' ids and the URIs of resource
/// notifications prefixed; the new message when it changed.
pub fn prefix_server_message(server: &str, data: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(data).ok()?;
    let method = v.get("method")?.as_str()?.to_owned();
    if let Some(id) = v.get_mut("id") {
        *id = prefix_request_id(server, id);
    } else if method == "notifications/resources/updated" {
        let uri = v.pointer_mut("/params/uri")?;
        *uri = Value::String(prefix_uri(server, uri.as_str()?));
    } else {
        return None;
    }
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_uris_round_trip() {
        let n = prefix_name("math", "add_two");
        assert_eq!(n, "math_add_two");
        assert_eq!(split_name(&n), Some(("math", "add_two")));
        assert_eq!(split_name("plain"), None);
        assert_eq!(split_name("_x"), None);
        let u = prefix_uri("docs", "file:///a+b.txt");
        assert_eq!(u, "docs+file:///a+b.txt");
        assert_eq!(split_uri(&u), Some(("docs".into(), "file:///a+b.txt")));
        assert_eq!(
            split_uri("Docs+file:///a"),
            Some(("docs".into(), "file:///a"))
        );
        assert_eq!(
            split_uri("file:///a+b"),
            None,
            "no prefix before the scheme"
        );
    }

    #[test]
    fn list_items_get_their_servers_prefix() {
        let mut tools = vec![json!({"name": "add"}), json!({"title": "no name"})];
        prefix_items(ListKind::Tools, "math", &mut tools);
        assert_eq!(tools[0]["name"], "math_add");
        let mut templates = vec![json!({"uriTemplate": "file:///{path}"})];
        prefix_items(ListKind::ResourceTemplates, "docs", &mut templates);
        assert_eq!(templates[0]["uriTemplate"], "docs+file:///{path}");
        let mut read = json!({"contents": [{"uri": "file:///a", "text": "x"}]});
        prefix_contents("docs", &mut read);
        assert_eq!(read["contents"][0]["uri"], "docs+file:///a");
    }

    #[test]
    fn server_requests_and_resource_notifications_are_prefixed() {
        let out = prefix_server_message(
            "docs",
            r#"{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{}}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["id"], "docs:7");
        assert_eq!(split_request_id(&v["id"]), Some(("docs", json!(7))));
        let s = prefix_request_id("git", &json!("a:b"));
        assert_eq!(split_request_id(&s), Some(("git", json!("a:b"))));
        let out = prefix_server_message(
            "docs",
            r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}"#,
        )
        .unwrap();
        assert!(out.contains("docs+file:///a"));
        for untouched in [
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            "not json",
        ] {
            assert_eq!(prefix_server_message("docs", untouched), None);
        }
    }

    #[test]
    fn cursors_hold_each_servers_own() {
        let next = BTreeMap::from([("docs".to_owned(), "p2".to_owned())]);
        let c = encode_cursor(&next).unwrap();
        assert_eq!(decode_cursor(&c), Some(next));
        assert_eq!(encode_cursor(&BTreeMap::new()), None);
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("{}")), None);
    }
}
