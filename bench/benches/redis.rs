//! Redis, side by side in one run on a private server (no persistence, `SLOWLOG` threshold
//! 1 ms): tagged writes and tag invalidation through the API a user calls, against Symfony
//! Cache's `RedisTagAwareAdapter` doing the same work (`tests/peers/symfony.php`, when PHP and
//! Debian's `php-redis` and `php-symfony-cache` are installed: `scripts/bench-symfony.sh`
//! installs them) and against multi-key `UNLINK` of the same, existing keys on the same
//! connection and batch size (the limit); the Redis CPU per entry of each; every script call
//! slower than 1 ms (`SLOWLOG`); and submit → keys gone for `immediate` at 10,000 events/s.
//!
//! Workload (the issue's): 100,000 entries of 100 bytes, entry i tagged `t{i % 1000}`, one
//! hour TTL, written in batches of 1,000; then every tag invalidated, 100 tags per call, by the
//! default host and by one listing no keys for explain (`RedisOptions::listed_keys: 0`).
//!
//! Run: `cargo bench --locked -p tagbust-bench --bench redis` (needs `redis-server`; starts it
//! on port 6431, `TAGBUST_BENCH_REDIS_PORT` picks another; `TAGBUST_BENCH_QUICK=1` for one
//! sample; `TAGBUST_BENCH_REDIS_CPU=1` with the bench under `taskset -c 0` keeps Redis and
//! the clients on separate cores, so `SLOWLOG` shows calls, not preemption by the bench).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tagbust::backend::{RedisBackend, RedisOptions};
use tagbust::{NewEntry, Tagbust, Target};
use tagbust_tests::bench::median;
use tagbust_tests::{echo_host_on, emit};

use tagbust_tests::peer::{Private, Symfony};

const ENTRIES: usize = 100_000;
const TAGS: usize = 1_000;
const TAGS_PER_CALL: usize = 100;
const WRITE_BATCH: usize = 1_000;
/// Single `set` calls in flight at once (its own, smaller run).
const IN_FLIGHT: usize = 1_000;
const SINGLE_SETS: usize = 20_000;

fn entry(tenant: &str, i: usize) -> NewEntry {
    NewEntry {
        tenant: tenant.into(),
        key: format!("k{i}"),
        value: vec![b'x'; 100],
        tags: vec![format!("t{}", i % TAGS)],
        ttl: Some(Duration::from_secs(3600)),
        depends_on: Vec::new(),
    }
}

type Host = Tagbust<RedisBackend>;

/// Entries per second of `set_many` in batches of [`WRITE_BATCH`].
async fn write(host: &Host, tenant: &str) -> f64 {
    let cache = host.cache();
    let start = Instant::now();
    for from in (0..ENTRIES).step_by(WRITE_BATCH) {
        let batch = (from..from + WRITE_BATCH)
            .map(|i| entry(tenant, i))
            .collect();
        cache.set_many(batch).await.expect("set_many");
    }
    ENTRIES as f64 / start.elapsed().as_secs_f64()
}

/// Entries per second of single `set` calls, [`IN_FLIGHT`] at once.
async fn write_single(host: &Host, tenant: &str) -> f64 {
    let cache = host.cache();
    let start = Instant::now();
    futures_util::stream::iter(0..SINGLE_SETS)
        .map(|i| {
            let cache = cache.clone();
            async move { cache.set(entry(tenant, i)).await.expect("set") }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    SINGLE_SETS as f64 / start.elapsed().as_secs_f64()
}

/// Keys removed per second by `Tagbust::invalidate`, [`TAGS_PER_CALL`] tags per call.
async fn invalidate(host: &Host, tenant: &str) -> f64 {
    let start = Instant::now();
    let mut removed = 0;
    for from in (0..TAGS).step_by(TAGS_PER_CALL) {
        let targets = (from..from + TAGS_PER_CALL)
            .map(|t| Target::tag(format!("t{t}")))
            .collect();
        let report = host.invalidate(tenant, targets).await.expect("invalidate");
        removed += report.keys_removed;
    }
    let rate = removed as f64 / start.elapsed().as_secs_f64();
    assert_eq!(removed as usize, ENTRIES, "every entry removed");
    rate
}

/// Keys removed per second by `UNLINK` of the same existing entries, one command per tag
/// (its 100 keys), [`TAGS_PER_CALL`] commands per pipeline, on a connection like the
/// backend's (redis-rs's multiplexed `ConnectionManager`).
async fn unlink(conn: &mut redis::aio::ConnectionManager, tenant: &str) -> f64 {
    let start = Instant::now();
    let mut removed = 0u64;
    for from in (0..TAGS).step_by(TAGS_PER_CALL) {
        let mut pipe = redis::pipe();
        for t in from..from + TAGS_PER_CALL {
            let keys: Vec<String> = (t..ENTRIES)
                .step_by(TAGS)
                .map(|i| format!("tbbench:{{{tenant}}}:e:k{i}"))
                .collect();
            pipe.cmd("UNLINK").arg(keys);
        }
        let counts: Vec<u64> = pipe.query_async(conn).await.expect("unlink");
        removed += counts.iter().sum::<u64>();
    }
    let rate = removed as f64 / start.elapsed().as_secs_f64();
    assert_eq!(removed as usize, ENTRIES, "every seeded key existed");
    rate
}

/// Submit → keys gone for `immediate` at 10,000 events/s (batches of 10 each millisecond,
/// open loop), each event removing one existing key; latencies in ms, sorted, measured two
/// ways: from the moment the generator calls `submit` (what the host costs), and from the
/// tick's due time (adds how late tokio's 1 ms timer woke the generator: not the host's).
async fn latency(host: &Host, seconds: u64) -> (Vec<f64>, Vec<f64>) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0usize;
    let mut tasks = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        let due = tick.tick().await;
        let events = (0..10)
            .map(|_| {
                n += 1;
                emit("lat", &format!("key=k{}", n % ENTRIES))
            })
            .collect();
        let host = host.clone();
        let called = Instant::now();
        tasks.push(tokio::spawn(async move {
            let report = host.submit(events).await.expect("submit");
            assert_eq!(
                report.keys_removed, 10,
                "each event removes an existing key"
            );
            let ms = |from: Instant| from.elapsed().as_secs_f64() * 1e3;
            (ms(called), ms(due.into_std()))
        }));
    }
    let (mut from_call, mut from_due) = (Vec::new(), Vec::new());
    for task in tasks {
        let (call, due) = task.await.expect("submit task");
        from_call.push(call);
        from_due.push(due);
    }
    from_call.sort_by(f64::total_cmp);
    from_due.sort_by(f64::total_cmp);
    (from_call, from_due)
}

fn main() {
    let port = std::env::var("TAGBUST_BENCH_REDIS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(6431);
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let samples = if quick { 1 } else { 5 };
    let server = Private::start(port);
    let url = server.url();
    let symfony = Symfony::find();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The default host, and one listing no keys for explain (`listed_keys: 0`).
    let host_listing = |listed_keys: usize| {
        runtime.block_on(async {
            let options = RedisOptions {
                prefix: "tbbench".into(),
                listed_keys,
                ..RedisOptions::default()
            };
            let backend = RedisBackend::connect(&url, options).await.expect("connect");
            echo_host_on(backend, Default::default(), Default::default())
        })
    };
    let host = host_listing(RedisOptions::default().listed_keys);
    let unlisted = host_listing(0);
    let mut conn = runtime.block_on(async {
        let client = redis::Client::open(url.as_str()).expect("url");
        redis::aio::ConnectionManager::new(client)
            .await
            .expect("connect")
    });
    println!(
        "tagbust redis benchmark against a private redis-server on port {port}: {samples} sample(s), {ENTRIES} entries, {TAGS} tags\n"
    );
    let (mut sf_w, mut sf_i, mut sf_wc, mut sf_ic) = (vec![], vec![], vec![], vec![]);
    let (mut tb_w, mut tb_s, mut tb_i, mut tb_wc, mut tb_ic) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut ul, mut tb_i0) = (vec![], vec![]);
    let (mut write_cmds, mut invalidate_cmds) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        if let Some(symfony) = &symfony {
            let run = symfony.run(&server, ENTRIES, TAGS, TAGS_PER_CALL);
            sf_w.push(run.writes);
            sf_i.push(run.invalidations);
            sf_wc.push(run.write_cpu_us / ENTRIES as f64);
            sf_ic.push(run.invalidate_cpu_us / ENTRIES as f64);
        }
        runtime.block_on(async {
            server.commandstats();
            let cpu = server.cpu_us();
            tb_w.push(write(&host, "a").await);
            tb_wc.push((server.cpu_us() - cpu) / ENTRIES as f64);
            write_cmds = server.commandstats();
            let cpu = server.cpu_us();
            tb_i.push(invalidate(&host, "a").await);
            tb_ic.push((server.cpu_us() - cpu) / ENTRIES as f64);
            invalidate_cmds = server.commandstats();
            tb_s.push(write_single(&host, "s").await);
            write(&host, "a").await;
            ul.push(unlink(&mut conn, "a").await);
            write(&host, "a").await;
            tb_i0.push(invalidate(&unlisted, "a").await);
        });
        server.flush();
    }
    let row = |name: &str, v: Vec<f64>, unit: &str| {
        let m = median(v);
        println!("{name:<58} median {m:>10.0} {unit}");
        m
    };
    let rowf = |name: &str, v: Vec<f64>| {
        let m = median(v);
        println!("{name:<58} median {m:>10.2} µs");
        m
    };
    println!("tagged writes, batches of {WRITE_BATCH}");
    let w = row("  tagbust Cache::set_many", tb_w, "entries/s");
    row(
        &format!("  tagbust Cache::set, {IN_FLIGHT} in flight"),
        tb_s,
        "entries/s",
    );
    rowf("  tagbust Redis CPU per entry", tb_wc);
    if symfony.is_some() {
        let s = row("  Symfony RedisTagAwareAdapter (commit)", sf_w, "entries/s");
        rowf("  Symfony Redis CPU per entry", sf_wc);
        println!("  ratio tagbust / Symfony {:>45.2}×", w / s);
    }
    println!("tag invalidation, {TAGS_PER_CALL} tags per call");
    let i = row("  tagbust Tagbust::invalidate", tb_i, "keys/s");
    let i0 = row(
        "  tagbust Tagbust::invalidate, listed_keys 0",
        tb_i0,
        "keys/s",
    );
    rowf("  tagbust Redis CPU per key", tb_ic);
    let u = row("  UNLINK of the same keys, 100 per command", ul, "keys/s");
    println!("  ratio tagbust / UNLINK {:>45.0}%", 100.0 * i / u);
    if symfony.is_some() {
        let s = row("  Symfony invalidateTags", sf_i, "keys/s");
        rowf("  Symfony Redis CPU per key", sf_ic);
        println!("  ratio tagbust / Symfony {:>45.2}×", i / s);
        println!(
            "  ratio tagbust (listed_keys 0) / Symfony {:>29.2}×",
            i0 / s
        );
    } else {
        println!("  (Symfony skipped: run scripts/bench-symfony.sh, which installs it)");
    }
    // Where Redis's time goes (the last sample): commands a script runs are counted apart,
    // and the script's own line holds them too.
    for (phase, cmds) in [("writes", write_cmds), ("invalidations", invalidate_cmds)] {
        println!(
            "\nRedis time per entry in tagbust's {phase} (last sample; a script's line includes the commands it ran):"
        );
        for (name, calls, usec) in cmds
            .iter()
            .filter(|c| c.0 != "INFO" && c.0 != "CONFIG|RESETSTAT")
        {
            println!(
                "  {name:<14} {:>6.2} calls/entry {:>8.2} µs/call {:>6.2} µs/entry",
                *calls as f64 / ENTRIES as f64,
                usec / *calls as f64,
                usec / ENTRIES as f64
            );
        }
    }
    let slow = server.slowlog();
    println!(
        "\nSLOWLOG (calls over 1 ms) during the writes and invalidations: {} of tagbust's, {} of the UNLINK baseline's, {} of Symfony's; longest tagbust call {} µs",
        slow.ours.len(),
        slow.baseline.len(),
        slow.peer,
        slow.longest_ours
    );
    let mut ours = slow.ours.clone();
    ours.sort_by_key(|l| {
        std::cmp::Reverse(l.split(' ').next().and_then(|n| n.parse::<u64>().ok()))
    });
    for line in ours.iter().take(8) {
        println!("  {line}");
    }

    // Latency: three runs in a row, each on freshly written keys.
    let seconds = if quick { 1 } else { 3 };
    let (mut slow_calls, mut slow_longest) = (Vec::new(), 0);
    for run in 1..=3 {
        runtime.block_on(write(&host, "lat"));
        // The setup's writes are not part of the run: their SLOWLOG entries go.
        server.slowlog();
        let (call, due) = runtime.block_on(latency(&host, seconds));
        let at = |l: &[f64], q: f64| l[((l.len() - 1) as f64 * q) as usize];
        println!(
            "submit → keys gone at 10,000 events/s, run {run} ({} batches of 10): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms from the submit call; p50 {:.2} ms, p99 {:.2} ms from the tick's due time",
            call.len(),
            at(&call, 0.5),
            at(&call, 0.99),
            at(&call, 1.0),
            at(&due, 0.5),
            at(&due, 0.99),
        );
        let slow = server.slowlog();
        slow_calls.extend(slow.ours);
        slow_longest = slow_longest.max(slow.longest_ours);
        server.flush();
    }
    println!(
        "SLOWLOG during the latency runs: {} of tagbust's calls over 1 ms (longest {} µs)",
        slow_calls.len(),
        slow_longest
    );
    for line in slow_calls.iter().take(5) {
        println!("  {line}");
    }
    runtime.block_on(host.shutdown()).expect("shutdown");
    runtime.block_on(unlisted.shutdown()).expect("shutdown");
}
