//! The Python twin of `task-controllers` beside the Rust rule, in one run:
//! - loading: cold (compile, fresh bytes so no cache helps) and warm (a new engine reading the
//!   precompiled artifact from disk);
//! - a fresh instance from the `InstancePre` (what every batch pays);
//! - evaluating batches of 1, 16 and 256 events (fresh Store and instance per batch, as the
//!   host runs it), per event, Rust and Python interleaved;
//! - memory per instance: the peak linear memory the host measured for each batch.
//!
//! Needs the Python component (`scripts/build-python-rules.sh`). Run:
//! `cargo bench --locked -p tagbust-bench --bench python` (`TAGBUST_BENCH_QUICK=1`: short).

use std::cell::Cell;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use tagbust::{Batch, Engine, EngineOptions, Limits, Rule, RuleConfig, WriteEvent};
use tagbust_tests::bench::{compare, human, median, row, unique_copy};
use tagbust_tests::{Scratch, completed_task, components, load, python_component};

fn config() -> RuleConfig {
    let json = serde_json::json!({
        "rules": {"build_climate": {"invalidates_cache": ["climate", "wepp"]}},
        "cache_keys": {"climate": "{run_id}:climate", "wepp": "{run_id}:wepp"}
    });
    RuleConfig::from_json_object(json.as_object().expect("object"))
}

/// Seconds to load `path` with a new engine on `dir` (or none): engine start included.
fn load_secs(path: &str, bytes: &[u8], dir: Option<&Path>, n: u32) -> f64 {
    let engine = Engine::new(EngineOptions {
        artifact_dir: dir.map(Path::to_owned),
        ..EngineOptions::default()
    })
    .expect("engine");
    let start = Instant::now();
    let rule = match dir {
        Some(_) => engine.load_file(path.as_ref()),
        None => engine.load_bytes(path, &unique_copy(bytes, n)),
    };
    black_box(rule.expect("loads"));
    start.elapsed().as_secs_f64()
}

fn loads(name: &str, path: &str, runs: u32) {
    let bytes = std::fs::read(path).expect("built component");
    let scratch = Scratch::new(&format!("bench-python-{name}"));
    let dir = scratch.0.join("artifacts");
    load_secs(path, &bytes, Some(&dir), 0); // stores the artifact
    let cold: Vec<f64> = (0..runs)
        .map(|n| load_secs(path, &bytes, None, n))
        .collect();
    let warm: Vec<f64> = (0..runs * 3)
        .map(|n| load_secs(path, &bytes, Some(&dir), n))
        .collect();
    let artifact = std::fs::read_dir(&dir)
        .expect("artifact dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    println!(
        "load {name:<8} ({:>5.1} MB) cold {:>8.2} s   warm {:>8.3} s   (artifact {:.1} MB)",
        bytes.len() as f64 / 1e6,
        median(cold),
        median(warm),
        artifact as f64 / 1e6
    );
}

fn events(n: usize) -> Vec<WriteEvent> {
    (0..n)
        .map(|i| completed_task("lab", "build_climate", &i.to_string()))
        .collect()
}

fn main() {
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let samples = if quick { 5 } else { 21 };
    let python_path = python_component(components::PY_TASK_CONTROLLERS);
    println!(
        "tagbust python benchmark: task-controllers in Rust and in Python ({samples} samples, medians)\n"
    );

    loads(
        "rust",
        components::TASK_CONTROLLERS,
        if quick { 2 } else { 5 },
    );
    loads("python", python_path, if quick { 1 } else { 3 });
    println!();

    let rust = load(components::TASK_CONTROLLERS);
    let python = tagbust_tests::python_task_controllers();
    // The same component in an engine that keeps 16 MiB of each pooled memory resident
    // (default 4 MiB): a Python instance's ~13 MiB image then resets in place instead of
    // faulting its pages back in on every batch.
    let resident = Engine::new(EngineOptions {
        keep_resident_bytes: 16 << 20,
        artifact_dir: Some(tagbust_tests::artifact_dir()),
        ..EngineOptions::default()
    })
    .expect("engine");
    let python16 = resident.load_file(python_path.as_ref()).expect("loads");
    let (limits, config) = (Limits::default(), config());
    let rules: [&Rule; 3] = [&rust, &python, &python16];

    let mut inst_rust = || rust.check_instantiate(&limits).expect("instantiates");
    let mut inst_python = || python.check_instantiate(&limits).expect("instantiates");
    let mut inst_python16 = || python16.check_instantiate(&limits).expect("instantiates");
    let inst = compare(
        samples,
        20,
        &mut [&mut inst_rust, &mut inst_python, &mut inst_python16],
    );
    println!("{}", row("fresh instance: rust", &inst[0]));
    println!("{}", row("fresh instance: python", &inst[1]));
    println!(
        "{}",
        row("fresh instance: python, 16 MiB resident", &inst[2])
    );
    println!();

    println!(
        "{:<7} {:>12} {:>12} {:>8} {:>14} {:>14} {:>12} {:>10} {:>10}",
        "batch",
        "rust/event",
        "py/event",
        "ratio",
        "rust call/ev",
        "py call/ev",
        "py16/event",
        "rust mem",
        "py mem"
    );
    for size in [1usize, 16, 256] {
        let events = events(size);
        let batch = Batch::new("lab", &events).expect("one tenant");
        let memory = [Cell::new(0usize), Cell::new(0usize), Cell::new(0usize)];
        let run = |i: usize| {
            let run = rules[i].evaluate(&batch, &config, &limits);
            assert!(
                run.outcomes.iter().all(Result::is_ok),
                "{:?}",
                run.outcomes[0]
            );
            memory[i].set(run.memory_bytes);
            black_box(run);
        };
        let (mut on_rust, mut on_python, mut on_python16) = (|| run(0), || run(1), || run(2));
        let iters = (256 / size).clamp(2, 64) as u32;
        let s = compare(
            samples,
            iters,
            &mut [&mut on_rust, &mut on_python, &mut on_python16],
        );
        let memory = memory.map(Cell::into_inner);
        let per = |d: std::time::Duration| d / size as u32;
        let call = |i: usize| per(s[i].median.saturating_sub(inst[i].median));
        let mib = |b: usize| format!("{:.1} MiB", b as f64 / f64::from(1 << 20));
        println!(
            "{:<7} {:>12} {:>12} {:>7.1}× {:>14} {:>14} {:>12} {:>10} {:>10}",
            size,
            human(per(s[0].median)),
            human(per(s[1].median)),
            s[1].nanos() / s[0].nanos(),
            human(call(0)),
            human(call(1)),
            human(per(s[2].median)),
            mib(memory[0]),
            mib(memory[1]),
        );
    }
    println!(
        "\nper event: the host's full cost (fresh Store + instance per batch, lower, call, lift); \
         call/ev: the same minus the fresh-instance median; py16: Python in an engine keeping 16 MiB \
         resident per pooled memory; mem: the instance's peak linear \
         memory for that batch, as the host measured it (what `memory_mib` must allow)."
    );
}
