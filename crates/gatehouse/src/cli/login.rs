//! `gatehouse login`, and the credentials it keeps for the other commands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use gatehouse_client::Client;

/// Log in to a platform with a username and password, or with an API token; the token is kept
/// in the user's config directory (mode 0600).
///
/// Example: gatehouse login --server http://127.0.0.1:9243 --password s3cret
/// Example: GATEHOUSE_API_TOKEN=ght_... gatehouse login --token
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Platform base URL.
    #[arg(
        long,
        env = "GATEHOUSE_SERVER",
        default_value = "http://127.0.0.1:9243"
    )]
    server: String,
    #[arg(long, short, default_value = "admin")]
    username: String,
    /// Password (prompting is not supported; use GATEHOUSE_PASSWORD in scripts).
    #[arg(
        long,
        env = "GATEHOUSE_PASSWORD",
        hide_env_values = true,
        required_unless_present = "token"
    )]
    password: Option<String>,
    /// Use an API token (from `POST /api/v1/tokens`) instead of a password: from
    /// GATEHOUSE_API_TOKEN, or from standard input when that is unset.
    #[arg(long, conflicts_with_all = ["password", "organization"])]
    token: bool,
    /// Organization handle.
    #[arg(long)]
    organization: Option<String>,
}

/// What `login` keeps: the server and a token for it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub token: String,
}

impl Credentials {
    /// Where they are kept: `$GATEHOUSE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/gatehouse`, else
    /// `~/.config/gatehouse`; the directory is created when missing.
    fn path() -> anyhow::Result<PathBuf> {
        let dir = match std::env::var_os("GATEHOUSE_CONFIG_DIR") {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("XDG_CONFIG_HOME") {
                Some(x) => PathBuf::from(x).join("gatehouse"),
                None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
                    .join(".config/gatehouse"),
            },
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir.join("credentials.json"))
    }

    /// The credentials of the last `login`.
    pub fn load() -> anyhow::Result<Self> {
        let path = Self::path()?;
        let text = std::fs::read_to_string(&path)
            .context("not logged in: run `gatehouse login --server URL` first")?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is unreadable: run `gatehouse login` again",
                path.display()
            )
        })
    }

    /// Keeps them, readable by the user only; returns where.
    fn save(&self) -> anyhow::Result<PathBuf> {
        let path = Self::path()?;
        write_private(&path, &serde_json::to_string(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// Writes `text` to `path` with mode 0600.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Logs in and keeps the token.
pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    if args.token {
        return with_token(&args.server).await;
    }
    let client = Client::new(&args.server);
    let login = client
        .login(
            &args.username,
            args.password.as_deref().unwrap_or_default(),
            args.organization.as_deref(),
        )
        .await
        .context("login failed")?;
    let credentials = Credentials {
        server: client.base().to_owned(),
        token: login.token,
    };
    let path = credentials.save()?;
    println!(
        "logged in to {} (organization {}); token kept in {}",
        credentials.server,
        login.organization,
        path.display()
    );
    Ok(())
}

/// Keeps an API token after checking it with the platform.
async fn with_token(server: &str) -> anyhow::Result<()> {
    let token = match std::env::var("GATEHOUSE_API_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => super::input::Source::stdin().read()?,
    };
    let client = Client::new(server).with_token(token.trim());
    let me = client
        .me()
        .await
        .context("the platform refused the API token")?;
    let credentials = Credentials {
        server: client.base().to_owned(),
        token: token.trim().to_owned(),
    };
    let path = credentials.save()?;
    println!(
        "logged in to {} as {} ({}) with an API token; kept in {}",
        credentials.server,
        me.username,
        me.role,
        path.display()
    );
    Ok(())
}
