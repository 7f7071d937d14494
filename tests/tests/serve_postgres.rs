//! `tagbust serve` fed by PostgreSQL's commit log, as real processes: a private PostgreSQL
//! cluster (`wal_level = logical`, ports 24331–24335), a private Redis holding the cache
//! (ports 6421–6423), the daemon with the `bulk-models`, `context-hierarchy` and
//! `table-patterns` rules. Writes are plain SQL through `psql`: no application code calls
//! tagbust. "Applied" is read from the slot itself: once its confirmed position passes a
//! commit, every invalidation of that commit has been applied (the acknowledgement rule this
//! binary exists to check).
//!
//! - the seeds as SQL (000 bulk delete → bulk create → list, 001 a parent's UPDATE, 003 a
//!   booking: nothing before `COMMIT`, nothing after `ROLLBACK`), a `psql` UPDATE, TRUNCATE,
//!   a 50,000-row DELETE (one event; time until its keys are gone), 1,000 statements in one
//!   transaction (one event), explain showing the commit's LSN and xid;
//! - kill -9 of the daemon amid 100,000 committed changes: restarted, 0 lost, duplicates
//!   counted;
//! - Redis down while changes commit: the slot does not advance; once Redis is back
//!   everything is applied and it catches up. A terminated walsender: reconnect, resume;
//! - refusals naming what is missing: `wal_level`, the publication, the slot.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tagbust::Backend;
use tagbust::backend::{RedisBackend, RedisOptions};
use tagbust_tests::daemon::Daemon;
use tagbust_tests::postgres::TestPostgres;
use tagbust_tests::{Scratch, TestRedis, components, entry};

const PREFIX: &str = "tbpg";
const SLOT: &str = "tagbust";
const T: &str = "acme";

/// One cluster, Redis and daemon at a time: the machine is small.
static SERIAL: Mutex<()> = Mutex::new(());

struct Rig {
    pg: TestPostgres,
    redis: TestRedis,
    cfg: String,
    rt: tokio::runtime::Runtime,
    backend: RedisBackend,
    _dir: Scratch,
}

impl Rig {
    fn new(name: &str, pg_port: u16, redis_port: u16, schema: &str, extra: &str) -> Rig {
        let pg = TestPostgres::start(name, pg_port, &[]);
        pg.psql(schema);
        let redis = TestRedis::start(&format!("pg-{name}"), redis_port);
        let dir = Scratch::new(&format!("pg-{name}"));
        let manifests = manifests(&dir);
        let text = format!(
            "listen = \"127.0.0.1:0\"\nmanifests = \"{manifests}\"\n\
             [backend]\nkind = \"redis\"\nurl = \"{}\"\nprefix = \"{PREFIX}\"\n\
             [host]\nbatch_window_ms = 20\n\
             [[source.postgres]]\nhost = \"127.0.0.1\"\nport = {pg_port}\nuser = \"postgres\"\n\
             database = \"postgres\"\nslot = \"{SLOT}\"\npublication = \"tagbust\"\n\
             tenant = \"{T}\"\nstatus_interval_ms = 100\n{extra}",
            redis.url()
        );
        let cfg = dir
            .file("tagbust.toml", text.as_bytes())
            .display()
            .to_string();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let options = RedisOptions {
            prefix: PREFIX.into(),
            ..RedisOptions::default()
        };
        let backend = rt
            .block_on(RedisBackend::connect(&redis.url(), options))
            .expect("redis backend");
        Rig {
            pg,
            redis,
            cfg,
            rt,
            backend,
            _dir: dir,
        }
    }

    /// The daemon, once its source is streaming (`/readyz` is 200).
    fn daemon(&self) -> Daemon {
        let d = Daemon::start(&["--config", &self.cfg]);
        wait_until(Duration::from_secs(60), "the source streams", || {
            d.get("/readyz", None).status == 200
        });
        d
    }

    /// Cache entries of tenant `acme`: (key, tags).
    fn put(&self, entries: Vec<(String, Vec<String>)>) {
        let backend = &self.backend;
        self.rt.block_on(async {
            for chunk in entries.chunks(2000) {
                let sets = chunk.iter().map(|(key, tags)| {
                    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                    backend.set(entry(T, key, &tags))
                });
                for r in futures_util::future::join_all(sets).await {
                    r.expect("set");
                }
            }
        });
    }

    fn put1(&self, key: &str, tags: &[&str]) {
        self.put(vec![(
            key.to_owned(),
            tags.iter().map(|t| (*t).to_owned()).collect(),
        )]);
    }

    /// How many of `keys` are still cached (retried while the test's own connection
    /// recovers from a Redis restart).
    fn alive(&self, keys: &[String]) -> usize {
        let backend = &self.backend;
        self.rt.block_on(async {
            let mut n = 0;
            for chunk in keys.chunks(2000) {
                for attempt in 0.. {
                    let gets = chunk.iter().map(|k| backend.get(T, k));
                    let got: Result<Vec<_>, _> = futures_util::future::join_all(gets)
                        .await
                        .into_iter()
                        .collect();
                    match got {
                        Ok(values) => {
                            n += values.iter().filter(|v| v.is_some()).count();
                            break;
                        }
                        Err(e) if attempt >= 50 => panic!("get: {e}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            n
        })
    }

    fn is_alive(&self, key: &str) -> bool {
        self.alive(&[key.to_owned()]) == 1
    }

    /// Waits until every transaction committed so far is applied (the slot confirms it).
    fn sync(&self) -> Duration {
        self.pg.sync(SLOT, Duration::from_secs(60))
    }
}

/// The tenant's manifest: the three rules, with limits that let one event name 50,000 rows
/// (the defaults cap a decision at 1,024 targets).
fn manifests(dir: &Scratch) -> String {
    use sha2::Digest;
    let m = dir.0.join("manifests");
    std::fs::create_dir_all(&m).expect("manifests dir");
    let mut text = format!(
        "tenant = \"{T}\"\n[limits]\nmax_targets = 60000\nmax_bytes = 4194304\n\
         deadline_ms = 5000\nmemory_mib = 128\n"
    );
    for path in [
        components::BULK_MODELS,
        components::CONTEXT_HIERARCHY,
        components::TABLE_PATTERNS,
    ] {
        let bytes = std::fs::read(path).expect("component built");
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        text.push_str(&format!(
            "[[rule]]\npath = \"{path}\"\nsha256 = \"{sha}\"\n"
        ));
    }
    std::fs::write(m.join("acme.toml"), text).expect("manifest");
    m.display().to_string()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A counter's value in a `/metrics` page (0 when absent).
fn metric(d: &Daemon, name: &str) -> u64 {
    let page = d.get("/metrics", None).body;
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn keys(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<(String, Vec<String>)> {
    range
        .map(|i| (format!("{prefix}:{i}"), vec![format!("{prefix}:{i}")]))
        .collect()
}

const SCHEMA: &str = "
    CREATE TABLE posts (id int PRIMARY KEY, title text, run text);
    ALTER TABLE posts REPLICA IDENTITY FULL;
    CREATE TABLE project_contexts (id text PRIMARY KEY, body text);
    CREATE TABLE hedge_instructions (id int PRIMARY KEY, currency text, entity_id text);
    CREATE TABLE big (id int PRIMARY KEY);
    CREATE TABLE items (id int PRIMARY KEY, v int);
    CREATE TABLE marker (id serial PRIMARY KEY);
";

#[test]
fn committed_sql_invalidates_whatever_wrote_it() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rig = Rig::new("scenarios", 24331, 6421, SCHEMA, "create = true\n");
    let d = rig.daemon();

    // Seed 000: bulk delete (no WHERE) → bulk create (INSERT … SELECT) → the list dies.
    rig.pg
        .psql("INSERT INTO posts SELECT g, 't', 'r1' FROM generate_series(1, 10) g;");
    rig.sync();
    rig.put1("posts:list:run=r1", &["posts", "posts:queries"]);
    rig.put1("post:3", &["posts", "posts:3"]);
    rig.pg.psql("DELETE FROM posts;");
    rig.sync();
    assert!(!rig.is_alive("posts:list:run=r1") && !rig.is_alive("post:3"));
    rig.put1("posts:list:run=r1", &["posts", "posts:queries"]);
    rig.pg
        .psql("INSERT INTO posts SELECT g, 'n', 'r1' FROM generate_series(11, 20) g;");
    rig.sync();
    assert!(
        !rig.is_alive("posts:list:run=r1"),
        "the bulk create killed the list"
    );
    let why = d
        .get(
            &format!("/v1/explain?tenant={T}&key=posts:list:run%3Dr1"),
            None,
        )
        .body;
    assert!(
        why.contains("postgres lsn=") && why.contains("xid="),
        "explain names the commit: {why}"
    );

    // An UPDATE from plain psql, a path the application never told tagbust about.
    rig.put1("post:12", &["posts", "posts:12"]);
    rig.put1("post:13", &["posts", "posts:13"]);
    rig.pg
        .psql("UPDATE posts SET title = 'edited' WHERE id = 12;");
    rig.sync();
    assert!(!rig.is_alive("post:12") && rig.is_alive("post:13"));

    // Seed 001: a parent's UPDATE kills every view inheriting it; the user comes from the
    // transaction's logical message.
    rig.pg
        .psql("INSERT INTO project_contexts VALUES ('P1', 'a'), ('P2', 'b');");
    rig.sync();
    let inherit = |p: &str, t: &str| {
        vec![
            "inherit:u1:global".to_owned(),
            format!("inherit:u1:project:{p}"),
            format!("inherit:u1:task:{t}"),
        ]
    };
    rig.put(vec![
        ("view:task:T1".into(), inherit("P1", "T1")),
        ("view:task:T9".into(), inherit("P2", "T9")),
    ]);
    rig.pg.psql(
        "BEGIN;
         SELECT pg_logical_emit_message(true, 'tagbust', '{\"user_id\": \"u1\"}');
         UPDATE project_contexts SET body = 'z' WHERE id = 'P1';
         COMMIT;",
    );
    rig.sync();
    assert!(!rig.is_alive("view:task:T1"), "the child view of P1 died");
    assert!(rig.is_alive("view:task:T9"), "P2's views are untouched");

    // Seed 003: a booking in a transaction; nothing before COMMIT, nothing after ROLLBACK.
    let (usd, eur) = (
        "hedge_positions:currency:USD:entity:E1",
        "hedge_positions:currency:EUR:entity:E2",
    );
    rig.put1(usd, &[]);
    rig.put1(eur, &[]);
    let booking = |end: &str, currency: &str, id: u32| {
        use std::io::Write;
        let mut child = rig.pg.psql_command().spawn().expect("psql");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(
            stdin,
            "BEGIN; INSERT INTO hedge_instructions VALUES ({id}, '{currency}', 'E1');"
        )
        .expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
        // Another transaction commits and is applied while this one is open.
        rig.pg.psql("INSERT INTO marker DEFAULT VALUES;");
        rig.sync();
        assert!(
            rig.is_alive(usd) && rig.is_alive(eur),
            "nothing before {end}"
        );
        writeln!(stdin, "{end};").expect("write");
        drop(stdin);
        assert!(child.wait_with_output().expect("psql").status.success());
        rig.sync();
    };
    booking("ROLLBACK", "EUR", 1);
    assert!(rig.is_alive(eur), "nothing after ROLLBACK");
    booking("COMMIT", "USD", 2);
    assert!(!rig.is_alive(usd), "the USD views died at COMMIT");
    assert!(rig.is_alive(eur), "narrowed by currency");

    // TRUNCATE: every row of the resource, told apart from "these ids".
    rig.put1("post:15", &["posts", "posts:15"]);
    rig.pg.psql("TRUNCATE posts;");
    rig.sync();
    assert!(!rig.is_alive("post:15"));
    let why = d
        .get(&format!("/v1/explain?tenant={T}&key=post:15"), None)
        .body;
    assert!(why.contains("bulk_delete"), "{why}");

    // A 50,000-row DELETE is one bulk event.
    rig.pg
        .psql("INSERT INTO big SELECT generate_series(1, 50000);");
    rig.sync();
    let big = keys("big", 1..=50_000);
    let names: Vec<String> = big.iter().map(|(k, _)| k.clone()).collect();
    rig.put(big);
    let before = metric(&d, "tagbust_pg_events_submitted_total");
    rig.pg.psql("DELETE FROM big;");
    let committed = Instant::now();
    wait_until(Duration::from_secs(60), "50,000 keys gone", || {
        !rig.is_alive("big:50000") && !rig.is_alive("big:1")
    });
    let gone_in = committed.elapsed();
    rig.sync();
    assert_eq!(rig.alive(&names), 0, "every key of the DELETE is gone");
    let events = metric(&d, "tagbust_pg_events_submitted_total") - before;
    assert_eq!(events, 1, "one bulk_delete event for 50,000 rows");
    println!("50,000-row DELETE: one event; keys gone {gone_in:?} after COMMIT returned");

    // 1,000 statements in one transaction: one bulk_update event.
    rig.pg
        .psql("INSERT INTO items SELECT g, 0 FROM generate_series(1, 1000) g;");
    rig.sync();
    let items = keys("items", 1..=1000);
    let names: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    rig.put(items);
    let before = metric(&d, "tagbust_pg_events_submitted_total");
    let mut sql = String::from("BEGIN;\n");
    for i in 1..=1000 {
        sql.push_str(&format!("UPDATE items SET v = v + 1 WHERE id = {i};\n"));
    }
    sql.push_str("COMMIT;\n");
    rig.pg.psql(&sql);
    rig.sync();
    assert_eq!(rig.alive(&names), 0);
    assert_eq!(metric(&d, "tagbust_pg_events_submitted_total") - before, 1);
    assert_eq!(metric(&d, "tagbust_pg_decode_errors_total"), 0);
    // An idle slot is confirmed through keepalives: nothing is in flight, the WAL moves on.
    rig.pg.psql("SELECT pg_switch_wal();");
    rig.sync();
    assert!(metric(&d, "tagbust_pg_keepalives_acked_total") > 0);
}

#[test]
fn kill_9_amid_100_000_changes_loses_nothing() {
    const N: usize = 100_000;
    const PER_TX: usize = 100;
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rig = Rig::new(
        "kill9",
        24332,
        6422,
        "CREATE TABLE things (id int PRIMARY KEY, v int);",
        "create = true\n",
    );
    let things = keys("things", 1..=N);
    let names: Vec<String> = things.iter().map(|(k, _)| k.clone()).collect();
    rig.put(things);
    let d1 = rig.daemon();
    let mut script = String::new();
    for tx in 0..N / PER_TX {
        let (a, b) = (tx * PER_TX + 1, (tx + 1) * PER_TX);
        script.push_str(&format!(
            "INSERT INTO things SELECT g, 0 FROM generate_series({a}, {b}) g;\nSELECT pg_sleep(0.004);\n"
        ));
    }
    let mut writer = rig.pg.psql_command().spawn().expect("psql");
    {
        use std::io::Write;
        let mut stdin = writer.stdin.take().expect("stdin");
        std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    }
    wait_until(Duration::from_secs(60), "100 transactions applied", || {
        metric(&d1, "tagbust_pg_transactions_acked_total") >= 100
    });
    let rows_before_kill = metric(&d1, "tagbust_pg_rows_total");
    d1.signal("KILL");
    let _ = d1.wait(Duration::from_secs(10));
    let d2 = rig.daemon();
    let out = writer.wait_with_output().expect("writer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rows_before_kill < N as u64,
        "killed mid-stream ({rows_before_kill} rows seen)"
    );
    let took = rig.sync();
    assert_eq!(
        rig.alive(&names),
        0,
        "every key of the 100,000 changes is gone"
    );
    let rows_after = metric(&d2, "tagbust_pg_rows_total");
    let duplicates = (rows_before_kill + rows_after).saturating_sub(N as u64);
    println!(
        "kill -9 after {rows_before_kill} rows: 0 lost; the restart read {rows_after} rows, \
         at least {duplicates} of them redelivered (duplicates); caught up {took:?} after the writer ended"
    );
    assert!(rows_before_kill + rows_after >= N as u64);
}

#[test]
fn redis_down_holds_the_slot_and_a_dropped_connection_resumes() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut rig = Rig::new(
        "faults",
        24333,
        6423,
        "CREATE TABLE t (id int PRIMARY KEY, v int);",
        "create = true\n",
    );
    let d = rig.daemon();
    rig.pg
        .psql("INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g;");
    rig.sync();
    let entries = keys("t", 1..=100);
    let names: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    rig.put(entries);

    rig.redis.kill();
    let held = rig.pg.confirmed(SLOT);
    for i in 1..=50 {
        rig.pg.psql(&format!("UPDATE t SET v = 1 WHERE id = {i};"));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        rig.pg.confirmed(SLOT),
        held,
        "the slot does not advance while Redis is down"
    );
    assert!(rig.pg.current_lsn() > held);
    let ready = d.get("/readyz", None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("lag_bytes"), "{}", ready.body);
    assert!(
        metric(&d, "tagbust_pg_lag_bytes") > 0,
        "lag shows in /metrics"
    );
    assert!(
        metric(&d, "tagbust_pg_in_flight") > 0,
        "commits wait for Redis"
    );
    rig.redis.restart();
    rig.sync();
    assert_eq!(
        rig.alive(&names[..50]),
        0,
        "everything committed meanwhile is applied"
    );
    assert_eq!(rig.alive(&names[50..]), 50);

    let connects = metric(&d, "tagbust_pg_connects_total");
    assert!(
        rig.pg.terminate_walsender(SLOT),
        "the walsender was running"
    );
    rig.pg.psql("UPDATE t SET v = 2 WHERE id > 50;");
    rig.sync();
    assert_eq!(rig.alive(&names[50..]), 0, "applied after the reconnect");
    assert!(
        metric(&d, "tagbust_pg_connects_total") > connects,
        "it reconnected"
    );
}

#[test]
fn refuses_to_start_naming_what_is_missing() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let reason = |rig: &Rig| {
        let d = Daemon::start(&["--config", &rig.cfg]);
        let mut body = String::new();
        wait_until(Duration::from_secs(30), "the source stops", || {
            body = d.get("/readyz", None).body;
            body.contains("stopped")
        });
        body
    };
    let rig = Rig::new(
        "refusals",
        24334,
        6421,
        "CREATE TABLE t (id int PRIMARY KEY);",
        "",
    );
    let body = reason(&rig);
    assert!(
        body.contains("publication `tagbust` does not exist"),
        "{body}"
    );
    rig.pg.psql("CREATE PUBLICATION tagbust FOR TABLE t;");
    let body = reason(&rig);
    assert!(
        body.contains("replication slot `tagbust` does not exist"),
        "{body}"
    );
    drop(rig);

    let pg = TestPostgres::start("replica", 24335, &[("wal_level", "replica")]);
    let dir = Scratch::new("pg-replica");
    let cfg = dir.file(
        "tagbust.toml",
        format!(
            "listen = \"127.0.0.1:0\"\n[[source.postgres]]\nhost = \"127.0.0.1\"\nport = {}\n\
             user = \"postgres\"\ndatabase = \"postgres\"\nslot = \"s\"\npublication = \"p\"\ncreate = true\n",
            pg.port
        )
        .as_bytes(),
    );
    let d = Daemon::start(&[
        "--rules",
        components::BULK_MODELS,
        "--config",
        &cfg.display().to_string(),
    ]);
    let mut body = String::new();
    wait_until(Duration::from_secs(30), "the source stops", || {
        body = d.get("/readyz", None).body;
        body.contains("stopped")
    });
    assert!(
        body.contains("wal_level") && body.contains("replica"),
        "{body}"
    );
}
