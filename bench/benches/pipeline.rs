//! End-to-end throughput of the embedded host on the in-memory backend, side by side with
//! rule evaluation alone (the evaluation the host does, and no more: the share's baseline;
//! beside it the public `evaluate_owned`, which also keeps each target in the rules'
//! outcomes), and the coalescing count.
//!
//! Run on one core: `taskset -c 0 cargo bench --locked -p tagbust-bench --bench pipeline`
//! (`TAGBUST_BENCH_QUICK=1` for a short run; `--features mimalloc` to measure with mimalloc
//! as the global allocator, which services embedding the host may choose).
//!
//! `TAGBUST_BENCH_PROFILE=host` (or `eval`) runs only that case, for `perf record` or
//! callgrind: the host end to end with the explain log on, or evaluation alone as the host
//! evaluates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tagbust::{
    BoundRule, HostOptions, MemoryBackend, Relationships, RuleSet, Tagbust, TenantSetup, Tenants,
    WriteEvent,
};
use tagbust_tests::bench::{median, publish};
use tagbust_tests::{components, load};

const CHUNK: usize = 256;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let (samples, events_per_sample) = if quick { (3, 20_000) } else { (9, 100_000) };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let allocator = if cfg!(feature = "mimalloc") {
        "mimalloc"
    } else {
        "system"
    };
    println!(
        "tagbust pipeline benchmark: {events_per_sample} events per sample, {samples} samples, \
         chunks of {CHUNK}, {allocator} allocator, {cores} core(s) available{}\n",
        if cores > 1 {
            " (pin with `taskset -c 0` for the one-core figure)"
        } else {
            ""
        }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rule = load(components::PUBLISHED_FEEDS);
    let rules = RuleSet::new(vec![BoundRule::new(rule)]);
    let chunks: Vec<Vec<WriteEvent>> = (0..events_per_sample)
        .collect::<Vec<_>>()
        .chunks(CHUNK)
        .map(|c| c.iter().map(|&i| publish("acme", i)).collect())
        .collect();

    let run_host = |explain_capacity: usize| {
        // The whole pipeline: validate, evaluate, plan, route, apply (3 targets per event).
        let host = runtime.block_on(async {
            Tagbust::builder(Arc::new(MemoryBackend::new()))
                .tenants(Tenants::new(TenantSetup::new(rules.clone())))
                .options(HostOptions {
                    explain_capacity,
                    ..HostOptions::default()
                })
                .build()
                .expect("host builds")
        });
        // The caller hands its events over; building them is not the host's cost.
        let owned: Vec<Vec<WriteEvent>> = chunks.clone();
        let start = Instant::now();
        runtime.block_on(async {
            for chunk in owned {
                host.submit(chunk).await.expect("submit");
            }
        });
        let rate = events_per_sample as f64 / start.elapsed().as_secs_f64();
        runtime.block_on(host.shutdown()).expect("shutdown");
        rate
    };
    let profile = std::env::var("TAGBUST_BENCH_PROFILE").ok();
    // Evaluation alone, same events and chunks, handed over the same way: moved to a thread
    // of its own, as the host moves them to its blocking pool, so in both cases the events
    // are freed on a thread other than the one that built them. (Measured 2026-12-03: on the
    // building thread it ran 3-9% slower, not faster, with glibc.) `as_host` evaluates as the
    // host does (`evaluate_for_plan`: each target moves into the plan), the share's baseline;
    // otherwise through the public `evaluate_owned`, which also keeps every target in the
    // rules' outcomes: more work than the host's evaluation, shown for comparison.
    let eval_alone = |as_host: bool| {
        let owned: Vec<Vec<WriteEvent>> = chunks.clone();
        let start = Instant::now();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    for chunk in owned {
                        std::hint::black_box(if as_host {
                            rules.evaluate_for_plan(chunk)
                        } else {
                            rules.evaluate_owned(chunk)
                        });
                    }
                })
                .join()
                .expect("evaluation thread");
        });
        events_per_sample as f64 / start.elapsed().as_secs_f64()
    };
    match profile.as_deref() {
        Some("host") => {
            for _ in 0..samples {
                run_host(HostOptions::default().explain_capacity);
            }
            return;
        }
        Some("eval") => {
            for _ in 0..samples {
                eval_alone(true);
            }
            return;
        }
        Some(other) => panic!("TAGBUST_BENCH_PROFILE={other}: expected `host` or `eval`"),
        None => {}
    }
    let mut host_rates = Vec::new();
    let mut quiet_rates = Vec::new();
    let mut eval_rates = Vec::new();
    let mut kept_rates = Vec::new();
    for _ in 0..samples {
        host_rates.push(run_host(HostOptions::default().explain_capacity));
        quiet_rates.push(run_host(0));
        eval_rates.push(eval_alone(true));
        kept_rates.push(eval_alone(false));
    }
    let (h, e) = (median(host_rates.clone()), median(eval_rates.clone()));
    println!("end to end (host + in-memory backend)   median {h:>12.0} events/s");
    println!(
        "end to end, explain log off              median {:>12.0} events/s",
        median(quiet_rates)
    );
    println!("rule evaluation alone, as the host does  median {e:>12.0} events/s");
    println!(
        "evaluation keeping targets (evaluate_owned) median {:>9.0} events/s",
        median(kept_rates)
    );
    println!(
        "pipeline share of the cost              {:>19.1}%",
        100.0 * (1.0 - h / e)
    );
    // The same share per sample, the host beside the evaluation run in the same round: how
    // far one run's figure can be trusted on a noisy machine.
    let mut paired: Vec<f64> = host_rates
        .iter()
        .zip(&eval_rates)
        .map(|(h, e)| 100.0 * (1.0 - h / e))
        .collect();
    paired.sort_by(f64::total_cmp);
    println!(
        "  per sample: median {:.1}%, lowest {:.1}%, highest {:.1}% ({} samples)",
        paired[paired.len() / 2],
        paired[0],
        paired[paired.len() - 1],
        paired.len()
    );

    // Coalescing: 10,000 events on 100 distinct tags inside one window.
    let echo = load(components::ECHO);
    let coalesced = runtime.block_on(async {
        let host = Tagbust::builder(Arc::new(MemoryBackend::new()))
            .tenants(Tenants::new(
                TenantSetup::new(RuleSet::new(vec![BoundRule::new(echo)]))
                    .with_relationships(Relationships::new()),
            ))
            .options(HostOptions {
                batch_window: Duration::from_secs(5),
                ..HostOptions::default()
            })
            .build()
            .expect("host builds");
        for c in (0..10_000).collect::<Vec<usize>>().chunks(CHUNK) {
            let events = c
                .iter()
                .map(|i| tagbust_tests::emit("acme", &format!("tag=t{}@batched", i % 100)))
                .collect();
            host.submit(events).await.expect("submit");
        }
        host.flush().await.expect("flush");
        host.stats()
    });
    println!(
        "\ncoalescing: {} batched targets → {} tag invalidations (ratio {:.0}×)",
        coalesced.batched_targets,
        coalesced.ops_applied.get("tag").copied().unwrap_or(0),
        coalesced.coalescing_ratio
    );
}
