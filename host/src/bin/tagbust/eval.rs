//! `tagbust eval`: what would these rules invalidate for these events?

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tagbust::model::ingest::{read_events, read_events_file};
use tagbust::pipeline::preview;
use tagbust::{EventLimits, Relationships};

use super::engine::CacheArgs;
use super::output;
use super::rules::{self, ConfigArg};

#[derive(Args)]
pub struct EvalArgs {
    /// Rule components (.wasm), or directories of them.
    #[arg(long = "rules", required = true, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// A JSON file holding one event or an array of events; `-` reads standard input.
    #[arg(long)]
    event: String,
    /// Per-rule configuration: RULE=FILE for every tenant, RULE@TENANT=FILE for one; FILE is a
    /// JSON object. May be repeated.
    #[arg(long = "config", value_parser = rules::parse_config_arg)]
    configs: Vec<ConfigArg>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Also explain each planned target: rule → target → strategy → cascade → the backend
    /// operation it becomes and when it would apply.
    #[arg(long)]
    explain: bool,
    /// A relationship edge between tag kinds for cascades, FROM=TO (e.g. user=session); may
    /// be repeated.
    #[arg(long = "relate", value_parser = parse_edge)]
    relate: Vec<(String, String)>,
}

pub fn parse_edge(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_owned(), b.to_owned())),
        _ => Err(format!("`{s}`: expected FROM=TO, e.g. user=session")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

pub fn run(args: EvalArgs, cache: &CacheArgs) -> anyhow::Result<()> {
    // Inputs past the byte cap are refused before they are read (a file by its size, stdin
    // one byte past the cap), so a 1 GiB event file costs nothing.
    let limits = EventLimits::default();
    let events = if args.event == "-" {
        read_events("<stdin>", std::io::stdin().lock(), &limits)?
    } else {
        read_events_file(args.event.as_ref(), &limits)?
    };
    let engine = cache.engine()?;
    let relationships = args
        .relate
        .iter()
        .fold(Relationships::new(), |r, (a, b)| r.edge(a, b));
    let (rules, tenant_rules) = rules::load(&engine, &args.rules, &args.configs, &relationships)?;
    let evaluation = tenant_rules.evaluate(&events);
    let explain = args
        .explain
        .then(|| preview(&events, &evaluation, &relationships));
    match args.format {
        Format::Json => output::print_json(&evaluation, explain.as_deref())?,
        Format::Text => output::print_text(&rules, &evaluation, explain.as_deref()),
    }
    Ok(())
}
