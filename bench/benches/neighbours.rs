//! Noisy neighbours: a well-behaved tenant's end-to-end throughput alone, and while a hostile
//! tenant keeps submitting events whose rule loops until its deadline, blows its memory cap, or
//! instantiates slowly (a 24 MiB data segment); and, as the control, a well-behaved tenant
//! submitting as fast as it can. The host's failure cool-down (`HostOptions::failure_cooldown`,
//! on by default) makes a failing tenant wait as long as its failed calls burned, which holds a
//! looping tenant to about half a core however hard it submits; a heavy but *successful* rule
//! (the slow instantiation) competes for the cores like any busy tenant (compare the control). The cases run interleaved, sample by sample, in one process on one host,
//! so machine drift hits them alike; the drift is the median ratio to running alone.
//!
//! Run: `cargo bench --locked -p tagbust-bench --bench neighbours` (`TAGBUST_BENCH_QUICK=1` for
//! a short run). It uses every core it is given: the hostile tenant's evaluation runs on the
//! blocking pool beside the good tenant's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tagbust::{
    BoundRule, MemoryBackend, Operation, RuleSet, Tagbust, TenantSetup, Tenants, WriteEvent,
};
use tagbust_tests::bench::{median, publish};
use tagbust_tests::{components, load};

const CHUNK: usize = 256;

/// A neighbour: `submitters` tasks, each submitting one `resource` event of tenant `tenant` at
/// a time, for as long as the good tenant is measured.
struct Neighbour {
    label: &'static str,
    tenant: &'static str,
    resource: &'static str,
    submitters: usize,
}

const CASES: &[Neighbour] = &[
    Neighbour {
        label: "alone",
        tenant: "",
        resource: "",
        submitters: 0,
    },
    Neighbour {
        label: "beside a busy loop (100 ms deadline)",
        tenant: "evil",
        resource: "loop",
        submitters: 1,
    },
    Neighbour {
        label: "beside a rule sleeping forever (100 ms deadline)",
        tenant: "evil",
        resource: "sleep-forever",
        submitters: 1,
    },
    Neighbour {
        label: "beside a memory bomb (32 MiB cap)",
        tenant: "evil",
        resource: "alloc",
        submitters: 1,
    },
    Neighbour {
        label: "beside a slow instantiation (24 MiB)",
        tenant: "heavy",
        resource: "blobs",
        submitters: 1,
    },
    Neighbour {
        label: "beside 2 concurrent busy loops",
        tenant: "evil",
        resource: "loop",
        submitters: 2,
    },
    // The control: a well-behaved tenant submitting as fast as it can.
    Neighbour {
        label: "beside a busy well-behaved tenant",
        tenant: "busy",
        resource: "posts",
        submitters: 1,
    },
];

fn neighbour_event(n: &Neighbour) -> WriteEvent {
    if n.resource == "posts" {
        return publish(n.tenant, 7);
    }
    let mut e = WriteEvent::new(n.tenant, n.resource, Operation::Update);
    e.ids = vec!["7".into()];
    e
}

/// Good-tenant events per second while `n` runs beside it, and the neighbour's submissions
/// completed per second.
async fn sample(
    host: &Tagbust<MemoryBackend>,
    chunks: Vec<Vec<WriteEvent>>,
    n: &Neighbour,
) -> (f64, f64) {
    let events: usize = chunks.iter().map(Vec::len).sum();
    let stop = Arc::new(AtomicBool::new(false));
    let hostile: Vec<_> = (0..n.submitters)
        .map(|_| {
            let (host, stop, event) = (host.clone(), stop.clone(), neighbour_event(n));
            tokio::spawn(async move {
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let report = host.submit(vec![event.clone()]).await.expect("submit");
                    assert!(report.rule_failures <= 1);
                    done += 1;
                }
                done
            })
        })
        .collect();
    if n.submitters > 0 {
        // Let the neighbour get going before the clock starts.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    for chunk in chunks {
        host.submit(chunk).await.expect("good submit");
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut hostile_done = 0;
    for h in hostile {
        hostile_done += h.await.expect("hostile task");
    }
    (events as f64 / elapsed, hostile_done as f64 / elapsed)
}

fn main() {
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let (samples, events_per_sample) = if quick { (3, 20_000) } else { (9, 60_000) };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "tagbust noisy-neighbour benchmark: {events_per_sample} good events per sample (chunks \
         of {CHUNK}), {samples} samples, cases interleaved, {cores} core(s)\n"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let one = |path: &str| TenantSetup::new(RuleSet::new(vec![BoundRule::new(load(path))]));
    let tenants = Tenants::default()
        .with_tenant("good", one(components::PUBLISHED_FEEDS))
        .with_tenant("evil", one(components::MISBEHAVE))
        .with_tenant("heavy", one(components::BIG_DATA))
        .with_tenant("busy", one(components::PUBLISHED_FEEDS));
    let host = runtime.block_on(async {
        Tagbust::builder(Arc::new(MemoryBackend::new()))
            .tenants(tenants)
            .build()
            .expect("host builds")
    });
    let chunks: Vec<Vec<WriteEvent>> = (0..events_per_sample)
        .collect::<Vec<_>>()
        .chunks(CHUNK)
        .map(|c| c.iter().map(|&i| publish("good", i)).collect())
        .collect();

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    let mut neighbour: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    for _ in 0..samples {
        for (i, case) in CASES.iter().enumerate() {
            let (good, other) = runtime.block_on(sample(&host, chunks.clone(), case));
            rates[i].push(good);
            neighbour[i].push(other);
        }
        // Each case against the `alone` run of the same round.
        let alone = *rates[0].last().expect("alone ran");
        for (i, r) in rates.iter().enumerate() {
            ratios[i].push(r.last().expect("ran") / alone);
        }
    }
    for (i, case) in CASES.iter().enumerate() {
        let ratio = median(ratios[i].clone());
        let beside = if case.submitters > 0 {
            format!(
                "   neighbour {:>7.1} submissions/s",
                median(neighbour[i].clone())
            )
        } else {
            String::new()
        };
        println!(
            "{:<40} good tenant {:>9.0} events/s   ratio {:.3} (drift {:>+5.1}%){beside}",
            case.label,
            median(rates[i].clone()),
            ratio,
            100.0 * (ratio - 1.0),
        );
    }
    let stats = host.stats();
    for (rule, s) in &stats.rules {
        if !s.failures.is_empty() {
            println!("\n{rule}: failures by code {:?}", s.failures);
        }
    }
    runtime.block_on(host.shutdown()).expect("shutdown");
}
