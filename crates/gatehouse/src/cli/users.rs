//! `gatehouse users`.

use clap::{Args, Subcommand, ValueEnum};

/// Manage the organization's users and their roles (admin), or change your own password.
/// Passwords are read from standard input or a file, never from the command line.
///
/// Example: printf %s "$PW" | gatehouse users create alice --role editor
#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    action: UserAction,
}

/// A role in the organization.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Role {
    /// Everything, users included.
    Admin,
    /// Artifacts, deployments, keys, plans.
    Editor,
    /// Read only.
    Viewer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }
}

/// What `users` does.
#[derive(Debug, Subcommand)]
enum UserAction {
    /// List the users with their roles.
    List,
    /// Show who you are logged in as.
    Me,
    /// Add a user; the password comes from standard input or --from-file.
    Create {
        username: String,
        #[arg(long, value_enum)]
        role: Role,
        #[command(flatten)]
        password: super::input::Source,
    },
    /// Give a user another role.
    SetRole {
        username: String,
        #[arg(value_enum)]
        role: Role,
    },
    /// Set a user's password (from standard input or --from-file).
    ResetPassword {
        username: String,
        #[command(flatten)]
        password: super::input::Source,
    },
    /// Remove a user from the organization.
    Delete { username: String },
    /// Change your own password: standard input holds the current one, a line break, then the
    /// new one.
    Passwd,
}

/// Runs `users`.
pub async fn run(args: UsersArgs) -> anyhow::Result<()> {
    let client = super::session()?;
    match args.action {
        UserAction::List => {
            for u in client.users().await?.list {
                let admin = if u.platform_admin {
                    " (platform admin)"
                } else {
                    ""
                };
                println!("{:<32} {}{admin}", u.username, u.role);
            }
        }
        UserAction::Me => {
            let u = client.me().await?;
            println!("{} ({})", u.username, u.role);
        }
        UserAction::Create {
            username,
            role,
            password,
        } => {
            let password = password.read()?;
            let u = client
                .create_user(&username, &password, role.as_str())
                .await?;
            println!("user {} created ({})", u.username, u.role);
        }
        UserAction::SetRole { username, role } => {
            let u = client.set_role(&username, role.as_str()).await?;
            println!("user {} is now {}", u.username, u.role);
        }
        UserAction::ResetPassword { username, password } => {
            let password = password.read()?;
            client.reset_password(&username, &password).await?;
            println!("password of {username} set");
        }
        UserAction::Delete { username } => {
            client.delete_user(&username).await?;
            println!("user {username} removed");
        }
        UserAction::Passwd => {
            let text = super::input::Source::stdin().read()?;
            let (current, new) = text.split_once('\n').ok_or_else(|| {
                anyhow::anyhow!(
                    "standard input must hold the current password, a line break, then the new one"
                )
            })?;
            client
                .change_password(current.trim_end_matches('\r'), new)
                .await?;
            println!("password changed");
        }
    }
    Ok(())
}
