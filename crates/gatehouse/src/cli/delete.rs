//! `gatehouse delete`.

use clap::Args;

use super::Target;

/// Delete an artifact; every gateway of the organization is told.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `<kind>/<handle>`.
    target: Target,
}

/// Deletes the artifact.
pub async fn run(args: DeleteArgs) -> anyhow::Result<()> {
    super::session()?
        .delete_artifact(args.target.kind, &args.target.handle)
        .await?;
    println!("deleted {}", args.target);
    Ok(())
}
