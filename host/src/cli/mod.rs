//! Subcommands.

mod demo;
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
    /// Run the example rules over a scripted scenario against an in-memory cache, showing
    /// each write, what it invalidated and why, and the final stats.
    Demo(demo::DemoArgs),
    /// Show what the rules would invalidate for write events, without touching any cache.
    Eval(eval::EvalArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Eval(args) => eval::run(args),
    }
}
