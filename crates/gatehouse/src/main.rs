//! `gatehouse`: one binary for the control plane, gateways and the CLI. This crate only parses
//! commands and settings and wires the libraries together.

mod cli;
mod dev;
mod settings;

// The data plane allocates per request; mimalloc's per-thread heaps suit its one-runtime-per-core
// layout better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

use settings::{GatewayArgs, LogFormat, PlatformArgs};

/// Gatehouse: an API platform. A control plane where you define REST APIs, LLM providers,
/// LLM proxies and MCP proxies, and gateways that serve them.
#[derive(Parser)]
#[command(name = "gatehouse", version, about, long_about = None)]
struct Cli {
    /// Log format: `text` (human-readable) or `json`.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: public API, gateway internal API and docs.
    ///
    /// Example: gatehouse platform --listen 0.0.0.0:9243 --database postgres://gatehouse@db/gatehouse
    Platform(PlatformArgs),
    /// Run a gateway: its local store, management API and the traffic listener.
    ///
    /// Example: gatehouse gateway --listen 0.0.0.0:8080 --admin-password s3cret --data-dir /var/lib/gatehouse
    Gateway(GatewayArgs),
    /// Run the platform and one connected gateway in one process, with a sample API deployed.
    ///
    /// State lives in ./.gatehouse/; running it again keeps what was there.
    Dev(dev::DevArgs),
    /// Log in to a platform; the token is kept in the user's config directory (mode 0600).
    ///
    /// Example: gatehouse login --server http://127.0.0.1:9243 --password s3cret
    Login(cli::LoginArgs),
    /// Create or update artifacts from YAML/JSON documents, by handle; shows the plan first.
    ///
    /// Example: gatehouse apply -f apis/ --deploy edge-1
    Apply(cli::ApplyArgs),
    /// List or read resources.
    ///
    /// Example: gatehouse get rest-apis -o yaml
    Get(cli::GetArgs),
    /// Deploy an artifact to a gateway.
    ///
    /// Example: gatehouse deploy rest-apis/orders --gateway edge-1 --wait
    Deploy(cli::DeployArgs),
    /// Undeploy an artifact's current deployment on a gateway (it keeps its keys).
    Undeploy(cli::StateArgs),
    /// Deploy an artifact's newest non-live deployment on a gateway again.
    Restore(cli::StateArgs),
    /// Delete an artifact; every gateway of the organization is told.
    Delete(cli::DeleteArgs),
    /// List gateways with their connection and sync status.
    Gateways,
    /// Create, list or revoke an artifact's API keys.
    ///
    /// Example: gatehouse keys create rest-apis/orders --name "mobile app"
    Keys(cli::KeysArgs),
    /// Print shell completions.
    ///
    /// Example: gatehouse completions bash > /etc/bash_completion.d/gatehouse
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Platform(args) => {
                let config = args.resolve()?;
                gatehouse_platform::run(config).await
            }
            Command::Dev(args) => dev::run(args).await,
            Command::Login(args) => cli::login(args).await,
            Command::Apply(args) => cli::apply(args).await,
            Command::Get(args) => cli::get(args).await,
            Command::Deploy(args) => cli::deploy(args).await,
            Command::Undeploy(args) => cli::change_state(args, "undeploy").await,
            Command::Restore(args) => cli::change_state(args, "restore").await,
            Command::Delete(args) => cli::delete(args).await,
            Command::Gateways => cli::gateways().await,
            Command::Keys(args) => cli::keys(args).await,
            Command::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "gatehouse",
                    &mut std::io::stdout(),
                );
                Ok(())
            }
            Command::Gateway(args) => {
                let config = args.resolve()?;
                gatehouse_gateway::run(config).await
            }
        }
    })
}
