//! `gatehouse get`.

use anyhow::Context;
use clap::{Args, ValueEnum};

use gatehouse_core::{ArtifactKind, Handle};

use super::output::{self, Format};

/// List or read resources.
///
/// Example: gatehouse get rest-apis -o yaml
#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to list or read.
    #[arg(value_enum)]
    kind: Resource,
    /// The handle of one of them.
    #[arg(value_parser = super::handle)]
    handle: Option<Handle>,
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
}

/// The collections of the public API that `get` reads.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Resource {
    RestApis,
    LlmProviders,
    LlmProxies,
    McpProxies,
    Gateways,
    Projects,
    SubscriptionPlans,
    Subscriptions,
    Organizations,
}

impl Resource {
    /// The collection's path segment.
    fn collection(self) -> &'static str {
        match self {
            Resource::RestApis => ArtifactKind::RestApi.collection(),
            Resource::LlmProviders => ArtifactKind::LlmProvider.collection(),
            Resource::LlmProxies => ArtifactKind::LlmProxy.collection(),
            Resource::McpProxies => ArtifactKind::Mcp.collection(),
            Resource::Gateways => "gateways",
            Resource::Projects => "projects",
            Resource::SubscriptionPlans => "subscription-plans",
            Resource::Subscriptions => "subscriptions",
            Resource::Organizations => "organizations",
        }
    }
}

/// Lists a collection, or reads one resource, and prints it as the platform wrote it.
pub async fn run(args: GetArgs) -> anyhow::Result<()> {
    let path = match &args.handle {
        Some(h) => format!("/{}/{h}", args.kind.collection()),
        None => format!("/{}", args.kind.collection()),
    };
    let value = super::session()?
        .read_json(&path)
        .await
        .with_context(|| path.clone())?;
    output::resources(&value, args.output)
}
