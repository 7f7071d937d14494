//! `tagbust serve` fed by a Redis stream, as real processes against a real (private) Redis on
//! port 6399 holding both the stream and the cache:
//!
//! - kill -9 mid-stream: 100,000 events through two processes of one consumer group; one is
//!   SIGKILLed part way and restarted under its consumer name; afterwards every key any
//!   event named is gone (0 lost) and nothing is pending; re-deliveries are reported.
//! - Redis restarted under the daemon: `/readyz` reports it, the stream keeps its entries
//!   pending, and everything is applied once Redis is back (0 lost).

use std::time::{Duration, Instant};

use tagbust_tests::daemon::Daemon;
use tagbust_tests::{Scratch, TestRedis, components};

const PREFIX: &str = "tbstream";

fn config(dir: &Scratch, url: &str) -> String {
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\
         [backend]\nkind = \"redis\"\nurl = \"{url}\"\nprefix = \"{PREFIX}\"\n\
         [[source.redis_stream]]\nurl = \"{url}\"\nstream = \"events\"\ngroup = \"tagbust\"\n\
         claim_idle_ms = 3000\nblock_ms = 200\n"
    );
    dir.file("tagbust.toml", text.as_bytes())
        .display()
        .to_string()
}

fn conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("redis")
}

/// Cache entries `k{from}..k{to}` of tenant `acme`, in the documented layout.
fn seed(c: &mut redis::Connection, range: std::ops::Range<usize>) {
    for chunk in range.collect::<Vec<_>>().chunks(5000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("HSET")
                .arg(format!("{PREFIX}:{{acme}}:e:k{i}"))
                .arg("v")
                .arg("x")
                .ignore();
        }
        let () = pipe.query(c).expect("seed");
    }
}

/// One stream entry per event, each invalidating its own key; every other one batched, so
/// a process killed holds a batch window's worth in memory that only redelivery can save.
fn produce(c: &mut redis::Connection, range: std::ops::Range<usize>) {
    for chunk in range.collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let strategy = if i % 2 == 0 { "" } else { "@batched" };
            let event = format!(
                r#"{{"tenant":"acme","resource":"things","operation":"update","context":{{"emit":"key=k{i}{strategy}"}}}}"#
            );
            pipe.cmd("XADD")
                .arg("events")
                .arg("*")
                .arg("event")
                .arg(event)
                .ignore();
        }
        let () = pipe.query(c).expect("xadd");
    }
}

fn remaining(c: &mut redis::Connection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}:{{acme}}:e:*"))
        .query(c)
        .unwrap_or_default();
    keys.len()
}

fn pending(c: &mut redis::Connection) -> u64 {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg("events")
        .arg("tagbust")
        .query(c)
        .expect("xpending");
    match summary {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    }
}

/// A counter's value in a `/metrics` page (0 when absent).
fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kill_9_mid_stream_loses_nothing() {
    const N: usize = 100_000;
    let server = TestRedis::start("serve-kill9", 6399);
    let url = server.url();
    let dir = Scratch::new("serve-kill9");
    let cfg = config(&dir, &url);
    let mut c = conn(&url);
    seed(&mut c, 0..N);
    let args = ["--rules", components::ECHO, "--config", &cfg];
    let d1 = Daemon::start_with(&args, &[("TAGBUST_CONSUMER", "c1")]);
    let d2 = Daemon::start_with(&args, &[("TAGBUST_CONSUMER", "c2")]);
    let producer = {
        let url = url.clone();
        std::thread::spawn(move || produce(&mut conn(&url), 0..N))
    };
    wait_until(Duration::from_secs(120), "30% applied", || {
        remaining(&mut c) < N * 7 / 10
    });
    let killed_at = remaining(&mut c);
    drop(d1); // SIGKILL: no shutdown, no flush, no ack of what it held
    let d1 = Daemon::start_with(&args, &[("TAGBUST_CONSUMER", "c1")]);
    producer.join().expect("producer");
    wait_until(
        Duration::from_secs(240),
        "every key gone and nothing pending",
        || remaining(&mut c) == 0 && pending(&mut c) == 0,
    );
    let (m1, m2) = (d1.get("/metrics", None).body, d2.get("/metrics", None).body);
    let redelivered = metric(&m1, "tagbust_stream_entries_redelivered_total")
        + metric(&m2, "tagbust_stream_entries_redelivered_total");
    let after_restart = metric(&m1, "tagbust_stream_events_submitted_total")
        + metric(&m2, "tagbust_stream_events_submitted_total");
    eprintln!(
        "kill -9 with {killed_at} keys left: 0 lost; {redelivered} entries delivered again \
         after the kill; {after_restart} events submitted by the survivor and the restarted one"
    );
    assert!(
        redelivered > 0,
        "the killed consumer left work that was delivered again"
    );
}

#[test]
fn redis_restarted_under_the_daemon_degrades_then_catches_up() {
    let mut server = TestRedis::start("serve-restart", 6400);
    let url = server.url();
    let dir = Scratch::new("serve-restart");
    let cfg = config(&dir, &url);
    let mut c = conn(&url);
    seed(&mut c, 0..2000);
    let d = Daemon::start(&["--rules", components::ECHO, "--config", &cfg]);
    produce(&mut c, 0..1000);
    wait_until(Duration::from_secs(60), "the first half applied", || {
        remaining(&mut c) == 1000
    });
    server.kill();
    wait_until(
        Duration::from_secs(30),
        "/readyz reports the outage",
        || d.get("/readyz", None).status == 503,
    );
    server.restart();
    let mut c = conn(&url);
    produce(&mut c, 1000..2000);
    wait_until(Duration::from_secs(120), "caught up", || {
        remaining(&mut c) == 0 && pending(&mut c) == 0
    });
    wait_until(Duration::from_secs(30), "ready again", || {
        d.get("/readyz", None).status == 200
    });
}
