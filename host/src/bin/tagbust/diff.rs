//! `tagbust diff`: shadow a new version of a rule against the old one over recorded events.
//!
//! Both versions run every event through the host's own path (`tagbust::pipeline::dry_run`:
//! rules, confinement, failure policy, cascade), and the targets each would invalidate are
//! compared per event: removed (the new version under-invalidates: stale data, the dangerous
//! direction, listed first), added (over-invalidates: more misses) and changed strategy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use tagbust::pipeline::{DryRunEvent, dry_run};
use tagbust::{EventLimits, OpKind, Outcome, Relationships, Rule, Strategy, Tenants, WriteEvent};

use super::engine::CacheArgs;
use super::rules::{self, ConfigArg};

#[derive(Args)]
pub struct DiffArgs {
    /// The version in production (.wasm).
    #[arg(long)]
    old: PathBuf,
    /// The candidate version (.wasm).
    #[arg(long)]
    new: PathBuf,
    /// Recorded write events, one JSON object per line (JSONL); blank lines are skipped.
    #[arg(long)]
    events: PathBuf,
    /// Per-rule configuration, as for `eval`: RULE=FILE or RULE@TENANT=FILE; a config applies
    /// to whichever version carries that rule name. May be repeated.
    #[arg(long = "config", value_parser = rules::parse_config_arg)]
    configs: Vec<ConfigArg>,
    /// A relationship edge FROM=TO for cascades (as for `eval`); may be repeated.
    #[arg(long = "relate", value_parser = super::eval::parse_edge)]
    relate: Vec<(String, String)>,
    /// Exit 1 when the new version removes a target from any event (`removed`), or differs
    /// at all (`any`). Without it, the exit status is 0 whatever the differences.
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Removed,
    Any,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// A target: kind (`tag`, `key`, `pattern`, `tenant`), value, strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct TargetText {
    kind: &'static str,
    value: String,
    strategy: Strategy,
}

#[derive(Debug, Serialize)]
struct Changed {
    kind: &'static str,
    value: String,
    old: Strategy,
    new: Strategy,
}

/// How one event's outcome differs between the versions.
#[derive(Debug, Serialize)]
struct EventDiff {
    /// `file:line` of the event.
    at: String,
    tenant: String,
    resource: String,
    operation: String,
    removed: Vec<TargetText>,
    added: Vec<TargetText>,
    changed: Vec<Changed>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    old_failures: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    new_failures: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    events: usize,
    differing: usize,
    /// Events the new version would under-invalidate.
    under_invalidating: usize,
    removed: usize,
    added: usize,
    changed: usize,
    old_failures: usize,
    new_failures: usize,
}

#[derive(Serialize)]
struct Report {
    old: String,
    new: String,
    total: Totals,
    /// Events that differ: under-invalidating ones first, then in file order.
    events: Vec<EventDiff>,
}

pub fn run(args: DiffArgs, cache: &CacheArgs) -> anyhow::Result<ExitCode> {
    let events = read_jsonl(&args.events)?;
    let engine = cache.engine()?;
    let relationships = args
        .relate
        .iter()
        .fold(Relationships::new(), |r, (a, b)| r.edge(a, b));
    let old_rule = engine.load_file(&args.old)?;
    let new_rule = engine.load_file(&args.new)?;
    for c in &args.configs {
        if c.rule != old_rule.name() && c.rule != new_rule.name() {
            bail!(
                "--config names rule `{}`, but the versions are `{}` and `{}`",
                c.rule,
                old_rule.name(),
                new_rule.name()
            );
        }
    }
    let side = |rule: &Rule, path: &Path| -> anyhow::Result<Tenants> {
        let configs: Vec<ConfigArg> = args
            .configs
            .iter()
            .filter(|c| c.rule == rule.name())
            .cloned()
            .collect();
        Ok(rules::load(&engine, &[path.to_owned()], &configs, &relationships)?.1)
    };
    let (old, new) = (side(&old_rule, &args.old)?, side(&new_rule, &args.new)?);
    let mut total = Totals {
        events: events.len(),
        ..Totals::default()
    };
    let mut diffs = Vec::new();
    // In batches, as the host would evaluate them, so memory stays bounded by the batch.
    for chunk in events.chunks(256) {
        let batch: Vec<WriteEvent> = chunk.iter().map(|(_, e)| e.clone()).collect();
        let (a, b) = (dry_run(&old, batch.clone()), dry_run(&new, batch));
        for (((at, event), a), b) in chunk.iter().zip(&a.events).zip(&b.events) {
            let d = compare(at, event, a, b);
            total.removed += d.removed.len();
            total.added += d.added.len();
            total.changed += d.changed.len();
            total.old_failures += usize::from(!d.old_failures.is_empty());
            total.new_failures += usize::from(!d.new_failures.is_empty());
            let differs = !(d.removed.is_empty() && d.added.is_empty() && d.changed.is_empty())
                || d.old_failures != d.new_failures;
            if differs {
                total.differing += 1;
                total.under_invalidating += usize::from(!d.removed.is_empty());
                diffs.push(d);
            }
        }
    }
    // Stable: file order within each group.
    diffs.sort_by_key(|d| d.removed.is_empty());
    let describe = |r: &Rule| format!("{}@{} ({})", r.name(), r.info().version, r.file());
    let report = Report {
        old: describe(&old_rule),
        new: describe(&new_rule),
        total,
        events: diffs,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_text(&report),
    }
    let fail = match args.fail_on {
        Some(FailOn::Removed) => report.total.under_invalidating > 0,
        Some(FailOn::Any) => report.total.differing > 0,
        None => false,
    };
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads one event per non-blank line, each line capped at
/// [`EventLimits::max_input_bytes`] before it is decoded; a bad line is named by file and
/// line. (The events are held in memory: a recording is a sample, not a log.)
fn read_jsonl(path: &Path) -> anyhow::Result<Vec<(String, WriteEvent)>> {
    use std::io::{BufRead, Read};
    let file = path.display().to_string();
    let reader =
        std::fs::File::open(path).with_context(|| format!("{file}: cannot read events"))?;
    let mut reader = std::io::BufReader::new(reader);
    let limits = EventLimits::default();
    let cap = limits.max_input_bytes as u64;
    let (mut events, mut line, mut n) = (Vec::new(), Vec::new(), 0usize);
    loop {
        line.clear();
        n += 1;
        let at = format!("{file}:{n}");
        let read = (&mut reader)
            .take(cap.saturating_add(1))
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{at}: cannot read"))?;
        if read == 0 {
            break;
        }
        if line.len() as u64 > cap {
            bail!("{at}: a line longer than {cap} bytes");
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.first() != Some(&b'{') {
            bail!("{at}: expected one JSON object (a write event) per line");
        }
        let mut parsed = tagbust::parse_events(&at, trimmed, &limits)?;
        if let Some(event) = parsed.pop() {
            events.push((at, event));
        }
    }
    if events.is_empty() {
        bail!("{file}: no events");
    }
    Ok(events)
}

/// Targets of one event's run, each with its soonest strategy.
fn targets(run: &DryRunEvent) -> BTreeMap<(&'static str, String), Strategy> {
    let mut out: BTreeMap<(&'static str, String), Strategy> = BTreeMap::new();
    for op in &run.ops {
        let key = match op.op.kind {
            OpKind::Tag | OpKind::TagVersion => ("tag", op.op.value.clone()),
            OpKind::Key => ("key", op.op.value.clone()),
            OpKind::Pattern => ("pattern", op.op.value.clone()),
            OpKind::Tenant => ("tenant", "*".to_owned()),
        };
        let strategy = op.origin.strategy;
        out.entry(key)
            .and_modify(|s| {
                if strategy.urgency() < s.urgency() {
                    *s = strategy;
                }
            })
            .or_insert(strategy);
    }
    out
}

fn failures(run: &DryRunEvent) -> Vec<String> {
    let mut out: Vec<String> = run
        .outcomes
        .iter()
        .filter_map(|o| match &o.result {
            Outcome::Error { failure, .. } => Some(failure.code().to_owned()),
            Outcome::Ok { .. } => None,
        })
        .chain(run.rejected.iter().map(|_| "rejected".to_owned()))
        .collect();
    // Versions may be named differently; compare what failed, not the name.
    out.sort();
    out
}

fn compare(at: &str, event: &WriteEvent, old: &DryRunEvent, new: &DryRunEvent) -> EventDiff {
    let (a, b) = (targets(old), targets(new));
    let text = |(kind, value): &(&'static str, String), strategy: Strategy| TargetText {
        kind,
        value: value.clone(),
        strategy,
    };
    let mut d = EventDiff {
        at: at.to_owned(),
        tenant: event.tenant.clone(),
        resource: event.resource.clone(),
        operation: event.operation.to_string(),
        removed: Vec::new(),
        added: Vec::new(),
        changed: Vec::new(),
        old_failures: failures(old),
        new_failures: failures(new),
    };
    for (key, &s) in &a {
        match b.get(key) {
            None => d.removed.push(text(key, s)),
            Some(&t) if t != s => d.changed.push(Changed {
                kind: key.0,
                value: key.1.clone(),
                old: s,
                new: t,
            }),
            Some(_) => {}
        }
    }
    for (key, &t) in &b {
        if !a.contains_key(key) {
            d.added.push(text(key, t));
        }
    }
    d
}

fn print_text(r: &Report) {
    let t = &r.total;
    println!("old: {}", r.old);
    println!("new: {}", r.new);
    println!();
    for d in &r.events {
        println!(
            "{}  tenant {} · {} {}",
            d.at, d.tenant, d.operation, d.resource
        );
        for x in &d.removed {
            let s = x.strategy.as_str();
            println!("  - {} {} ({s})   UNDER-INVALIDATES", x.kind, x.value);
        }
        for x in &d.added {
            println!("  + {} {} ({})", x.kind, x.value, x.strategy.as_str());
        }
        for x in &d.changed {
            let (old, new) = (x.old.as_str(), x.new.as_str());
            println!("  ~ {} {} ({old} → {new})", x.kind, x.value);
        }
        if d.old_failures != d.new_failures {
            println!(
                "  failures: old [{}] → new [{}]",
                d.old_failures.join(", "),
                d.new_failures.join(", ")
            );
        }
    }
    if !r.events.is_empty() {
        println!();
    }
    println!(
        "{} events, {} differ; {} under-invalidate. targets: {} removed, {} added, {} changed strategy; events failing: old {}, new {}",
        t.events,
        t.differing,
        t.under_invalidating,
        t.removed,
        t.added,
        t.changed,
        t.old_failures,
        t.new_failures
    );
}
