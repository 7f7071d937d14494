//! `tagbust eval`: what would these rules invalidate for these events?

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tagbust::{Engine, EngineOptions, Evaluation, EventLimits, WriteEvent, parse_events};

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
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let (label, bytes) = if args.event == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read events from standard input")?;
        ("<stdin>".to_owned(), buf)
    } else {
        let bytes = std::fs::read(&args.event)
            .with_context(|| format!("{}: cannot read event file", args.event))?;
        (args.event.clone(), bytes)
    };
    let events = parse_events(&label, &bytes, &EventLimits::default())?;
    let engine = Engine::new(EngineOptions::default())?;
    let (rules, tenant_rules) = rules::load(&engine, &args.rules, &args.configs)?;
    let evaluation = evaluate(&tenant_rules, &events);
    match args.format {
        Format::Json => output::print_json(&evaluation)?,
        Format::Text => output::print_text(&rules, &evaluation),
    }
    Ok(())
}

/// Evaluates each tenant's events with that tenant's rule set, keeping input order.
fn evaluate(rules: &rules::TenantRules, events: &[WriteEvent]) -> Evaluation {
    let mut by_set: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let key = if rules.tenants.contains_key(&e.tenant) {
            e.tenant.as_str()
        } else {
            ""
        };
        by_set.entry(key).or_default().push(i);
    }
    let mut reports = vec![None; events.len()];
    let mut runs = Vec::new();
    for (key, indices) in by_set {
        let set = rules.for_tenant(key);
        let group: Vec<WriteEvent> = indices.iter().map(|&i| events[i].clone()).collect();
        let evaluation = set.evaluate(&group);
        for (&i, report) in indices.iter().zip(evaluation.events) {
            reports[i] = Some(report);
        }
        runs.extend(evaluation.runs);
    }
    Evaluation {
        events: reports.into_iter().flatten().collect(),
        runs,
    }
}
