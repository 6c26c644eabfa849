//! `gatehouse secrets`.

use clap::{Args, Subcommand};

use gatehouse_core::Handle;

/// Create, list, rotate or delete the organization's secrets. A value is read from standard
/// input or from a file, never from the command line (where shell history would keep it), and
/// is never shown again: `list` gives fingerprints.
///
/// Example: printf %s "$OPENAI_KEY" | gatehouse secrets create openai --name "OpenAI key"
#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    action: SecretAction,
}

/// What `secrets` does.
#[derive(Debug, Subcommand)]
enum SecretAction {
    /// Create a secret from standard input or --from-file.
    Create {
        #[arg(value_parser = super::handle)]
        id: Handle,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        source: super::input::Source,
    },
    /// List the secrets: ids, names, fingerprints and when they last changed.
    List,
    /// Give a secret a new value, from standard input or --from-file.
    Rotate {
        #[arg(value_parser = super::handle)]
        id: Handle,
        #[command(flatten)]
        source: super::input::Source,
    },
    /// Delete a secret.
    Delete {
        #[arg(value_parser = super::handle)]
        id: Handle,
    },
}

/// Runs `secrets`.
pub async fn run(args: SecretsArgs) -> anyhow::Result<()> {
    let client = super::session()?;
    match args.action {
        SecretAction::Create { id, name, source } => {
            let value = source.read()?;
            let s = client
                .create_secret(id.as_str(), name.as_deref(), &value)
                .await?;
            println!("secret {} created ({})", s.id, s.fingerprint);
        }
        SecretAction::List => {
            for s in client.secrets().await?.list {
                println!(
                    "{:<24} {:<28} {:<30} {}",
                    s.id, s.fingerprint, s.updated_at, s.display_name
                );
            }
        }
        SecretAction::Rotate { id, source } => {
            let value = source.read()?;
            let s = client.rotate_secret(id.as_str(), &value).await?;
            println!("secret {} rotated ({})", s.id, s.fingerprint);
        }
        SecretAction::Delete { id } => {
            client.delete_secret(id.as_str()).await?;
            println!("deleted");
        }
    }
    Ok(())
}
