//! `gatehouse deploy`, `undeploy` and `restore`: an artifact's deployment on one gateway, and
//! waiting for the gateway's ack.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use gatehouse_client::{Client, Deployment};
use gatehouse_core::protocol::DeploymentStatus;
use gatehouse_core::Handle;

use super::Target;

/// How long `--wait` waits for the gateway's ack.
const ACK_WAIT: Duration = Duration::from_secs(120);

/// Deploy an artifact to a gateway.
///
/// Example: gatehouse deploy rest-apis/orders --gateway edge-1 --wait
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// `<kind>/<handle>`, e.g. rest-apis/orders.
    target: Target,
    #[arg(long, value_parser = super::handle)]
    gateway: Handle,
    /// Return when the gateway has acked (or fail with its reason).
    #[arg(long)]
    wait: bool,
}

/// Undeploy an artifact's current deployment on a gateway (it keeps its keys).
#[derive(Debug, Args)]
pub struct UndeployArgs {
    #[command(flatten)]
    on: OnGateway,
}

/// Deploy an artifact's newest non-live deployment on a gateway again.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    on: OnGateway,
}

/// An artifact on a gateway, for `undeploy` and `restore`.
#[derive(Debug, Args)]
struct OnGateway {
    /// `<kind>/<handle>`.
    target: Target,
    #[arg(long, value_parser = super::handle)]
    gateway: Handle,
    /// Return when the gateway has acked (or fail with its reason).
    #[arg(long)]
    wait: bool,
}

/// Deploys the artifact as it is now.
pub async fn run(args: DeployArgs) -> anyhow::Result<()> {
    let client = super::session()?;
    let Target { kind, handle } = &args.target;
    let dep = client.deploy(*kind, handle, &args.gateway).await?;
    println!("deployment {}: {}", dep.deployment_id, dep.status);
    if args.wait {
        wait_for(&client, &args.target, &dep, DeploymentStatus::Deployed).await?;
    }
    Ok(())
}

/// Undeploys the artifact's current deployment on the gateway.
pub async fn undeploy(args: UndeployArgs) -> anyhow::Result<()> {
    let on = args.on;
    let client = super::session()?;
    let current = deployments_on(&client, &on).await?.into_iter().find(|d| {
        matches!(
            d.status,
            DeploymentStatus::Deployed | DeploymentStatus::Deploying | DeploymentStatus::Failed
        )
    });
    let Some(current) = current else {
        bail!(
            "{} has no deployment on {} to undeploy",
            on.target,
            on.gateway
        )
    };
    let Target { kind, handle } = &on.target;
    let dep = client
        .undeploy(*kind, handle, &current.deployment_id)
        .await?;
    println!("deployment {}: {}", dep.deployment_id, dep.status);
    if on.wait {
        wait_for(&client, &on.target, &dep, DeploymentStatus::Undeployed).await?;
    }
    Ok(())
}

/// Deploys the newest deployment of the artifact on the gateway that is not live again.
pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let on = args.on;
    let client = super::session()?;
    let newest = deployments_on(&client, &on)
        .await?
        .into_iter()
        .find(|d| !d.is_live());
    let Some(newest) = newest else {
        bail!(
            "{} has no deployment on {} to restore",
            on.target,
            on.gateway
        )
    };
    let Target { kind, handle } = &on.target;
    let dep = client.restore(*kind, handle, &newest.deployment_id).await?;
    println!("deployment {}: {}", dep.deployment_id, dep.status);
    if on.wait {
        wait_for(&client, &on.target, &dep, DeploymentStatus::Deployed).await?;
    }
    Ok(())
}

/// The artifact's deployments on the gateway, newest first.
async fn deployments_on(client: &Client, on: &OnGateway) -> anyhow::Result<Vec<Deployment>> {
    let Target { kind, handle } = &on.target;
    Ok(client
        .deployments(*kind, handle, Some(&on.gateway))
        .await?
        .list)
}

/// Waits until the deployment reaches `want` (the gateway acked), or fails with its reason.
async fn wait_for(
    client: &Client,
    target: &Target,
    dep: &Deployment,
    want: DeploymentStatus,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + ACK_WAIT;
    loop {
        let d = client
            .deployment(target.kind, &target.handle, &dep.deployment_id)
            .await?;
        if d.status == want {
            println!("{}", want.as_str().to_lowercase());
            return Ok(());
        }
        if d.status == DeploymentStatus::Failed {
            bail!(
                "failed: {} {}",
                d.status_reason.unwrap_or_default(),
                d.status_message.unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("no ack from gateway {} in time", dep.gateway_id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
