//! `gatehouse completions`.

use clap::Args;

/// Print shell completions.
///
/// Example: gatehouse completions bash > /etc/bash_completion.d/gatehouse
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Prints the completions of `root` (the whole command line) for the shell.
pub fn run(args: CompletionsArgs, mut root: clap::Command) -> anyhow::Result<()> {
    clap_complete::generate(args.shell, &mut root, "gatehouse", &mut std::io::stdout());
    Ok(())
}
