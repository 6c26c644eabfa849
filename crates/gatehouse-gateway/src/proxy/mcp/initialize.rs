//! `initialize` of an MCP proxy over several servers, answered by the gateway: every server is
//! initialized with the client's parameters, their capabilities merged, and the client given
//! one sealed session id that carries every server's session.

use std::collections::BTreeMap;

use futures::future::join_all;
use serde_json::{json, Map, Value};

use super::exchange::{CallError, Exchange, Server, SESSION_ID};
use super::session::{ServerSession, Session};

/// The protocol version assumed when a client names none.
const DEFAULT_VERSION: &str = "2025-03-26";

/// A server that answered `initialize`.
pub struct Opened {
    pub session: ServerSession,
    pub result: Value,
}

/// Initializes `server` with the client's request `msg` and tells it the client is ready.
pub async fn open(ex: &Exchange<'_>, server: &Server, msg: &Value) -> Result<Opened, CallError> {
    let (answer, headers) = ex.call(server, None, msg).await?;
    let result = answer.get("result").cloned().ok_or(CallError::NoAnswer)?;
    let requested = msg["params"]["protocolVersion"]
        .as_str()
        .unwrap_or(DEFAULT_VERSION);
    let session = ServerSession {
        id: headers
            .get(&SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        version: result["protocolVersion"]
            .as_str()
            .unwrap_or(requested)
            .to_owned(),
    };
    let ready = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    ex.notify(server, Some(&session), &ready).await?;
    Ok(Opened { session, result })
}

/// The capabilities of several servers as one: a feature any offers, with each flag
/// (`listChanged`, `subscribe`) true when any server's is.
pub fn merge_capabilities<'a>(results: impl Iterator<Item = &'a Value>) -> Value {
    let mut caps = Map::new();
    for r in results {
        let Some(c) = r["capabilities"].as_object() else {
            continue;
        };
        for (feature, flags) in c {
            if !matches!(
                feature.as_str(),
                "tools" | "prompts" | "resources" | "logging" | "completions"
            ) {
                continue;
            }
            let merged = caps.entry(feature.clone()).or_insert_with(|| json!({}));
            if let (Some(m), Some(flags)) = (merged.as_object_mut(), flags.as_object()) {
                for (flag, v) in flags {
                    if v == &Value::Bool(true) {
                        m.insert(flag.clone(), Value::Bool(true));
                    } else {
                        m.entry(flag.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
    }
    Value::Object(caps)
}

/// The session and the `initialize` result the client gets, from the servers that answered;
/// `None` when none did.
pub fn answer(
    opened: &BTreeMap<String, Opened>,
    name: &str,
    version: &str,
) -> Option<(Session, Value)> {
    // The version the client gets: the servers' when they agree, else the oldest of theirs
    // (each server is spoken to in its own).
    let protocol = opened
        .values()
        .map(|o| o.session.version.as_str())
        .min()?
        .to_owned();
    let mut result = json!({
        "protocolVersion": protocol,
        "capabilities": merge_capabilities(opened.values().map(|o| &o.result)),
        "serverInfo": {"name": name, "version": version},
    });
    let instructions: Vec<String> = opened
        .iter()
        .filter_map(|(n, o)| {
            o.result["instructions"]
                .as_str()
                .map(|i| format!("{n} (tools, prompts and resources prefixed {n}_): {i}"))
        })
        .collect();
    if !instructions.is_empty() {
        result["instructions"] = Value::String(instructions.join("\n\n"));
    }
    let session = Session {
        version: protocol,
        servers: opened
            .iter()
            .map(|(n, o)| (n.clone(), o.session.clone()))
            .collect(),
    };
    Some((session, result))
}

/// Opens every server; those that answered, and why the others did not.
pub async fn open_all(
    ex: &Exchange<'_>,
    servers: &[Server],
    msg: &Value,
) -> (BTreeMap<String, Opened>, Vec<String>) {
    let results = join_all(servers.iter().map(|s| open(ex, s, msg))).await;
    let mut opened = BTreeMap::new();
    let mut failed = vec![];
    for (s, r) in servers.iter().zip(results) {
        match r {
            Ok(o) => {
                opened.insert(s.name.to_string(), o);
            }
            Err(e) => {
                tracing::warn!(server = %s.name, error = %e, "an MCP server did not initialize; the session goes on without it");
                failed.push(format!("{} {e}", s.name));
            }
        }
    }
    (opened, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(version: &str, result: Value) -> Opened {
        Opened {
            session: ServerSession {
                id: Some("s".into()),
                version: version.into(),
            },
            result,
        }
    }

    #[test]
    fn capabilities_merge_and_the_oldest_version_wins() {
        let servers = BTreeMap::from([
            (
                "docs".to_owned(),
                opened(
                    "2025-06-18",
                    json!({"capabilities": {"resources": {"subscribe": true}, "tools": {"listChanged": false}},
                           "instructions": "Search the docs."}),
                ),
            ),
            (
                "math".to_owned(),
                opened(
                    "2025-03-26",
                    json!({"capabilities": {"tools": {"listChanged": true}, "experimental": {"x": {}}}}),
                ),
            ),
        ]);
        let (session, result) = answer(&servers, "tools", "1.0").unwrap();
        assert_eq!(result["protocolVersion"], "2025-03-26");
        assert_eq!(
            result["capabilities"],
            json!({"resources": {"subscribe": true}, "tools": {"listChanged": true}})
        );
        assert_eq!(result["serverInfo"]["name"], "tools");
        assert!(result["instructions"]
            .as_str()
            .unwrap()
            .starts_with("docs (tools"));
        assert_eq!(session.servers["docs"].version, "2025-06-18");
        assert_eq!(session.servers.len(), 2);
        assert!(answer(&BTreeMap::new(), "t", "1").is_none());
    }
}
