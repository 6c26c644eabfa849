//! Values typed by the user that must not appear on the command line (where shell history and
//! the process list would keep them): read from standard input or from a file.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Where a value comes from.
#[derive(Debug, Args)]
pub struct Source {
    /// Read the value from this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    from_file: Option<PathBuf>,
}

impl Source {
    /// Standard input.
    pub fn stdin() -> Self {
        Self { from_file: None }
    }

    /// The value, with one trailing line break taken off (as `echo` and editors add one).
    pub fn read(&self) -> anyhow::Result<String> {
        let mut raw = match &self.from_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the value from {}", path.display()))?,
            None => {
                if std::io::stdin().is_terminal() {
                    eprintln!("type the value, then Ctrl-D on a new line:");
                }
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the value from standard input")?;
                s
            }
        };
        if raw.ends_with('\n') {
            raw.pop();
            if raw.ends_with('\r') {
                raw.pop();
            }
        }
        anyhow::ensure!(!raw.is_empty(), "the value is empty");
        Ok(raw)
    }
}
