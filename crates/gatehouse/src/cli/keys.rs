//! `gatehouse keys`.

use anyhow::Context;
use clap::{Args, ValueEnum};

use gatehouse_client::NewApiKey;
use gatehouse_core::Handle;

use super::{output, Target};

/// Create, list or revoke an artifact's API keys.
///
/// Example: gatehouse keys create rest-apis/orders --name "mobile app"
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// `create`, `list` or `revoke`.
    #[arg(value_enum)]
    action: KeyAction,
    /// `<kind>/<handle>` of the artifact.
    target: Target,
    /// The key's handle (create: optional; revoke: required).
    #[arg(long, value_parser = super::handle)]
    id: Option<Handle>,
    /// Display name of a new key.
    #[arg(long, default_value = "cli key")]
    name: String,
}

/// What `keys` does.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyAction {
    Create,
    List,
    Revoke,
}

/// Creates, lists or revokes the artifact's keys.
pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let client = super::session()?;
    let Target { kind, handle } = &args.target;
    match args.action {
        KeyAction::Create => {
            let new = NewApiKey {
                id: args.id,
                display_name: args.name,
                ..Default::default()
            };
            let created = client.create_api_key(*kind, handle, &new).await?;
            println!(
                "key {} created; it is shown only now:\n{}",
                created.key.id, created.api_key
            );
        }
        KeyAction::List => output::api_keys(&client.api_keys(*kind, handle).await?.list),
        KeyAction::Revoke => {
            let id = args.id.context("revoke needs --id")?;
            client.revoke_api_key(*kind, handle, &id).await?;
            println!("revoked");
        }
    }
    Ok(())
}
