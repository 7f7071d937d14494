//! The Extism side of the published-feeds comparison (issue 14, target 8).
//!
//! Reads the events and the targets tagbust produced for them (written by the `evaluate`
//! bench under `TAGBUST_BENCH_PEER`), checks that the Extism plugin answers the same targets
//! for every event, then times one batch call, per event, two ways, interleaved:
//! - `reused`: one plugin instance called batch after batch, as Extism users run it;
//! - `fresh`: a new instance from the compiled plugin for every batch, the isolation tagbust
//!   gives each batch (fresh Store and instance).
//!
//! Both include what the Extism boundary costs: the events serialised to JSON by the host,
//! parsed by the plugin, the answer serialised by the plugin and parsed by the host.
//!
//! Usage: `extism-peer-host PLUGIN.wasm EXPECTED.json [SAMPLES]`; prints
//! `extism-reused-ns-per-event N` and `extism-fresh-ns-per-event N` lines for the script.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use extism::convert::Json;
use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};
use serde::{Deserialize, Serialize};

/// The host application's event type, serialised as tagbust's JSON event.
#[derive(Serialize, Deserialize, Clone)]
struct WriteEvent {
    tenant: String,
    resource: String,
    operation: String,
    ids: Vec<String>,
    changes: Vec<FieldChange>,
    context: BTreeMap<String, String>,
    timestamp_ms: u64,
}

#[derive(Serialize, Deserialize, Clone)]
struct FieldChange {
    field: String,
    old: Option<String>,
    new: Option<String>,
}

/// What the plugin answers per target.
#[derive(Deserialize)]
struct PluginTarget {
    kind: String,
    value: String,
    strategy: Option<String>,
}

/// What tagbust answered per target (its `Target` serialised).
#[derive(Deserialize)]
struct TagbustTarget {
    kind: String,
    value: String,
    strategy: String,
    cascade: bool,
}

#[derive(Deserialize)]
struct Expected {
    events: Vec<WriteEvent>,
    targets: Vec<Vec<TagbustTarget>>,
}

type Answer = Vec<Vec<PluginTarget>>;

fn call(plugin: &mut Plugin, events: &[WriteEvent]) -> Result<Answer, extism::Error> {
    let Json(answer) =
        plugin.call::<Json<&[WriteEvent]>, Json<Answer>>("evaluate", Json(events))?;
    Ok(answer)
}

/// The plugin's answer must be tagbust's, event by event; a missing strategy is the rule's
/// default, `immediate` (as tagbust's guest SDK fills it in).
fn check(answer: &Answer, expected: &Expected) -> Result<(), String> {
    if answer.len() != expected.targets.len() {
        return Err(format!(
            "{} answers for {} events",
            answer.len(),
            expected.targets.len()
        ));
    }
    for (i, (got, want)) in answer.iter().zip(&expected.targets).enumerate() {
        let got: Vec<(&str, &str, &str, bool)> = got
            .iter()
            .map(|t| {
                let strategy = t.strategy.as_deref().unwrap_or("immediate");
                (t.kind.as_str(), t.value.as_str(), strategy, false)
            })
            .collect();
        let want: Vec<(&str, &str, &str, bool)> = want
            .iter()
            .map(|t| {
                (
                    t.kind.as_str(),
                    t.value.as_str(),
                    t.strategy.as_str(),
                    t.cascade,
                )
            })
            .collect();
        if got != want {
            return Err(format!(
                "event {i}: extism answered {got:?}, tagbust {want:?}"
            ));
        }
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(wasm_path), Some(expected_path)) = (args.get(1), args.get(2)) else {
        return Err("usage: extism-peer-host PLUGIN.wasm EXPECTED.json [SAMPLES]".into());
    };
    let samples: usize = match args.get(3) {
        Some(s) => s.parse().map_err(|e| format!("SAMPLES {s:?}: {e}"))?,
        None => 31,
    };
    let wasm = std::fs::read(wasm_path).map_err(|e| format!("{wasm_path}: {e}"))?;
    let text =
        std::fs::read_to_string(expected_path).map_err(|e| format!("{expected_path}: {e}"))?;
    let expected: Expected =
        serde_json::from_str(&text).map_err(|e| format!("{expected_path}: {e}"))?;
    let events = &expected.events;
    if events.is_empty() {
        return Err(format!("{expected_path}: no events"));
    }

    let manifest = Manifest::new([Wasm::data(wasm)]);
    let compiled = CompiledPlugin::new(PluginBuilder::new(manifest).with_wasi(false))
        .map_err(|e| format!("compile: {e:#}"))?;
    let mut reused = Plugin::new_from_compiled(&compiled).map_err(|e| format!("{e:#}"))?;

    // Same answers as tagbust, from both ways of running, before anything is timed.
    let answer = call(&mut reused, events).map_err(|e| format!("call: {e:#}"))?;
    check(&answer, &expected)?;
    let mut fresh = Plugin::new_from_compiled(&compiled).map_err(|e| format!("{e:#}"))?;
    check(
        &call(&mut fresh, events).map_err(|e| format!("call: {e:#}"))?,
        &expected,
    )?;
    println!(
        "extism answers equal tagbust's for all {} events",
        events.len()
    );

    let iters = (2048 / events.len()).max(4) as u32;
    let mut run_reused = || -> Result<(), String> {
        let answer = call(&mut reused, events).map_err(|e| format!("call: {e:#}"))?;
        std::hint::black_box(answer);
        Ok(())
    };
    let run_fresh = || -> Result<(), String> {
        let mut plugin = Plugin::new_from_compiled(&compiled).map_err(|e| format!("{e:#}"))?;
        let answer = call(&mut plugin, events).map_err(|e| format!("call: {e:#}"))?;
        std::hint::black_box(answer);
        Ok(())
    };
    for _ in 0..iters.min(10) {
        run_reused()?;
        run_fresh()?;
    }
    let (mut t_reused, mut t_fresh) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..iters {
            run_reused()?;
        }
        t_reused.push(start.elapsed() / iters);
        let start = Instant::now();
        for _ in 0..iters {
            run_fresh()?;
        }
        t_fresh.push(start.elapsed() / iters);
    }
    let per_event = |d: Duration| d.as_secs_f64() * 1e9 / events.len() as f64;
    println!(
        "extism-reused-ns-per-event {:.1}",
        per_event(median(t_reused))
    );
    println!(
        "extism-fresh-ns-per-event {:.1}",
        per_event(median(t_fresh))
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("extism-peer-host: {e}");
            ExitCode::FAILURE
        }
    }
}
