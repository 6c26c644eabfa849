//! The CLI for people and CI: one file per command, each with its flags. Every command but
//! `login` and `completions` talks to the platform's public API through `gatehouse-client`, with
//! the token `login` keeps in the user's config directory.

mod apply;
mod completions;
mod delete;
mod deploy;
mod gateways;
mod get;
mod input;
mod keys;
mod login;
mod output;
mod secrets;
mod users;

use std::fmt;
use std::str::FromStr;

use clap::Subcommand;

use gatehouse_client::{Client, ClientError, StatusCode};
use gatehouse_core::{ArtifactKind, Handle};

/// The CLI's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    Login(login::LoginArgs),
    Apply(apply::ApplyArgs),
    Get(get::GetArgs),
    Deploy(deploy::DeployArgs),
    Undeploy(deploy::UndeployArgs),
    Restore(deploy::RestoreArgs),
    Delete(delete::DeleteArgs),
    Gateways(gateways::GatewaysArgs),
    Keys(keys::KeysArgs),
    Secrets(secrets::SecretsArgs),
    Users(users::UsersArgs),
    Completions(completions::CompletionsArgs),
}

/// Runs a CLI command; `root` builds the whole command line (for completions).
pub async fn run(command: Command, root: fn() -> clap::Command) -> anyhow::Result<()> {
    let uses_stored_token = !matches!(command, Command::Login(_) | Command::Completions(_));
    let result = match command {
        Command::Login(args) => login::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Get(args) => get::run(args).await,
        Command::Deploy(args) => deploy::run(args).await,
        Command::Undeploy(args) => deploy::undeploy(args).await,
        Command::Restore(args) => deploy::restore(args).await,
        Command::Delete(args) => delete::run(args).await,
        Command::Gateways(args) => gateways::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::Secrets(args) => secrets::run(args).await,
        Command::Users(args) => users::run(args).await,
        Command::Completions(args) => completions::run(args, root()),
    };
    result.map_err(|e| {
        if uses_stored_token && refused_token(&e) {
            e.context("the platform refused the stored token: run `gatehouse login` again")
        } else {
            e
        }
    })
}

/// Whether the platform answered 401 somewhere in `e`'s chain.
fn refused_token(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<ClientError>()
            .is_some_and(|c| c.status() == Some(StatusCode::UNAUTHORIZED))
    })
}

/// A client of the platform `login` connected to, with its token.
fn session() -> anyhow::Result<Client> {
    let credentials = login::Credentials::load()?;
    Ok(Client::new(&credentials.server).with_token(&credentials.token))
}

/// An artifact named on the command line as `<kind>/<handle>`, e.g. `rest-apis/orders`.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: ArtifactKind,
    pub handle: Handle,
}

/// A target that is not `<collection>/<handle>`.
#[derive(Debug, thiserror::Error)]
#[error("'{0}': the target is <kind>/<handle>, e.g. rest-apis/orders, with kind one of rest-apis, llm-providers, llm-proxies, mcp-proxies")]
pub struct BadTarget(String);

impl FromStr for Target {
    type Err = BadTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadTarget(s.to_owned());
        let (collection, handle) = s.split_once('/').ok_or_else(bad)?;
        Ok(Self {
            kind: ArtifactKind::from_collection(collection).ok_or_else(bad)?,
            handle: Handle::parse("handle", handle).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.collection(), self.handle)
    }
}

/// Parses a handle given on the command line.
fn handle(value: &str) -> Result<Handle, gatehouse_core::FieldError> {
    Handle::parse("handle", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_a_collection_and_a_handle() {
        let t: Target = "mcp-proxies/tools".parse().unwrap();
        assert_eq!(t.kind, ArtifactKind::Mcp);
        assert_eq!(t.handle.as_str(), "tools");
        assert_eq!(t.to_string(), "mcp-proxies/tools");
        for bad in ["orders", "apis/orders", "rest-apis/Orders", "rest-apis/"] {
            let err = bad.parse::<Target>().unwrap_err();
            assert!(err.to_string().contains("<kind>/<handle>"), "{bad}: {err}");
        }
    }
}
