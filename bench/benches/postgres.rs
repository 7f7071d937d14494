//! The PostgreSQL commit-log source: committed row changes per second turned into applied
//! invalidations, against the rate PostgreSQL commits the same load with no slot being read
//! (rounds interleaved in one run, medians), and commit → keys gone latency (p50/p99) of
//! single-row commits, on the in-memory backend and on Redis.
//!
//! The host runs the `bulk-models` rule (each row kills its `things:{id}` tag and the
//! `things:queries` tag). Load: transactions of 100 rows (`UPDATE … WHERE id BETWEEN`),
//! written by one `psql` process. Run: `cargo bench --locked -p tagbust-bench --bench
//! postgres` (starts a private PostgreSQL on port 24336 and redis-server on 6424;
//! `TAGBUST_BENCH_QUICK=1` for a short run). Not part of CI.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagbust::backend::{RedisBackend, RedisOptions};
use tagbust::sources::postgres::{self, PgConfig, PgStats};
use tagbust::{Backend, BoundRule, MemoryBackend, RuleSet, Tagbust, TenantSetup, Tenants};
use tagbust_tests::bench::median;
use tagbust_tests::postgres::TestPostgres;
use tagbust_tests::{TestRedis, components, entry, load};
use tokio_util::sync::CancellationToken;

const ROWS: usize = 20_000;
const PER_TX: usize = 100;

fn host<B: Backend>(backend: B) -> Tagbust<B> {
    let rules = RuleSet::new(vec![BoundRule::new(load(components::BULK_MODELS))]);
    Tagbust::builder(Arc::new(backend))
        .tenants(Tenants::new(TenantSetup::new(rules)))
        .build()
        .expect("host builds")
}

/// The load: `rows` row changes in transactions of `PER_TX`; how long psql took.
fn load_sql(pg: &TestPostgres, rows: usize) -> Duration {
    let mut sql = String::new();
    for tx in 0..rows / PER_TX {
        let (a, b) = (tx * PER_TX + 1, (tx + 1) * PER_TX);
        sql.push_str(&format!(
            "UPDATE things SET v = v + 1 WHERE id BETWEEN {a} AND {b};\n"
        ));
    }
    let began = Instant::now();
    pg.psql(&sql);
    began.elapsed()
}

struct Attached {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    slot: String,
}

async fn attach<B: Backend>(h: &Tagbust<B>, pg: &TestPostgres, slot: &str) -> Attached {
    let mut c = PgConfig::new("127.0.0.1", "postgres", "postgres", slot, "bench");
    c.port = pg.port;
    c.create = true;
    c.tenant = postgres::TenantFrom::Fixed("a".into());
    c.status_interval = Duration::from_millis(20);
    let stats = Arc::new(PgStats::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (h, stop, stats) = (h.clone(), stop.clone(), stats.clone());
        async move { postgres::run(h, c, stop, stats).await.expect("source runs") }
    });
    while !stats.snapshot().connected {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Attached {
        stop,
        task,
        slot: slot.to_owned(),
    }
}

async fn detach(a: Attached, pg: &TestPostgres) {
    a.stop.cancel();
    let _ = a.task.await;
    // The walsender may take a moment to release the slot.
    for _ in 0..100 {
        let sql = format!("SELECT pg_drop_replication_slot('{}');", a.slot);
        if pg.try_psql(&sql).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Row changes per second applied: from the load's start until the slot confirms its end.
async fn attached_rate<B: Backend>(
    h: &Tagbust<B>,
    pg: &TestPostgres,
    slot: &str,
    rows: usize,
) -> f64 {
    let a = attach(h, pg, slot).await;
    let began = Instant::now();
    load_sql(pg, rows);
    let target = pg.current_lsn();
    while pg.confirmed(slot) < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = rows as f64 / began.elapsed().as_secs_f64();
    detach(a, pg).await;
    rate
}

/// Commit → key gone, for `n` single-row commits one after another.
async fn latencies<B: Backend>(
    h: &Tagbust<B>,
    pg: &TestPostgres,
    slot: &str,
    n: usize,
) -> Vec<f64> {
    let a = attach(h, pg, slot).await;
    let mut psql = pg.psql_command().spawn().expect("psql");
    let mut stdin = psql.stdin.take().expect("stdin");
    let mut out = Vec::with_capacity(n);
    for i in 1..=n {
        let key = format!("lat:{i}");
        h.cache()
            .set(entry("a", &key, &[&format!("things:{i}")]))
            .await
            .expect("set");
        let began = Instant::now();
        writeln!(stdin, "UPDATE things SET v = v + 1 WHERE id = {i};").expect("write");
        stdin.flush().expect("flush");
        while h.cache().get("a", &key).await.expect("get").is_some() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        out.push(began.elapsed().as_secs_f64() * 1e3);
    }
    drop(stdin);
    let _ = psql.wait();
    detach(a, pg).await;
    out
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let quick = std::env::var_os("TAGBUST_BENCH_QUICK").is_some();
    let (rows, rounds, lat_n) = if quick {
        (5_000, 2, 50)
    } else {
        (ROWS, 3, 300)
    };
    let pg = TestPostgres::start("bench", 24336, &[]);
    pg.psql(&format!(
        "CREATE TABLE things (id int PRIMARY KEY, v int);
         INSERT INTO things SELECT g, 0 FROM generate_series(1, {ROWS}) g;
         CREATE PUBLICATION bench FOR TABLE things;"
    ));
    let redis = TestRedis::start("bench-pg", 6424);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mem = host(MemoryBackend::new());
        let options = RedisOptions {
            prefix: "tbbenchpg".into(),
            ..RedisOptions::default()
        };
        let red = host(RedisBackend::connect(&redis.url(), options).await.expect("redis"));
        let (mut base, mut on_mem, mut on_redis) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..rounds {
            base.push(rows as f64 / load_sql(&pg, rows).as_secs_f64());
            on_mem.push(attached_rate(&mem, &pg, &format!("m{r}"), rows).await);
            on_redis.push(attached_rate(&red, &pg, &format!("r{r}"), rows).await);
        }
        let b = median(base);
        let (m, rd) = (median(on_mem), median(on_redis));
        println!("row changes/s ({rows} rows in transactions of {PER_TX}, median of {rounds} interleaved rounds):");
        println!("  PostgreSQL commits, no slot read      {b:>10.0}");
        println!("  applied through tagbust, memory       {m:>10.0}  ({:.2}x the commit rate)", m / b);
        println!("  applied through tagbust, redis        {rd:>10.0}  ({:.2}x the commit rate)", rd / b);
        let lm = latencies(&mem, &pg, "lm", lat_n).await;
        let lr = latencies(&red, &pg, "lr", lat_n).await;
        println!("commit → key gone, {lat_n} single-row commits (ms, from the statement sent to psql):");
        println!("  memory  p50 {:.2}  p99 {:.2}", pct(lm.clone(), 0.5), pct(lm, 0.99));
        println!("  redis   p50 {:.2}  p99 {:.2}", pct(lr.clone(), 0.5), pct(lr, 0.99));
        let _ = mem.shutdown().await;
        let _ = red.shutdown().await;
    });
}
