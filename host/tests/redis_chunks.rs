//! The Redis backend's bounded script calls, each test against a private `redis-server` of its
//! own (ports 6433–6440) so that its command counts are its alone: `set_many`
//! writes what `set` writes, in calls of at most `entries_per_call`; a tag bigger than that is
//! drained over several calls with exact counts, its entries reading as misses from the first;
//! concurrent single `set`s share calls, and cancelling one strands no other; listing no
//! keys for explain keeps counts exact and spares Redis the existence checks; entries of
//! interleaved tenants share calls; the scripts are loaded at connect.

use std::time::{Duration, Instant};

#[allow(
    dead_code,
    reason = "the shared contract helpers this binary does not use"
)]
mod common;

use common::server::Server;
use common::{entry, op};
use tagbust::backend::MAX_LISTED_KEYS;
use tagbust::backend::redis::{RedisBackend, RedisOptions};
use tagbust::{Backend, NewEntry, OpKind};

async fn backend(server: &Server, prefix: &str, entries_per_call: usize) -> RedisBackend {
    let options = RedisOptions {
        prefix: prefix.into(),
        entries_per_call,
        ..RedisOptions::default()
    };
    RedisBackend::connect(&server.url(), options)
        .await
        .expect("connect")
}

/// Two tenants; entries with one or two tags, without TTL, derived from another entry.
fn entries() -> Vec<NewEntry> {
    (0..60)
        .map(|i| {
            let tenant = if i < 40 { "a" } else { "b" };
            let mut e = entry(tenant, &format!("k{i}"), &["all", &format!("m{}", i % 7)]);
            if i % 10 == 3 {
                e.ttl = None;
            }
            if i % 10 == 5 {
                e.tags.truncate(1);
                e.depends_on = vec![format!("k{}", i - 1)];
            }
            e
        })
        .collect()
}

#[tokio::test]
async fn set_many_writes_what_set_writes_in_bounded_calls() {
    let server = Server::start(6433);
    let one = backend(&server, "one", 1024).await;
    for e in entries() {
        one.set(e).await.expect("set");
    }
    // A quarter of 64 for writes: 16 per call.
    let many = backend(&server, "many", 64).await;
    let before = server.script_calls();
    many.set_many(entries()).await.expect("set_many");
    let calls = server.script_calls() - before;
    // 60 entries weighing 3 each (the entry and two tags, or one tag and one dependency),
    // at most 16 per call: 5 per call, 40 and 20 per tenant.
    assert_eq!(calls, 8 + 4, "calls bounded by entries_per_call");
    assert_eq!(
        server.dump("many"),
        server.dump("one"),
        "the same keys, fields, members and TTL states as set, one by one"
    );
    for e in entries() {
        let value = many.get(&e.tenant, &e.key).await.expect("get");
        assert_eq!(value, Some(e.value), "{} readable", e.key);
    }
    let out = many
        .apply(&[op("a", OpKind::Tag, "all"), op("b", OpKind::Tag, "all")])
        .await
        .expect("apply");
    assert_eq!((out[0].removed, out[1].removed), (40, 20));
}

#[tokio::test]
async fn a_big_tag_is_drained_in_bounded_calls_with_exact_counts() {
    let server = Server::start(6434);
    let b = backend(&server, "drain", 16).await;
    let mut batch: Vec<NewEntry> = (0..100)
        .map(|i| entry("a", &format!("big{i}"), &["big"]))
        .collect();
    batch.extend((0..5).map(|i| entry("a", &format!("small{i}"), &["small"])));
    batch.push(entry("a", "alone", &[]));
    b.set_many(batch).await.expect("set_many");
    // Two of the tag's entries are already gone: the count stays exact.
    let _: u64 = server.query(
        redis::cmd("UNLINK")
            .arg("drain:{a}:e:big0")
            .arg("drain:{a}:e:big99"),
    );
    let before = server.script_calls();
    let out = b
        .apply(&[
            op("a", OpKind::Tag, "big"),
            op("a", OpKind::Tag, "small"),
            op("a", OpKind::Key, "alone"),
        ])
        .await
        .expect("apply");
    let calls = server.script_calls() - before;
    assert!(calls >= 100 / 16, "drained over several calls: {calls}");
    assert_eq!(out[0].removed, 98);
    assert_eq!(out[0].keys.len(), MAX_LISTED_KEYS);
    assert!(
        !out[0].keys.contains(&"big0".to_owned()),
        "only removed keys are listed"
    );
    assert_eq!(out[1].removed, 5);
    assert_eq!(out[2].keys, vec!["alone".to_owned()]);
    let left: Vec<String> = server.query(redis::cmd("KEYS").arg("drain:{a}:[etx]:*"));
    assert!(
        left.is_empty(),
        "no entry, index or drain key left: {left:?}"
    );
}

#[tokio::test]
async fn a_tag_being_drained_reads_as_missing_from_the_first_call() {
    let server = Server::start(6435);
    let b = backend(&server, "lazy", 1024).await;
    let batch = (0..10)
        .map(|i| entry("a", &format!("k{i}"), &["t"]))
        .collect();
    b.set_many(batch).await.expect("set_many");
    // One call with a budget of 4, as the backend sends it: the rest waits for a drain call.
    let script = redis::Script::new(include_str!("../src/backend/redis/invalidate.lua"));
    let reply: Vec<redis::Value> = script
        .key("lazy:{a}:epoch")
        .arg("lazy:{a}:")
        .arg(0)
        .arg(30_000)
        .arg(10_000)
        .arg(4)
        .arg(MAX_LISTED_KEYS)
        .arg("tag")
        .arg("t")
        .invoke(&mut server.conn().expect("connect"))
        .expect("invalidate.lua");
    assert_eq!(reply[0], redis::Value::Int(1), "the tag applied");
    assert_eq!(reply[1], redis::Value::Int(4), "four removed in this call");
    let redis::Value::Int(version) = reply[2] else {
        panic!("a drain version: {reply:?}");
    };
    let current: i64 = server.query(redis::cmd("GET").arg("lazy:{a}:v:t"));
    assert_eq!(
        version, current,
        "the drain key is named by the new version"
    );
    let drain = format!("lazy:{{a}}:x:{version}:t");
    let stored: u64 = server.query(redis::cmd("ZCARD").arg(&drain));
    assert_eq!(stored, 6, "six members wait in the drain key");
    for i in 0..10 {
        assert_eq!(
            b.get("a", &format!("k{i}")).await.expect("get"),
            None,
            "k{i}"
        );
    }
    let ttl: i64 = server.query(redis::cmd("PTTL").arg(&drain));
    assert!(ttl > 0, "the drain key keeps the index's TTL: {ttl}");
}

#[tokio::test]
async fn concurrent_single_sets_share_script_calls_and_all_land() {
    let server = Server::start(6436);
    let b = backend(&server, "group", 256).await;
    let before = server.script_calls();
    let sets = (0..2_000).map(|i| b.set(entry("a", &format!("k{i}"), &[&format!("t{}", i % 7)])));
    for result in futures_util::future::join_all(sets).await {
        result.expect("set");
    }
    let calls = server.script_calls() - before;
    // One call per set without grouping; grouped, the first goes alone and the others
    // follow in rounds of script calls of 32 entries.
    assert!(calls < 200, "2,000 sets took {calls} script calls");
    for i in (0..2_000).step_by(97) {
        let value = b.get("a", &format!("k{i}")).await.expect("get");
        assert_eq!(value, Some(format!("<k{i}>").into_bytes()), "k{i} stored");
    }
    let out = b.apply(&[op("a", OpKind::Tag, "t3")]).await.expect("apply");
    assert_eq!(
        out[0].removed,
        (0..2_000).filter(|i| i % 7 == 3).count() as u64
    );
}

/// Cancelled callers of `set` strand nobody: not the writes queued behind a leader whose
/// round is in flight, nor the ones that leader carries. The server is paused (`CLIENT
/// PAUSE`) so that the rounds stay in flight while their leaders are aborted.
#[tokio::test]
async fn a_cancelled_leader_hands_its_round_and_the_lead_on() {
    let server = Server::start(6437);
    let b = std::sync::Arc::new(backend(&server, "cancel", 256).await);
    let set = |key: String| {
        let b = b.clone();
        tokio::spawn(async move { b.set(entry("a", &key, &["t"])).await })
    };
    let pause = Duration::from_millis(1_500);
    let () = server.query(
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(pause.as_millis() as u64)
            .arg("ALL"),
    );
    let paused = Instant::now();
    let settle = || tokio::time::sleep(Duration::from_millis(100));
    // x leads a round of its own that Redis holds; a and the others queue behind it.
    let x = set("x".into());
    settle().await;
    let a = set("a0".into());
    settle().await;
    let others: Vec<_> = (1..10).map(|i| set(format!("a{i}"))).collect();
    settle().await;
    // x goes: a leads next, carrying the others in a round Redis holds too; then a goes.
    x.abort();
    settle().await;
    a.abort();
    assert!(paused.elapsed() < pause, "the rounds were still in flight");
    for (i, task) in others.into_iter().enumerate() {
        let result = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap_or_else(|_| panic!("a{}: stranded without a leader", i + 1))
            .expect("task");
        result.unwrap_or_else(|e| panic!("a{}: {e}", i + 1));
        let value = b.get("a", &format!("a{}", i + 1)).await.expect("get");
        assert!(value.is_some(), "a{} stored", i + 1);
    }
}

#[tokio::test]
async fn listing_no_keys_keeps_counts_exact_and_skips_the_existence_checks() {
    let server = Server::start(6438);
    let options = RedisOptions {
        prefix: "quiet".into(),
        listed_keys: 0,
        ..RedisOptions::default()
    };
    let b = RedisBackend::connect(&server.url(), options)
        .await
        .expect("connect");
    let batch = (0..100)
        .map(|i| entry("a", &format!("k{i}"), &["t"]))
        .collect();
    b.set_many(batch).await.expect("set_many");
    let _: u64 = server.query(redis::cmd("UNLINK").arg("quiet:{a}:e:k0"));
    // Loads the script (a first EVALSHA is refused with NOSCRIPT), so that every call
    // counted below runs it.
    b.apply(&[op("a", OpKind::Tag, "none")])
        .await
        .expect("apply");
    let (checks, calls) = (server.calls("exists"), server.script_calls());
    let out = b.apply(&[op("a", OpKind::Tag, "t")]).await.expect("apply");
    assert_eq!(out[0].removed, 99, "the count stays exact");
    assert!(out[0].keys.is_empty(), "no key listed: {:?}", out[0].keys);
    // Each call checks once whether the tenant has leases and dependencies at all; listing
    // would add one multi-key EXISTS per slice of members.
    let calls = server.script_calls() - calls;
    assert_eq!(
        server.calls("exists") - checks,
        2 * calls,
        "no existence check of members"
    );
    assert_eq!(b.get("a", "k7").await.expect("get"), None, "removed");
}

/// Entries of two tenants arriving interleaved (as grouped single `set`s do) are ordered by
/// tenant before they are cut into calls: a few calls, not one per entry; and two writes of
/// one key in one batch keep their order.
#[tokio::test]
async fn interleaved_tenants_share_script_calls_and_keep_each_keys_order() {
    let server = Server::start(6439);
    let b = backend(&server, "mixed", 256).await;
    let mut batch: Vec<NewEntry> = (0..2_000)
        .map(|i| {
            let tenant = if i % 2 == 0 { "a" } else { "b" };
            entry(tenant, &format!("k{}", i / 2), &[&format!("t{}", i % 7)])
        })
        .collect();
    let mut later = entry("a", "k7", &["t0"]);
    later.value = b"second".to_vec();
    batch.push(later);
    let before = server.script_calls();
    b.set_many(batch).await.expect("set_many");
    let calls = server.script_calls() - before;
    // 1,000 entries of each tenant in calls of 32: 64 calls. Cut in arrival order: 2,001.
    assert!(
        calls <= 70,
        "2,001 interleaved entries took {calls} script calls"
    );
    let value = b.get("a", "k7").await.expect("get");
    assert_eq!(
        value,
        Some(b"second".to_vec()),
        "the later write of k7 wins"
    );
    for (tenant, i) in [("a", 0), ("b", 0), ("a", 999), ("b", 999)] {
        let value = b.get(tenant, &format!("k{i}")).await.expect("get");
        assert_eq!(value, Some(format!("<k{i}>").into_bytes()), "{tenant}/k{i}");
    }
}

/// The scripts are loaded when the backend connects: a fresh server never answers
/// `NOSCRIPT` to the first writes, reads and invalidations.
#[tokio::test]
async fn scripts_are_loaded_at_connect() {
    let server = Server::start(6440);
    let b = backend(&server, "load", 256).await;
    let sets = (0..200).map(|i| b.set(entry("a", &format!("k{i}"), &["t"])));
    for result in futures_util::future::join_all(sets).await {
        result.expect("set");
    }
    assert!(b.get("a", "k1").await.expect("get").is_some());
    let out = b.apply(&[op("a", OpKind::Tag, "t")]).await.expect("apply");
    assert_eq!(out[0].removed, 200);
    let errors: String = server.query(redis::cmd("INFO").arg("errorstats"));
    assert!(
        !errors.contains("NOSCRIPT"),
        "a call met an unloaded script: {errors}"
    );
}
