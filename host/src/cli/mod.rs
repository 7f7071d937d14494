//! Subcommands.

mod eval;
mod output;
mod rules;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tagbust",
    version,
    about = "Cache invalidation as sandboxed WebAssembly rules"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what the rules would invalidate for write events, without touching any cache.
    Eval(eval::EvalArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Eval(args) => eval::run(args),
    }
}
