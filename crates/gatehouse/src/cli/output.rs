//! How commands print what the platform answered: tables for people, JSON or YAML for scripts.

use clap::ValueEnum;
use serde_json::Value;

use gatehouse_client::{ApiKey, Gateway};

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// Prints a resource or a list of them (`{"list": [...]}`) as the platform wrote it.
pub fn resources(value: &Value, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Yaml => print!("{}", serde_norway::to_string(value)?),
        Format::Table => resource_table(value),
    }
    Ok(())
}

/// One row per resource: its handle, display name, and its context (artifacts) or whether it
/// is connected (gateways).
fn resource_table(value: &Value) {
    let rows: Vec<&Value> = match value.get("list") {
        Some(Value::Array(list)) => list.iter().collect(),
        _ => vec![value],
    };
    println!("{:<30} {:<30} CONTEXT/STATUS", "ID", "DISPLAY NAME");
    for r in rows {
        let extra = match r.get("context").or_else(|| r.pointer("/status/connected")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => format!("connected={b}"),
            _ => String::new(),
        };
        println!(
            "{:<30} {:<30} {extra}",
            r["id"].as_str().unwrap_or_default(),
            r["displayName"].as_str().unwrap_or_default(),
        );
    }
}

/// Gateways with their connection and sync status.
pub fn gateways(gateways: &[Gateway]) {
    println!(
        "{:<24} {:<10} {:<8} {:>9} {:>9}",
        "GATEWAY", "CONNECTED", "IN SYNC", "APPLIED", "ORG REV"
    );
    for g in gateways {
        let st = &g.status;
        println!(
            "{:<24} {:<10} {:<8} {:>9} {:>9}",
            g.id.as_str(),
            st.connected.to_string(),
            st.in_sync.to_string(),
            st.applied_revision.to_string(),
            st.org_revision.to_string()
        );
    }
}

/// API keys, masked.
pub fn api_keys(keys: &[ApiKey]) {
    for k in keys {
        println!(
            "{:<24} {:<10} {}",
            k.id.as_str(),
            k.status,
            k.masked_api_key
        );
    }
}
