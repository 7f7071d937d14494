//! The `tagbust` command line. Thin: argument parsing, logging set-up and printing; the work
//! is done by the library.

mod demo;
mod diff;
mod engine;
mod eval;
mod fixture;
mod inspect;
mod output;
mod report;
mod rules;
mod serve;
mod telemetry;
mod test_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tagbust",
    version,
    about = "Cache invalidation as sandboxed WebAssembly rules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    cache: engine::CacheArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the example rules over a scripted scenario against an in-memory cache, showing
    /// each write, what it invalidated and why, and the final stats.
    Demo(demo::DemoArgs),
    /// Show what the rules would invalidate for write events, without touching any cache.
    Eval(eval::EvalArgs),
    /// Show what a rule component is (SDK and contract versions, describe(), imports, size,
    /// sha256) and whether this host would accept it: exit 0 if so, 1 with the reason if not.
    Inspect(inspect::InspectArgs),
    /// Run the host as a service: HTTP intake, per-tenant tokens, metrics, hot reload.
    Serve(Box<serve::config::ServeArgs>),
    /// Run fixture cases (TOML or JSON: events, the tenant's setup, expected targets or
    /// failures) through the host and report each; exit 1 if any case fails, 2 if a fixture
    /// cannot be read.
    Test(test_cmd::TestArgs),
    /// Evaluate recorded events (JSONL) with an old and a new version of a rule and report
    /// what the new one would stop invalidating (first), start invalidating, or delay.
    Diff(diff::DiffArgs),
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cache = &cli.cache;
    match cli.command {
        Command::Demo(args) => demo::run(args, cache).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => eval::run(args, cache).map(|()| ExitCode::SUCCESS),
        Command::Inspect(args) => inspect::run(args, cache),
        Command::Test(args) => test_cmd::run(args, cache),
        Command::Diff(args) => diff::run(args, cache),
        Command::Serve(args) => serve::run(*args, cache),
    }
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let _telemetry = telemetry::init();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
