//! Printing an evaluation as JSON (for machines) or text (for people).

use std::io::Write;

use tagbust::pipeline::PreviewOp;
use tagbust::{Evaluation, Outcome, Rule};

#[derive(serde::Serialize)]
struct JsonOutput<'a> {
    #[serde(flatten)]
    evaluation: &'a Evaluation,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<&'a [PreviewOp]>,
}

pub fn print_json(evaluation: &Evaluation, explain: Option<&[PreviewOp]>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let value = JsonOutput {
        evaluation,
        explain,
    };
    let written = serde_json::to_writer_pretty(&mut out, &value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out));
    match written {
        // A reader that stopped early (`| head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub fn print_text(rules: &[Rule], evaluation: &Evaluation, explain: Option<&[PreviewOp]>) {
    println!("rules:");
    for r in rules {
        let info = r.info();
        println!(
            "  {}@{}  priority {}  ({}, sha256 {})",
            info.name,
            info.version,
            info.priority,
            r.file(),
            &r.sha256_hex()[..12]
        );
    }
    for (i, e) in evaluation.events.iter().enumerate() {
        println!();
        println!(
            "event {i}: tenant {} · {} {}",
            e.tenant, e.operation, e.resource
        );
        if e.outcomes.is_empty() {
            println!("  no rule triggers on this event");
        }
        for o in &e.outcomes {
            match &o.result {
                Outcome::Ok { targets } => println!(
                    "  {}@{} (priority {}): ok, {} target(s)",
                    o.rule,
                    o.rule.version(),
                    o.priority,
                    targets.len()
                ),
                Outcome::Error { message, .. } => println!(
                    "  {}@{} (priority {}): FAILED: {message}",
                    o.rule,
                    o.rule.version(),
                    o.priority
                ),
            }
        }
        if !e.plan.is_empty() {
            println!("  plan (apply order):");
        }
        for (n, p) in e.plan.iter().enumerate() {
            let cascade = if p.cascade { " +cascade" } else { "" };
            println!(
                "    {:>2}. {:<7} {:<40} {:<9}{cascade}  ← {} (priority {})",
                n + 1,
                p.kind.as_str(),
                p.value,
                p.strategy.as_str(),
                p.rule,
                p.priority
            );
        }
    }
    if let Some(lines) = explain {
        println!();
        println!("explain (event → rule → target → strategy → operation, when):");
        for l in lines {
            let o = &l.origin;
            let via = o
                .cascaded_from
                .as_ref()
                .map(|v| format!(" → cascade via {v}"))
                .unwrap_or_default();
            println!(
                "  event {}: {}@{} → {} {} → {}{via} → {:?} {} ({})",
                l.event,
                o.rule,
                o.rule.version(),
                o.target_kind,
                o.target,
                o.strategy,
                l.op.kind,
                l.op.value,
                l.when
            );
        }
    }
    let logs: Vec<_> = evaluation
        .runs
        .iter()
        .filter(|r| !r.logs.is_empty())
        .collect();
    if !logs.is_empty() {
        println!();
        println!("rule logs:");
        for run in logs {
            for l in &run.logs {
                println!(
                    "  [{}/{}] {:?}: {}",
                    run.tenant, run.rule, l.level, l.message
                );
            }
        }
    }
}
