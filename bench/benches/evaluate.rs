//! Evaluation costs, side by side in one run:
//! - loading a rule (compile + link + `describe`), with fresh bytes each time so the compile
//!   cache cannot help;
//! - a fresh instance from the `InstancePre` (what every batch pays);
//! - evaluating batches of 1, 16 and 256 events through wasm (fresh Store and instance per
//!   batch, as the host runs it), per event, against the same rule logic called natively.
//!
//! Run: `cargo bench --locked -p tagbust-bench --bench evaluate`. Set `TAGBUST_BENCH_QUICK=1`
//! for a fast smoke run. `TAGBUST_BENCH_PEER=FILE` is the tagbust half of
//! `scripts/bench-extism.sh` (see [`peer`]).

use std::hint::black_box;

use rule_published_feeds::PublishedFeeds;
use tagbust::{Batch, Limits, Operation, RuleConfig, WriteEvent};
use tagbust_guest::Rule as _;
use tagbust_tests::bench::{compare, human, row, unique_copy};
use tagbust_tests::{components, engine};

fn host_event(i: usize) -> WriteEvent {
    host_event_for("posts", i)
}

fn host_event_for(resource: &str, i: usize) -> WriteEvent {
    let mut e = WriteEvent::new("acme", resource, Operation::Update);
    e.ids = vec![format!("{i}")];
    e.context.insert("author_id".into(), format!("{}", i % 50));
    e.changes.push(tagbust::FieldChange {
        field: "status".into(),
        old: Some("draft".into()),
        new: Some("published".into()),
    });
    e
}

fn guest_event(i: usize) -> tagbust_guest::WriteEvent {
    tagbust_guest::WriteEvent::new("acme", "posts", tagbust_guest::Operation::Update)
        .with_ids([format!("{i}")])
        .with_context("author_id", &format!("{}", i % 50))
        .with_change("status", Some("draft"), Some("published"))
}

/// `TAGBUST_BENCH_PROFILE=N`: evaluate batches of N events (N = 0: only instantiate) for five
/// seconds and exit, for `perf record`. With `TAGBUST_BENCH_ROUNDS=R`, exactly R batches
/// instead, for instruction counts (`valgrind --tool=callgrind
/// --toggle-collect='*evaluate_here*'` counts only the evaluations); with
/// `TAGBUST_BENCH_NATIVE=1`, the same rounds of the native baseline (collect `*native_round*`).
fn profile(size: usize) {
    let rounds: Option<u64> = std::env::var("TAGBUST_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok());
    let start = std::time::Instant::now();
    let mut round = 0u64;
    let mut more = || {
        round += 1;
        rounds.map_or(start.elapsed().as_secs() < 5, |r| round <= r)
    };
    if std::env::var_os("TAGBUST_BENCH_NATIVE").is_some() {
        let rule = PublishedFeeds::init(&tagbust_guest::Context::empty()).expect("init");
        let events: Vec<tagbust_guest::WriteEvent> = (0..size).map(guest_event).collect();
        while more() {
            native_round(&rule, &events);
        }
        return;
    }
    let rule = tagbust_tests::load(components::PUBLISHED_FEEDS);
    let events: Vec<WriteEvent> = (0..size).map(host_event).collect();
    let batch = Batch::new("acme", &events).expect("one tenant");
    let (limits, config) = (Limits::default(), RuleConfig::default());
    while more() {
        if size == 0 {
            black_box(rule.check_instantiate(&limits)).expect("instantiates");
        } else {
            black_box(rule.evaluate(&batch, &config, &limits));
        }
    }
}

/// The native baseline: the rule's logic over `events`, as the table below times it.
#[inline(never)]
fn native_round(rule: &PublishedFeeds, events: &[tagbust_guest::WriteEvent]) {
    let ctx = tagbust_guest::Context::empty();
    let decisions: Vec<_> = events.iter().map(|e| rule.evaluate(e, &ctx)).collect();
    black_box(decisions);
}

/// `TAGBUST_BENCH_PEER=FILE`: writes the batch of 256 published-feeds events and the targets
/// tagbust's wasm rule answers for them to FILE (the Extism peer must answer the same), times
/// that batch as the table below does (`wasm/event`), prints `tagbust-ns-per-event N` and exits.
fn peer(path: &str) {
    let rule = tagbust_tests::load(components::PUBLISHED_FEEDS);
    let (limits, config) = (Limits::default(), RuleConfig::default());
    let events: Vec<WriteEvent> = (0..256).map(host_event).collect();
    let batch = Batch::new("acme", &events).expect("one tenant");
    let targets: Vec<_> = rule
        .evaluate(&batch, &config, &limits)
        .outcomes
        .into_iter()
        .map(|o| o.expect("published-feeds succeeds"))
        .collect();
    let file = serde_json::json!({ "events": events, "targets": targets });
    std::fs::write(path, file.to_string()).expect("writes the peer file");
    let samples = std::env::var("TAGBUST_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(31);
    let wasm = &mut || {
        black_box(rule.evaluate(&batch, &config, &limits));
    };
    let s = compare(samples, 8, &mut [wasm])[0];
    println!("tagbust-ns-per-event {:.1}", s.nanos() / 256.0);
}

fn main() {
    if let Ok(path) = std::env::var("TAGBUST_BENCH_PEER") {
        return peer(&path);
    }
    if let Some(n) = std::env::var("TAGBUST_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return profile(n);
    }
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let samples = if quick { 5 } else { 31 };
    let engine = engine();
    println!(
        "tagbust evaluate benchmark (pooling allocator: {}; {} samples per case, medians)\n",
        engine.is_pooling(),
        samples
    );

    // Compile + link + describe, fresh bytes each time.
    let bytes = std::fs::read(components::PUBLISHED_FEEDS).expect("built component");
    let mut n = 0u32;
    let load = &mut || {
        n += 1;
        let copy = unique_copy(&bytes, n);
        black_box(engine.load_bytes("bench.wasm", &copy).expect("loads"));
    };
    let load_stats = compare(if quick { 3 } else { 11 }, 1, &mut [load])[0];
    println!(
        "{}",
        row(
            &format!("load published-feeds ({} KiB)", bytes.len() / 1024),
            &load_stats
        )
    );

    let rule = tagbust_tests::load(components::PUBLISHED_FEEDS);
    let limits = Limits::default();
    let config = RuleConfig::default();
    let inst = &mut || rule.check_instantiate(&limits).expect("instantiates");
    let inst_stats = compare(samples, 200, &mut [inst])[0];
    println!("{}", row("fresh instance from InstancePre", &inst_stats));
    println!();

    let native_rule = PublishedFeeds::init(&tagbust_guest::Context::empty()).expect("init");
    let native_ctx = tagbust_guest::Context::empty();
    println!(
        "{:<10} {:>16} {:>16} {:>16} {:>10}",
        "batch", "wasm/event", "wasm-call/event", "native/event", "ratio"
    );
    for size in [1usize, 16, 256] {
        let host_events: Vec<WriteEvent> = (0..size).map(host_event).collect();
        let batch = Batch::new("acme", &host_events).expect("one tenant");
        let guest_events: Vec<tagbust_guest::WriteEvent> = (0..size).map(guest_event).collect();
        let iters = (2048 / size).max(4) as u32;
        let wasm = &mut || {
            let run = rule.evaluate(&batch, &config, &limits);
            debug_assert!(run.outcomes.iter().all(Result::is_ok));
            black_box(run);
        };
        let native = &mut || {
            let decisions: Vec<_> = guest_events
                .iter()
                .map(|e| native_rule.evaluate(e, &native_ctx))
                .collect();
            black_box(decisions);
        };
        let s = compare(samples, iters, &mut [wasm, native]);
        let per = |d: std::time::Duration| d / size as u32;
        let call = s[0].median.saturating_sub(inst_stats.median);
        let ratio = s[0].nanos() / s[1].nanos();
        println!(
            "{:<10} {:>16} {:>16} {:>16} {:>9.2}×",
            size,
            human(per(s[0].median)),
            human(per(call)),
            human(per(s[1].median)),
            ratio
        );
    }
    // The boundary alone: same events, a rule that returns nothing.
    let idle = tagbust_tests::load(components::MISBEHAVE);
    let idle_events: Vec<WriteEvent> = (0..256).map(|i| host_event_for("idle", i)).collect();
    let idle_batch = Batch::new("acme", &idle_events).expect("one tenant");
    let idle_run = &mut || {
        black_box(idle.evaluate(&idle_batch, &config, &limits))
            .outcomes
            .len()
    };
    let idle_stats = compare(
        samples,
        8,
        &mut [&mut || {
            idle_run();
        }],
    )[0];
    println!(
        "{:<10} {:>16} {:>16}   (same events, a rule returning nothing: the boundary's cost)",
        "256 idle",
        human(idle_stats.median / 256),
        human(idle_stats.median.saturating_sub(inst_stats.median) / 256),
    );
    println!(
        "\nwasm/event: the host's full cost per event (fresh Store + instance per batch, lower, \
         call, lift, checks); wasm-call/event: the same minus the fresh-instance median; \
         ratio: wasm/event over native/event."
    );
}
