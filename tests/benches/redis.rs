//! Redis: sustained key invalidations per second through the backend, side by side in the same
//! run with `redis-benchmark -P 16` sending `UNLINK` to the same server (the practical limit);
//! and the latency from submit to keys gone for `immediate` at 10,000 events/s.
//!
//! Run: `cargo bench --locked -p tagbust-tests --bench redis` (needs redis-server and
//! redis-benchmark; `TAGBUST_BENCH_REDIS` picks the server, default
//! `redis://127.0.0.1:6379/12`; keys use the prefixes `tbbench` and `tbbench-rb`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tagbust::backend::{RedisBackend, RedisOptions};
use tagbust::{
    Backend, BoundRule, HostOptions, Op, OpKind, RuleSet, Tagbust, TenantSetup, Tenants,
};
use tagbust_tests::bench::median;
use tagbust_tests::{components, emit, load};

const KEYS: usize = 20_000;
const BATCH: usize = 1_000;

fn seed(url: &str) {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client.get_connection().expect("connect");
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.cmd("HSET")
            .arg(format!("tbbench:{{a}}:e:k{i}"))
            .arg("v")
            .arg("x")
            .ignore();
    }
    let () = pipe.query(&mut conn).expect("seed");
}

fn redis_benchmark(url: &str) -> f64 {
    let info = redis::Client::open(url)
        .expect("url")
        .get_connection_info()
        .clone();
    let (host, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
        other => panic!("tcp only: {other:?}"),
    };
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            &host,
            "-p",
            &port.to_string(),
            "-n",
            "200000",
            "-P",
            "16",
            "-q",
        ])
        .args(["UNLINK", "tbbench-rb:__rand_int__"])
        .output()
        .expect("redis-benchmark (Debian's redis-tools)");
    let text = String::from_utf8_lossy(&out.stdout);
    // "UNLINK tbbench-rb:__rand_int__: 123456.79 requests per second, p50=…"
    text.split("requests per second")
        .next()
        .and_then(|s| s.rsplit(": ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read redis-benchmark output: {text}"))
}

fn main() {
    let url =
        std::env::var("TAGBUST_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/12".into());
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let samples = if quick { 3 } else { 7 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backend = runtime
        .block_on(RedisBackend::connect(
            &url,
            RedisOptions {
                prefix: "tbbench".into(),
                ..RedisOptions::default()
            },
        ))
        .expect("connect");
    println!("tagbust redis benchmark against {url}: {samples} samples\n");

    let mut ours = Vec::new();
    let mut limit = Vec::new();
    for _ in 0..samples {
        seed(&url);
        let ops: Vec<Op> = (0..KEYS)
            .map(|i| Op {
                tenant: "a".into(),
                kind: OpKind::Key,
                value: format!("k{i}"),
            })
            .collect();
        let start = Instant::now();
        let removed: u64 = runtime.block_on(async {
            let mut removed = 0;
            for chunk in ops.chunks(BATCH) {
                let out = backend.apply(chunk).await.expect("apply");
                removed += out.iter().map(|o| o.removed).sum::<u64>();
            }
            removed
        });
        assert_eq!(removed as usize, KEYS, "every seeded key removed");
        ours.push(KEYS as f64 / start.elapsed().as_secs_f64());
        limit.push(redis_benchmark(&url));
    }
    let (o, l) = (median(ours), median(limit));
    println!("key invalidations applied (batches of {BATCH})   median {o:>10.0} keys/s");
    println!("redis-benchmark -P 16 UNLINK                 median {l:>10.0} ops/s");
    println!(
        "ratio                                        {:>17.1}%\n",
        100.0 * o / l
    );

    // Latency: immediate invalidations submitted at 10,000 events/s (10 per millisecond),
    // from the moment each batch was due until submit returned (its keys are gone then).
    let rules = RuleSet::new(vec![BoundRule::new(load(components::ECHO))]);
    let host = runtime.block_on(async {
        Tagbust::builder(Arc::new(
            RedisBackend::connect(
                &url,
                RedisOptions {
                    prefix: "tbbench".into(),
                    ..RedisOptions::default()
                },
            )
            .await
            .expect("connect"),
        ))
        .tenants(Tenants::new(TenantSetup::new(rules)))
        .options(HostOptions::default())
        .build()
        .expect("host builds")
    });
    let seconds = if quick { 1 } else { 3 };
    // Open loop, as requests arrive at a service: each batch is submitted on its own task when
    // due, whether or not earlier ones are done, and timed from when it was due.
    let latencies = runtime.block_on(async {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n = 0u64;
        let mut tasks = Vec::new();
        while start.elapsed() < Duration::from_secs(seconds) {
            let due = tick.tick().await;
            let events = (0..10)
                .map(|_| {
                    n += 1;
                    emit("a", &format!("key=k{}", n % KEYS as u64))
                })
                .collect();
            let host = host.clone();
            tasks.push(tokio::spawn(async move {
                host.submit(events).await.expect("submit");
                due.elapsed().as_secs_f64() * 1e3
            }));
        }
        let mut latencies = Vec::with_capacity(tasks.len());
        for task in tasks {
            latencies.push(task.await.expect("submit task"));
        }
        latencies
    });
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    println!(
        "submit → keys gone at 10,000 events/s ({} batches of 10): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    runtime.block_on(host.shutdown()).expect("shutdown");
    // Leave nothing behind.
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client.get_connection().expect("connect");
    for pattern in ["tbbench:*", "tbbench-rb:*"] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: Result<(), _> = redis::cmd("UNLINK").arg(chunk).query(&mut conn);
        }
    }
}
