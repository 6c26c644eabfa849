//! `gatehouse gateways`.

use clap::Args;

use super::output;

/// List gateways with their connection and sync status.
#[derive(Debug, Args)]
pub struct GatewaysArgs {}

/// Prints the organization's gateways as a table.
pub async fn run(_: GatewaysArgs) -> anyhow::Result<()> {
    let gateways = super::session()?.gateways().await?;
    output::gateways(&gateways.list);
    Ok(())
}
