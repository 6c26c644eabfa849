//! `gatehouse`: one binary for the control plane, gateways and the CLI. This file only wires:
//! the commands and their settings live in `settings`, `dev` and `cli`.

mod cli;
mod dev;
mod settings;

// The data plane allocates per request; mimalloc's per-thread heaps suit its one-runtime-per-core
// layout better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, Parser, Subcommand};

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
    #[command(flatten)]
    Cli(cli::Command),
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
    let cli: Cli = settings::parse()?;
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Platform(args) => gatehouse_platform::run(args.into_config()?).await,
            Command::Gateway(args) => gatehouse_gateway::run(args.into_config()).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Cli(command) => cli::run(command, Cli::command).await,
        }
    })
}
