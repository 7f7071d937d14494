//! `tagbust inspect`: what a rule component is, and whether this host would accept it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tagbust::Inspection;

use super::engine::CacheArgs;

#[derive(Args)]
pub struct InspectArgs {
    /// The rule component (.wasm) to inspect.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

/// Prints the report; exits 0 when the host would accept the component, 1 (with the reason on
/// stderr) when it would not. An unreadable file is an error (exit 2).
pub fn run(args: InspectArgs, cache: &CacheArgs) -> anyhow::Result<ExitCode> {
    let engine = cache.engine()?;
    let file = args.file.display();
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("{file}: cannot read rule component"))?
        .len();
    let limit = engine.options().max_component_bytes as u64;
    if size > limit {
        anyhow::bail!(
            "{file}: {size} bytes, more than the {limit} bytes a rule component may have"
        );
    }
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("{file}: cannot read rule component"))?;
    let report = engine.inspect(&args.file.display().to_string(), &bytes);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => write_text(&mut out, &report)?,
    }
    out.flush()?;
    Ok(match &report.refusal {
        None => ExitCode::SUCCESS,
        Some(reason) => {
            eprintln!("error: not accepted: {reason}");
            ExitCode::from(1)
        }
    })
}

fn write_text(out: &mut impl Write, r: &Inspection) -> std::io::Result<()> {
    let none = "-".to_owned();
    writeln!(out, "file       {}", r.file)?;
    writeln!(out, "size       {} bytes", r.size)?;
    writeln!(out, "sha256     {}", r.sha256)?;
    let sdk = r.sdk.as_ref().map_or_else(
        || "none (not built with tagbust-guest)".to_owned(),
        |s| {
            format!(
                "tagbust-guest {} (contract {}, {})",
                s.sdk, s.contract, s.language
            )
        },
    );
    writeln!(out, "sdk        {sdk}")?;
    let contract = r.contract.as_ref().map(|c| format!("tagbust:rules@{c}"));
    writeln!(
        out,
        "contract   {}",
        contract.unwrap_or_else(|| none.clone())
    )?;
    match &r.info {
        Some(i) => {
            let list = |v: Vec<String>| {
                if v.is_empty() {
                    "all".to_owned()
                } else {
                    v.join(", ")
                }
            };
            let ops = list(i.operations.iter().map(|o| o.as_str().to_owned()).collect());
            writeln!(
                out,
                "describe   {} {}, priority {}",
                i.name, i.version, i.priority
            )?;
            writeln!(out, "           resources: {}", list(i.resources.clone()))?;
            writeln!(out, "           operations: {ops}")?;
            writeln!(out, "           default strategy: {}", i.default_strategy)?;
            if !i.description.is_empty() {
                writeln!(out, "           {}", i.description)?;
            }
        }
        None => writeln!(out, "describe   {none}")?,
    }
    for (label, names) in [("imports", &r.imports), ("exports", &r.exports)] {
        writeln!(out, "{label:<10} {}", names.first().unwrap_or(&none))?;
        for name in names.iter().skip(1) {
            writeln!(out, "           {name}")?;
        }
    }
    match &r.refusal {
        None => writeln!(out, "verdict    accepted"),
        Some(reason) => writeln!(out, "verdict    refused: {reason}"),
    }
}
