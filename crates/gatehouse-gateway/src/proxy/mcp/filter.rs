//! JSON-RPC seen by an MCP proxy: calls of tools, resources and prompts outside the proxy's
//! allow-lists are refused before they reach the server, and the lists the server returns are
//! filtered down to what the allow-lists let through, in JSON and in SSE answers alike.

use std::collections::HashMap;

use std::sync::Arc;

use gatehouse_core::policy::{glob_match, McpAuthzParams};
use gatehouse_core::spec::McpSpec;
use serde_json::{json, Value};

/// JSON-RPC's "invalid params": a call of something the proxy hides.
pub const REFUSED: i64 = -32602;
/// JSON-RPC's "parse error".
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC's "invalid request".
pub const INVALID_REQUEST: i64 = -32600;

/// What the proxy lets through (`None`: everything).
#[derive(Debug, Clone, Default)]
pub struct AllowLists {
    pub tools: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub prompts: Option<Vec<String>>,
}

fn allowed(list: &Option<Vec<String>>, name: &str) -> bool {
    list.as_ref()
        .is_none_or(|l| l.iter().any(|p| glob_match(p, name)))
}

impl AllowLists {
    /// The allow-lists of a spec.
    pub fn of(s: &McpSpec) -> Self {
        Self {
            tools: s.tools.clone(),
            resources: s.resources.clone(),
            prompts: s.prompts.clone(),
        }
    }

    /// Whether nothing is hidden.
    pub fn is_open(&self) -> bool {
        self.tools.is_none() && self.resources.is_none() && self.prompts.is_none()
    }
}

/// `mcp-authz` for one caller: the rules and the claims of the caller's token.
#[derive(Debug, Clone, Default)]
pub struct ToolGate {
    rules: Option<Arc<McpAuthzParams>>,
    claims: Value,
}

impl ToolGate {
    /// The gate of `rules` for a caller with `claims` (none without a token).
    pub fn new(rules: Option<Arc<McpAuthzParams>>, claims: Option<Value>) -> Self {
        Self {
            rules,
            claims: claims.unwrap_or(Value::Null),
        }
    }

    /// Whether any rule applies.
    pub fn is_active(&self) -> bool {
        self.rules.is_some()
    }

    /// Why the caller may not use `tool`, if it may not.
    pub fn refusal(&self, tool: &str) -> Option<String> {
        let rules = self.rules.as_ref()?;
        let held = crate::proxy::policies::jwt_auth::scopes(&self.claims);
        for rule in rules
            .rules
            .iter()
            .filter(|r| r.tools.iter().any(|p| glob_match(p, tool)))
        {
            if let Some(s) = rule
                .required_scopes
                .iter()
                .find(|s| !held.contains(&s.as_str()))
            {
                return Some(format!("tool '{tool}' needs scope '{s}'"));
            }
            for (claim, values) in &rule.claims {
                let ok = match &self.claims[claim.as_str()] {
                    Value::String(v) => values.contains(v),
                    Value::Array(items) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|v| values.iter().any(|w| w == v)),
                    Value::Number(n) => values.contains(&n.to_string()),
                    Value::Bool(b) => values.contains(&b.to_string()),
                    _ => false,
                };
                if !ok {
                    return Some(format!(
                        "tool '{tool}' needs claim '{claim}' to be one of {}",
                        values.join(", ")
                    ));
                }
            }
        }
        None
    }
}

/// A list the server returns, and the field of its items that the allow-list matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl ListKind {
    pub(super) fn of_method(method: &str) -> Option<Self> {
        Some(match method {
            "tools/list" => ListKind::Tools,
            "resources/list" => ListKind::Resources,
            "resources/templates/list" => ListKind::ResourceTemplates,
            "prompts/list" => ListKind::Prompts,
            _ => return None,
        })
    }

    /// The result's array and the key of each item matched.
    pub(super) fn fields(self) -> (&'static str, &'static str) {
        match self {
            ListKind::Tools => ("tools", "name"),
            ListKind::Resources => ("resources", "uri"),
            ListKind::ResourceTemplates => ("resourceTemplates", "uriTemplate"),
            ListKind::Prompts => ("prompts", "name"),
        }
    }

    fn list(self, a: &AllowLists) -> &Option<Vec<String>> {
        match self {
            ListKind::Tools => &a.tools,
            ListKind::Resources | ListKind::ResourceTemplates => &a.resources,
            ListKind::Prompts => &a.prompts,
        }
    }
}

/// One JSON-RPC request as the proxy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    /// The tool, resource or prompt it uses, for `tools/call`, `resources/read`,
    /// `resources/subscribe` and `prompts/get`.
    pub target: Option<String>,
    /// Why it is refused, when it is.
    pub refused: Option<String>,
}

/// What a POST body holds.
#[derive(Debug, Default)]
pub struct Inspected {
    /// Each message that is a request or notification, in order.
    pub seen: Vec<Seen>,
    /// Ids of the list requests whose answers must be filtered.
    pub lists: HashMap<String, ListKind>,
    /// The local answer when any request is refused: nothing is forwarded.
    pub refusal: Option<Value>,
}

/// Why a POST body is not JSON-RPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a JSON-RPC message or batch")]
    NotJsonRpc,
}

impl Malformed {
    /// The JSON-RPC error answering it.
    pub fn answer(&self) -> Value {
        let code = match self {
            Malformed::NotJson(_) => PARSE_ERROR,
            Malformed::NotJsonRpc => INVALID_REQUEST,
        };
        error(&Value::Null, code, &self.to_string())
    }
}

/// A JSON-RPC error answering `id`.
pub fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The key of a JSON-RPC id in the list map.
fn id_key(id: &Value) -> Option<String> {
    match id {
        Value::String(s) => Some(format!("s:{s}")),
        Value::Number(n) => Some(format!("n:{n}")),
        _ => None,
    }
}

fn check(msg: &Value, allow: &AllowLists, gate: &ToolGate) -> Seen {
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    let param = |k: &str| msg["params"][k].as_str().map(str::to_owned);
    let (target, what, list) = match method.as_str() {
        "tools/call" => (param("name"), "tool", &allow.tools),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            (param("uri"), "resource", &allow.resources)
        }
        "prompts/get" => (param("name"), "prompt", &allow.prompts),
        _ => (None, "", &None),
    };
    let refused = match &target {
        Some(t) if !allowed(list, t) => Some(format!(
            "{what} '{t}' is not available through this gateway"
        )),
        Some(t) if what == "tool" => gate.refusal(t),
        None if !what.is_empty() && (list.is_some() || (what == "tool" && gate.is_active())) => {
            Some(format!("{method} needs a {what}"))
        }
        _ => None,
    };
    Seen {
        method,
        target,
        refused,
    }
}

/// Reads a POST body: the requests it makes, the lists to filter, and a local answer when any
/// call is refused.
pub fn inspect(body: &[u8], allow: &AllowLists, gate: &ToolGate) -> Result<Inspected, Malformed> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Malformed::NotJson(e.to_string()))?;
    let (messages, batch) = match &v {
        Value::Array(items) if !items.is_empty() => (items.as_slice(), true),
        Value::Object(_) => (std::slice::from_ref(&v), false),
        _ => return Err(Malformed::NotJsonRpc),
    };
    let mut out = Inspected::default();
    let mut refusals = vec![];
    for m in messages {
        if !m.is_object() {
            return Err(Malformed::NotJsonRpc);
        }
        if m.get("method").is_none() {
            continue; // a response of the client to a server request
        }
        let seen = check(m, allow, gate);
        let id = m.get("id").cloned().unwrap_or(Value::Null);
        if let Some(why) = &seen.refused {
            refusals.push(error(&id, REFUSED, why));
        } else if let (Some(kind), Some(key)) = (ListKind::of_method(&seen.method), id_key(&id)) {
            if kind.list(allow).is_some() || (kind == ListKind::Tools && gate.is_active()) {
                out.lists.insert(key, kind);
            }
        }
        out.seen.push(seen);
    }
    if !refusals.is_empty() {
        // A batch is answered whole: the refused calls with their errors, the others with an
        // error saying they were not sent.
        let answer = if batch {
            let mut all = vec![];
            for (m, s) in messages.iter().zip(&out.seen) {
                let id = m.get("id").cloned().unwrap_or(Value::Null);
                if id.is_null() {
                    continue;
                }
                all.push(match &s.refused {
                    Some(why) => error(&id, REFUSED, why),
                    None => error(
                        &id,
                        REFUSED,
                        "not sent: another request of this batch was refused",
                    ),
                });
            }
            Value::Array(all)
        } else {
            refusals.remove(0)
        };
        out.refusal = Some(answer);
    }
    Ok(out)
}

/// Filters one JSON-RPC message answering a list request; returns whether it changed.
pub fn filter_message(
    msg: &mut Value,
    lists: &HashMap<String, ListKind>,
    allow: &AllowLists,
    gate: &ToolGate,
) -> bool {
    let Some(kind) = msg.get("id").and_then(id_key).and_then(|k| lists.get(&k)) else {
        return false;
    };
    let (field, key) = kind.fields();
    let list = kind.list(allow);
    let Some(items) = msg
        .pointer_mut(&format!("/result/{field}"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = items.len();
    items.retain(|item| {
        item[key].as_str().is_some_and(|n| {
            allowed(list, n) && (*kind != ListKind::Tools || gate.refusal(n).is_none())
        })
    });
    items.len() != before
}

/// Filters a JSON answer (one message or a batch); the new body when anything changed.
pub fn filter_json(
    body: &[u8],
    lists: &HashMap<String, ListKind>,
    allow: &AllowLists,
    gate: &ToolGate,
) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let changed = match &mut v {
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |c, m| filter_message(m, lists, allow, gate) | c),
        m => filter_message(m, lists, allow, gate),
    };
    changed.then(|| v.to_string().into_bytes())
}

/// Filters the data of one SSE event; the new data when it changed.
pub fn filter_event_data(
    data: &str,
    lists: &HashMap<String, ListKind>,
    allow: &AllowLists,
    gate: &ToolGate,
) -> Option<String> {
    if !data.starts_with('{') && !data.starts_with('[') {
        return None;
    }
    filter_json(data.as_bytes(), lists, allow, gate).and_then(|b| String::from_utf8(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> ToolGate {
        ToolGate::default()
    }

    fn allow() -> AllowLists {
        AllowLists {
            tools: Some(vec!["add".into(), "search_*".into()]),
            resources: Some(vec!["res://public/*".into()]),
            prompts: None,
        }
    }

    #[test]
    fn hidden_calls_are_refused_naming_them() {
        let a = allow();
        let ok = inspect(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_web","arguments":{}}}"#, &a, &open()).unwrap();
        assert!(ok.refusal.is_none());
        assert_eq!(ok.seen[0].target.as_deref(), Some("search_web"));
        let no = inspect(
            br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"delete_all"}}"#,
            &a,
            &open(),
        )
        .unwrap();
        let r = no.refusal.unwrap();
        assert_eq!(r["id"], "x");
        assert_eq!(r["error"]["code"], REFUSED);
        assert!(r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'delete_all'"));
        let res = inspect(br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"res://private/x"}}"#, &a, &open()).unwrap();
        assert!(res.refusal.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("res://private/x"));
        // Prompts are open.
        assert!(inspect(
            br#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"any"}}"#,
            &a,
            &open()
        )
        .unwrap()
        .refusal
        .is_none());
        // Notifications and other methods pass.
        assert!(inspect(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &a,
            &open()
        )
        .unwrap()
        .refusal
        .is_none());
    }

    #[test]
    fn a_batch_with_a_refused_call_is_answered_whole() {
        let a = allow();
        let b = inspect(br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm"}},{"jsonrpc":"2.0","method":"notifications/x"}]"#, &a, &open()).unwrap();
        let r = b.refusal.unwrap();
        let items = r.as_array().unwrap();
        assert_eq!(items.len(), 2, "notifications get no answer");
        assert!(items[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not sent"));
        assert!(items[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'rm'"));
    }

    #[test]
    fn tools_are_gated_by_the_callers_token() {
        let rules: McpAuthzParams = serde_json::from_value(json!({"rules": [
            {"tools": ["delete_*"], "requiredScopes": ["admin"]},
            {"tools": ["search_*"], "claims": {"groups": ["staff"]}}]}))
        .unwrap();
        let rules = Some(Arc::new(rules));
        let admin = ToolGate::new(
            rules.clone(),
            Some(json!({"scope": "admin", "groups": ["staff"]})),
        );
        let guest = ToolGate::new(
            rules.clone(),
            Some(json!({"scope": "read", "groups": ["guests"]})),
        );
        let anonymous = ToolGate::new(rules, None);
        assert_eq!(admin.refusal("delete_all"), None);
        assert_eq!(admin.refusal("search_docs"), None);
        assert!(guest
            .refusal("delete_all")
            .unwrap()
            .contains("scope 'admin'"));
        assert!(guest.refusal("search_docs").unwrap().contains("'groups'"));
        assert!(anonymous.refusal("delete_all").is_some());
        assert_eq!(
            anonymous.refusal("add"),
            None,
            "tools no rule covers are open"
        );
        let open_lists = AllowLists::default();
        let call =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all"}}"#;
        assert!(inspect(call, &open_lists, &admin)
            .unwrap()
            .refusal
            .is_none());
        let r = inspect(call, &open_lists, &guest).unwrap().refusal.unwrap();
        assert!(r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'delete_all'"));
        let list = inspect(
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            &open_lists,
            &guest,
        )
        .unwrap();
        let answer = br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"add"},{"name":"delete_all"},{"name":"search_docs"}]}}"#;
        let out: Value =
            serde_json::from_slice(&filter_json(answer, &list.lists, &open_lists, &guest).unwrap())
                .unwrap();
        assert_eq!(
            out["result"]["tools"],
            json!([{"name": "add"}]),
            "left out of this caller's list"
        );
    }

    #[test]
    fn malformed_bodies_are_named() {
        let a = allow();
        assert!(matches!(
            inspect(b"{nope", &a, &open()),
            Err(Malformed::NotJson(_))
        ));
        assert_eq!(
            inspect(b"[]", &a, &open()).unwrap_err(),
            Malformed::NotJsonRpc
        );
        assert_eq!(
            inspect(b"42", &a, &open()).unwrap_err(),
            Malformed::NotJsonRpc
        );
        assert_eq!(
            Malformed::NotJsonRpc.answer()["error"]["code"],
            INVALID_REQUEST
        );
    }

    #[test]
    fn lists_are_filtered_in_json_and_sse_answers() {
        let a = allow();
        let seen = inspect(br#"[{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"p2"}},{"jsonrpc":"2.0","id":"r","method":"resources/list"}]"#, &a, &open()).unwrap();
        assert_eq!(seen.lists.len(), 2);
        let answer = br#"[{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"add"},{"name":"delete_all"},{"name":"search_docs"}],"nextCursor":"p3"}},{"jsonrpc":"2.0","id":"r","result":{"resources":[{"uri":"res://public/a"},{"uri":"res://private/b"}]}}]"#;
        let out: Value =
            serde_json::from_slice(&filter_json(answer, &seen.lists, &a, &open()).unwrap())
                .unwrap();
        let names: Vec<&str> = out[0]["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["add", "search_docs"]);
        assert_eq!(out[0]["result"]["nextCursor"], "p3", "paging is kept");
        assert_eq!(out[1]["result"]["resources"].as_array().unwrap().len(), 1);
        // Another id's answer is left alone.
        assert!(filter_json(
            br#"{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"x"}]}}"#,
            &seen.lists,
            &a,
            &open()
        )
        .is_none());
        let data = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"rm"},{"name":"add"}]}}"#;
        let filtered: Value =
            serde_json::from_str(&filter_event_data(data, &seen.lists, &a, &open()).unwrap())
                .unwrap();
        assert_eq!(filtered["result"]["tools"], json!([{"name": "add"}]));
        assert!(filter_event_data(
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
            &seen.lists,
            &a,
            &open()
        )
        .is_none());
    }
}
