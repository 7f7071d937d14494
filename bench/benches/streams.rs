//! Redis Streams intake: events per second through one consumer and through two consumers
//! of one group in the same process (samples interleaved, medians), and the end-to-end lag
//! (XADD → keys gone) at a steady 10,000 events/s through one consumer.
//!
//! The host runs the `echo` rule on the in-memory backend, so the numbers are the source's
//! and the host's, not the cache's. Run: `cargo bench --locked -p tagbust-bench --bench
//! streams` (starts a private redis-server on port 6398; `TAGBUST_BENCH_QUICK=1` for a
//! short run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tagbust::sources::streams::{self, StreamConfig, StreamStats};
use tagbust::{HostOptions, MemoryBackend, Relationships, Tagbust};
use tagbust_tests::bench::median;
use tagbust_tests::{TestRedis, echo_host, emit, entry};
use tokio_util::sync::CancellationToken;

const GROUP: &str = "bench";

fn config(server: &TestRedis, stream: &str, consumer: &str) -> StreamConfig {
    let mut c = StreamConfig::new(&server.url(), stream, GROUP, consumer);
    c.block = Duration::from_millis(50);
    c
}

fn produce(server: &TestRedis, stream: &str, prefix: &str, n: usize) {
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let e = serde_json::to_string(&emit("a", &format!("key={prefix}{i}"))).expect("json");
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("event")
                .arg(e)
                .ignore();
        }
        let () = pipe.query(&mut conn).expect("XADD");
    }
}

/// Events per second for `n` entries already in the stream, read by `consumers` consumers.
async fn throughput(
    server: &TestRedis,
    host: &Tagbust<MemoryBackend>,
    stream: &str,
    n: usize,
    consumers: usize,
) -> f64 {
    produce(server, stream, "t", n);
    let stop = CancellationToken::new();
    let began = Instant::now();
    let mut running = Vec::new();
    for k in 0..consumers {
        let stats = Arc::new(StreamStats::default());
        let cfg = config(server, stream, &format!("c{k}"));
        let task = tokio::spawn(streams::run(host.clone(), cfg, stop.clone(), stats.clone()));
        running.push((stats, task));
    }
    let acked = || -> u64 {
        running
            .iter()
            .map(|(s, _)| s.snapshot().entries_acked)
            .sum()
    };
    while acked() < n as u64 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let rate = n as f64 / began.elapsed().as_secs_f64();
    stop.cancel();
    for (_, task) in running {
        task.await.expect("no panic").expect("clean end");
    }
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let _: () = redis::cmd("DEL").arg(stream).query(&mut conn).expect("DEL");
    rate
}

/// Lag from XADD to the key gone, for `seconds` at `rate` events/s through one consumer.
async fn lag(
    server: &TestRedis,
    host: &Tagbust<MemoryBackend>,
    rate: usize,
    seconds: usize,
) -> Vec<Duration> {
    let n = rate * seconds;
    let cache = host.cache();
    for i in 0..n {
        cache
            .set(entry("a", &format!("l{i}"), &[]))
            .await
            .expect("set");
    }
    let stop = CancellationToken::new();
    let stats = Arc::new(StreamStats::default());
    let source = tokio::spawn(streams::run(
        host.clone(),
        config(server, "lag", "c0"),
        stop.clone(),
        stats.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = server.url();
    // 10 entries per millisecond, each stamped with its batch's send time.
    let producer = tokio::task::spawn_blocking(move || {
        let mut conn = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("connect");
        let per_tick = rate / 1000;
        let start = Instant::now();
        let mut sent = Vec::with_capacity(n);
        for tick in 0..n / per_tick {
            let due = start + Duration::from_millis(tick as u64);
            while Instant::now() < due {
                std::thread::sleep(Duration::from_micros(50));
            }
            let mut pipe = redis::pipe();
            for j in 0..per_tick {
                let i = tick * per_tick + j;
                let e = serde_json::to_string(&emit("a", &format!("key=l{i}"))).expect("json");
                pipe.cmd("XADD")
                    .arg("lag")
                    .arg("*")
                    .arg("event")
                    .arg(e)
                    .ignore();
            }
            let at = Instant::now();
            let () = pipe.query(&mut conn).expect("XADD");
            sent.extend(std::iter::repeat_n(at, per_tick));
        }
        sent
    });
    // One consumer applies in stream order: watch the keys disappear in that order.
    let mut gone = Vec::with_capacity(n);
    while gone.len() < n {
        while gone.len() < n
            && cache
                .get("a", &format!("l{}", gone.len()))
                .await
                .expect("get")
                .is_none()
        {
            gone.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
    let sent = producer.await.expect("producer");
    stop.cancel();
    source.await.expect("no panic").expect("clean end");
    let mut lags: Vec<Duration> = sent
        .iter()
        .zip(&gone)
        .map(|(s, g)| g.saturating_duration_since(*s))
        .collect();
    lags.sort();
    lags
}

fn main() {
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let (n, samples, seconds) = if quick { (5_000, 3, 2) } else { (20_000, 5, 5) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = TestRedis::start("bench-streams", 6398);
    runtime.block_on(async {
        let host = echo_host(Relationships::new(), HostOptions::default());
        let (mut one, mut two) = (Vec::new(), Vec::new());
        for s in 0..samples {
            one.push(throughput(&server, &host, &format!("tp1-{s}"), n, 1).await);
            two.push(throughput(&server, &host, &format!("tp2-{s}"), n, 2).await);
        }
        let (one, two) = (median(one), median(two));
        println!("streams intake, {n} entries of one event, in-memory backend, {samples} samples");
        println!("  one consumer                 {one:>10.0} events/s (median)");
        println!("  two consumers, one group     {two:>10.0} events/s (median)  ratio {:.2}", two / one);
        let lags = lag(&server, &host, 10_000, seconds).await;
        let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
        println!(
            "end-to-end lag at 10,000 events/s for {seconds} s (XADD → key gone), one consumer: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3
        );
        host.shutdown().await.expect("shutdown");
    });
}
