//! The Redis Streams source against a real Redis (a private server on port 6397, and 6398
//! for a backend that dies on its own): acknowledgement only after apply, own pending
//! entries re-read on restart, a dead consumer's entries claimed, dead letters for every
//! invalid entry and for too many deliveries, rate limits retried, Redis restarted under
//! the source with 0 lost, shutdown, and 10,000 entries through two consumers.
//!
//! Tests run one at a time (they share the port); each starts its own server and kills it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Commands;
use tagbust::sources::streams::{self, StreamConfig, StreamStats};
use tagbust::{Backend, HostOptions, MemoryBackend, Relationships, Tagbust, WriteEvent};
use tagbust_tests::{TestRedis, echo_host, emit, entry, named_echo_host};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const STREAM: &str = "events";
const GROUP: &str = "tagbust";

/// One test at a time: they share the ports.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

fn conn(server: &TestRedis) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect to the private redis-server")
}

fn config(server: &TestRedis, consumer: &str) -> StreamConfig {
    let mut c = StreamConfig::new(&server.url(), STREAM, GROUP, consumer);
    c.block = Duration::from_millis(100);
    c.claim_idle = Duration::from_millis(400);
    c.backoff = Duration::from_millis(20);
    c.max_backoff = Duration::from_millis(200);
    c.drain_timeout = Duration::from_millis(500);
    c
}

struct Source {
    stop: CancellationToken,
    stats: Arc<StreamStats>,
    task: JoinHandle<Result<(), streams::SourceError>>,
}

fn start<B: Backend>(host: &Tagbust<B>, config: StreamConfig) -> Source {
    let stop = CancellationToken::new();
    let stats = Arc::new(StreamStats::default());
    let task = tokio::spawn(streams::run(
        host.clone(),
        config,
        stop.clone(),
        stats.clone(),
    ));
    Source { stop, stats, task }
}

impl Source {
    async fn stop(self) -> Arc<StreamStats> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the source stops within its drain timeout")
            .expect("the source task does not panic")
            .expect("the source ends cleanly");
        self.stats
    }
}

fn json(events: &[WriteEvent]) -> String {
    match events {
        [one] => serde_json::to_string(one),
        many => serde_json::to_string(many),
    }
    .expect("events serialize")
}

fn tx(mut e: WriteEvent, id: &str) -> WriteEvent {
    e.transaction = Some(id.into());
    e
}

fn xadd(c: &mut redis::Connection, fields: &[(&str, &str)]) -> String {
    c.xadd(STREAM, "*", fields).expect("XADD")
}

fn add_event(c: &mut redis::Connection, e: WriteEvent) -> String {
    xadd(c, &[("event", &json(&[e]))])
}

/// Entries of the group not yet acknowledged.
fn pending(c: &mut redis::Connection) -> u64 {
    let reply: redis::streams::StreamPendingReply = c.xpending(STREAM, GROUP).expect("XPENDING");
    reply.count() as u64
}

/// How many times each pending entry was delivered, by id.
fn deliveries(c: &mut redis::Connection) -> HashMap<String, usize> {
    let reply: redis::streams::StreamPendingCountReply = c
        .xpending_count(STREAM, GROUP, "-", "+", 1000)
        .expect("XPENDING range");
    reply
        .ids
        .into_iter()
        .map(|p| (p.id, p.times_delivered))
        .collect()
}

fn dead_letters(c: &mut redis::Connection) -> Vec<HashMap<String, String>> {
    let reply: redis::streams::StreamRangeReply =
        c.xrange_all(format!("{STREAM}:dead")).expect("XRANGE");
    reply
        .ids
        .into_iter()
        .map(|e| {
            e.map
                .iter()
                .map(|(k, v)| {
                    let v: String = redis::from_redis_value(v.clone()).unwrap_or_default();
                    (k.clone(), v)
                })
                .collect()
        })
        .collect()
}

/// Reads entries as `consumer` and never acknowledges them: a consumer that died.
fn read_and_die(c: &mut redis::Connection, consumer: &str, id: &str) -> usize {
    let _: Result<(), _> = c.xgroup_create_mkstream(STREAM, GROUP, "0");
    let opts = redis::streams::StreamReadOptions::default()
        .group(GROUP, consumer)
        .count(100);
    let reply: Option<redis::streams::StreamReadReply> = c
        .xread_options(&[STREAM], &[id], &opts)
        .expect("XREADGROUP");
    reply.map_or(0, |r| r.keys.iter().map(|k| k.ids.len()).sum())
}

async fn until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn present<B: Backend>(host: &Tagbust<B>, tenant: &str, key: &str) -> bool {
    host.cache()
        .get(tenant, key)
        .await
        .expect("cache get")
        .is_some()
}

async fn fill<B: Backend>(host: &Tagbust<B>, tenant: &str, keys: &[&str]) {
    for key in keys {
        host.cache()
            .set(entry(tenant, key, &[key]))
            .await
            .expect("cache set");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_is_acknowledged_only_after_its_invalidations_are_applied() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-ack", 6397);
    let mut c = conn(&server);
    let options = HostOptions {
        batch_window: Duration::from_secs(1),
        ..HostOptions::default()
    };
    let host = echo_host(Relationships::new(), options);
    fill(&host, "a", &["now", "later", "held", "both", "rolled"]).await;
    let source = start(&host, config(&server, "c1"));
    let s = source.stats.clone();

    // Immediate: applied, then acknowledged.
    add_event(&mut c, emit("a", "tag=now"));
    until(
        "the immediate entry is acked",
        Duration::from_secs(5),
        || s.snapshot().entries_acked == 1,
    )
    .await;
    assert!(!present(&host, "a", "now").await);

    // Batched: pending for the whole window, acknowledged after it.
    add_event(&mut c, emit("a", "tag=later@batched"));
    until(
        "the batched entry is submitted",
        Duration::from_secs(5),
        || s.snapshot().events_submitted == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(pending(&mut c), 1, "still in the window: not acknowledged");
    assert!(present(&host, "a", "later").await);
    until("the batched entry is acked", Duration::from_secs(5), || {
        s.snapshot().entries_acked == 2
    })
    .await;
    assert!(!present(&host, "a", "later").await);

    // Held for a transaction: pending until the commit entry arrives.
    add_event(&mut c, tx(emit("a", "tag=held"), "tx-1"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.snapshot().events_submitted, 3);
    assert_eq!(pending(&mut c), 1, "held until commit");
    assert!(present(&host, "a", "held").await);
    xadd(&mut c, &[("commit", "a/tx-1")]);
    until("the held entry is acked", Duration::from_secs(5), || {
        pending(&mut c) == 0
    })
    .await;
    assert!(!present(&host, "a", "held").await);

    // A whole transaction in one entry, with its commit.
    let mut c2 = conn(&server);
    xadd(
        &mut c2,
        &[
            ("event", &json(&[tx(emit("a", "tag=both"), "tx-2")])),
            ("commit", "a/tx-2"),
        ],
    );
    // A rolled-back one: acknowledged, nothing applied.
    add_event(&mut c2, tx(emit("a", "tag=rolled"), "tx-3"));
    xadd(&mut c2, &[("rollback", "a/tx-3")]);
    until("everything is acked", Duration::from_secs(5), || {
        s.snapshot().entries_acked == 7 && pending(&mut c2) == 0
    })
    .await;
    assert!(!present(&host, "a", "both").await);
    assert!(present(&host, "a", "rolled").await, "rolled back");
    let stats = source.stop().await.snapshot();
    assert_eq!((stats.commits, stats.rollbacks), (2, 1));
    assert_eq!(stats.dead_letters.values().sum::<u64>(), 0);
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_the_host_never_applied_stay_pending_and_a_restart_rereads_them() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-restart", 6397);
    let mut cache_server = TestRedis::start("streams-restart-cache", 6398);
    let mut c = conn(&server);
    let options = HostOptions {
        batch_window: Duration::from_secs(5),
        ..HostOptions::default()
    };
    let backend = cache_server.fast_failing_backend().await;
    let host = tagbust_tests::echo_host_on(backend, Relationships::new(), options);
    let source = start(&host, config(&server, "c1"));
    for key in ["k1", "k2", "k3"] {
        add_event(&mut c, emit("a", &format!("key={key}@batched")));
    }
    let s = source.stats.clone();
    until(
        "three entries are submitted",
        Duration::from_secs(5),
        || s.snapshot().events_submitted == 3,
    )
    .await;
    // The cache dies inside the window: shutdown cannot apply, the entries are not applied.
    cache_server.kill();
    host.shutdown().await.expect_err("the cache is dead");
    until("the acknowledger learns it", Duration::from_secs(5), || {
        s.snapshot().entries_not_applied == 3
    })
    .await;
    let stats = source.stop().await.snapshot();
    assert_eq!(stats.entries_acked, 0);
    assert_eq!(pending(&mut c), 3, "not applied: still pending");

    // The same consumer restarts on a working host: its own pending entries come first.
    let host = echo_host(Relationships::new(), HostOptions::default());
    fill(&host, "a", &["k1", "k2", "k3", "k4"]).await;
    add_event(&mut c, emit("a", "key=k4"));
    let source = start(&host, config(&server, "c1"));
    let s = source.stats.clone();
    until("all four are acked", Duration::from_secs(5), || {
        s.snapshot().entries_acked == 4
    })
    .await;
    for key in ["k1", "k2", "k3", "k4"] {
        assert!(!present(&host, "a", key).await, "{key} applied");
    }
    let stats = source.stop().await.snapshot();
    assert_eq!(
        stats.entries_redelivered, 3,
        "re-read from its own pending list"
    );
    assert_eq!(stats.entries_claimed, 0, "not by claiming");
    assert_eq!(pending(&mut c), 0);
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumers_entries_are_claimed_and_trimmed_ones_counted() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-claim", 6397);
    let mut c = conn(&server);
    let host = echo_host(Relationships::new(), HostOptions::default());
    fill(&host, "a", &["c1", "c2", "c3"]).await;
    // Two entries trimmed away while pending on the dead consumer, then three readable.
    let doomed = [
        add_event(&mut c, emit("a", "key=gone1")),
        add_event(&mut c, emit("a", "key=gone2")),
    ];
    assert_eq!(read_and_die(&mut c, "dead", ">"), 2);
    let _: usize = c.xdel(STREAM, &doomed).expect("XDEL");
    for key in ["c1", "c2", "c3"] {
        add_event(&mut c, emit("a", &format!("key={key}")));
    }
    assert_eq!(read_and_die(&mut c, "dead", ">"), 3);
    assert_eq!(pending(&mut c), 5);

    let source = start(&host, config(&server, "live"));
    let s = source.stats.clone();
    until(
        "the dead consumer's entries are done",
        Duration::from_secs(10),
        || pending(&mut c) == 0,
    )
    .await;
    for key in ["c1", "c2", "c3"] {
        assert!(!present(&host, "a", key).await, "{key} applied");
    }
    let stats = source.stop().await.snapshot();
    assert_eq!(stats.entries_claimed, 3);
    assert_eq!(stats.entries_deleted, 2, "XAUTOCLAIM's deleted ids");
    assert_eq!(stats.entries_acked, 3);
    assert_eq!(s.snapshot().dead_letters.values().sum::<u64>(), 0);
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_delivered_too_often_goes_to_the_dead_letter_stream() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-deliveries", 6397);
    let mut c = conn(&server);
    let host = echo_host(Relationships::new(), HostOptions::default());
    fill(&host, "a", &["poison", "fine"]).await;
    let poison = add_event(&mut c, emit("a", "key=poison"));
    // Delivered three times to consumers that died with it.
    assert_eq!(read_and_die(&mut c, "dead", ">"), 1);
    assert_eq!(read_and_die(&mut c, "dead", "0"), 1);
    assert_eq!(read_and_die(&mut c, "dead", "0"), 1);
    let fine = add_event(&mut c, emit("a", "key=fine"));
    assert_eq!(read_and_die(&mut c, "dead2", ">"), 1);
    assert_eq!(deliveries(&mut c)[&poison], 3);
    assert_eq!(deliveries(&mut c)[&fine], 1);

    let mut cfg = config(&server, "live");
    cfg.max_deliveries = 3;
    let source = start(&host, cfg);
    until("both are done", Duration::from_secs(10), || {
        pending(&mut c) == 0
    })
    .await;
    assert!(
        present(&host, "a", "poison").await,
        "a dead letter is not applied"
    );
    assert!(
        !present(&host, "a", "fine").await,
        "claimed once more: within the limit"
    );
    let stats = source.stop().await.snapshot();
    assert_eq!(stats.dead_letters["max_deliveries"], 1);
    let letters = dead_letters(&mut c);
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter["id"], poison);
    assert_eq!(letter["reason"], "max_deliveries");
    assert_eq!(letter["deliveries"], "4");
    assert_eq!(letter["stream"], STREAM);
    assert!(
        letter["error"].contains("more than max_deliveries (3)"),
        "{letter:?}"
    );
    assert_eq!(letter["payload"], json(&[emit("a", "key=poison")]));
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_entries_go_to_the_dead_letter_stream_with_their_error() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-invalid", 6397);
    let mut c = conn(&server);
    let host = named_echo_host(MemoryBackend::new(), &["a"]);
    fill(&host, "a", &["g1", "g2", "g3"]).await;
    let mut ids = HashMap::new();
    add_event(&mut c, emit("a", "key=g1"));
    ids.insert("json", xadd(&mut c, &[("event", "{\"tenant\": \"a\", ")]));
    ids.insert("field", add_event(&mut c, emit("not a tenant!", "key=x")));
    ids.insert(
        "unknown_tenant",
        xadd(
            &mut c,
            &[(
                "event",
                &json(&[emit("a", "key=g2"), emit("ghost", "key=x")]),
            )],
        ),
    );
    add_event(&mut c, emit("a", "key=g3"));
    let big = emit("a", &format!("key=g3 {}", "tag=x ".repeat(400)));
    let big = json(&[big]);
    ids.insert("oversized", xadd(&mut c, &[("event", &big)]));
    ids.insert("malformed", xadd(&mut c, &[("evnt", "{}")]));
    let bad_commit = xadd(&mut c, &[("commit", "no-slash")]);

    let mut cfg = config(&server, "c1");
    cfg.max_entry_bytes = 2048;
    cfg.dead_letter_payload_bytes = 100;
    let source = start(&host, cfg);
    until("every entry is done", Duration::from_secs(10), || {
        let s = c.xlen::<_, u64>(format!("{STREAM}:dead")).unwrap_or(0);
        s == 6 && pending(&mut c) == 0
    })
    .await;
    assert!(!present(&host, "a", "g1").await);
    assert!(present(&host, "a", "g2").await, "an entry is refused whole");
    assert!(
        !present(&host, "a", "g3").await,
        "the entries after a refused one in the same run go on"
    );
    let stats = source.stop().await.snapshot();
    let letters = dead_letters(&mut c);
    let by_id: HashMap<&str, &HashMap<String, String>> =
        letters.iter().map(|l| (l["id"].as_str(), l)).collect();
    let expect = [
        ("json", "truncated JSON"),
        ("field", "field `tenant`"),
        ("unknown_tenant", "event 1: unknown tenant `ghost`"),
        ("oversized", "more than max_entry_bytes (2048)"),
        (
            "malformed",
            "needs one of the fields `event`, `commit` or `rollback`",
        ),
    ];
    for (reason, text) in expect {
        let letter = by_id[ids[reason].as_str()];
        assert_eq!(letter["reason"], reason);
        assert!(letter["error"].contains(text), "{reason}: {letter:?}");
        assert!(
            letter["error"].contains(&ids[reason]),
            "names the entry: {letter:?}"
        );
        let counted = if reason == "malformed" { 2 } else { 1 }; // and the bad commit
        assert_eq!(stats.dead_letters[reason], counted, "{reason} counted");
    }
    let commit = by_id[bad_commit.as_str()];
    assert_eq!(commit["reason"], "malformed");
    assert!(commit["error"].contains("field `commit`"), "{commit:?}");
    let oversized = by_id[ids["oversized"].as_str()];
    assert_eq!(oversized["payload"].len(), 100, "payload capped");
    assert_eq!(oversized["payload_bytes"], big.len().to_string());
    assert_eq!(stats.entries_acked, 2);
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_waited_out_never_dead_lettered() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-rate", 6397);
    let mut c = conn(&server);
    let echo = tagbust_tests::load(tagbust_tests::components::ECHO);
    let mut setup =
        tagbust::TenantSetup::new(tagbust::RuleSet::new(vec![tagbust::BoundRule::new(echo)]));
    setup.rate = Some(tagbust::tenant::tenants::RateLimit::new(
        20,
        Duration::from_secs(1),
    ));
    let host = Tagbust::builder(Arc::new(MemoryBackend::new()))
        .tenants(tagbust::Tenants::default().with_tenant("a", setup))
        .build()
        .expect("host builds");
    let keys: Vec<String> = (0..60).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    fill(&host, "a", &refs).await;
    for key in &keys {
        add_event(&mut c, emit("a", &format!("key={key}")));
    }
    let source = start(&host, config(&server, "c1"));
    let s = source.stats.clone();
    until("all 60 are acked", Duration::from_secs(15), || {
        s.snapshot().entries_acked == 60
    })
    .await;
    for key in &refs {
        assert!(!present(&host, "a", key).await, "{key} applied");
    }
    let stats = source.stop().await.snapshot();
    assert!(
        stats.retries_rate_limited > 0,
        "the limit was hit: {stats:?}"
    );
    assert_eq!(stats.dead_letters.values().sum::<u64>(), 0);
    assert_eq!(pending(&mut c), 0);
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_the_source_loses_nothing() {
    let _serial = serial().await;
    let mut server = TestRedis::start("streams-outage", 6397);
    // The cache lives on the same server: the restart takes both away.
    let backend = server.fast_failing_backend().await;
    let host = tagbust_tests::echo_host_on(backend, Relationships::new(), HostOptions::default());
    let n = 400;
    let keys: Vec<String> = (0..n).map(|i| format!("o{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    fill(&host, "a", &refs).await;
    let source = start(&host, config(&server, "c1"));
    let s = source.stats.clone();
    let producer = {
        let url = server.url();
        let keys = keys.clone();
        tokio::task::spawn_blocking(move || {
            let client = redis::Client::open(url).expect("url");
            for key in keys {
                let e = json(&[emit("a", &format!("key={key} tag=t{key}@batched"))]);
                // Retry while the server is away: the producer's own at-least-once.
                loop {
                    if let Ok(mut c) = client.get_connection()
                        && c.xadd::<_, _, _, _, String>(STREAM, "*", &[("event", &e)])
                            .is_ok()
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    until("some entries are acked", Duration::from_secs(10), || {
        s.snapshot().entries_acked > 50
    })
    .await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.restart();
    producer.await.expect("producer");
    let mut c2 = conn(&server);
    // A write whose reply the kill swallowed is retried, so the stream may hold a duplicate.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (left, len) = (pending(&mut c2), c2.xlen::<_, u64>(STREAM).unwrap_or(0));
        if left == 0 && len >= n as u64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all acked: {left} pending ({:?}), {len} entries; {:?}",
            deliveries(&mut c2),
            s.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut lost = Vec::new();
    for key in &refs {
        if present(&host, "a", key).await {
            lost.push(*key);
        }
    }
    assert!(lost.is_empty(), "0 lost; still cached: {lost:?}");
    let stats = source.stop().await.snapshot();
    assert!(
        stats.redis_errors > 0,
        "the source saw the outage: {stats:?}"
    );
    assert!(stats.entries_acked >= n as u64, "{stats:?}");
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_reading_and_acknowledges_what_it_applied() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-shutdown", 6397);
    let mut c = conn(&server);
    let options = HostOptions {
        batch_window: Duration::from_secs(5),
        ..HostOptions::default()
    };
    let host = echo_host(Relationships::new(), options);
    fill(&host, "a", &["w"]).await;
    let source = start(&host, config(&server, "c1"));
    let s = source.stats.clone();
    add_event(&mut c, emit("a", "key=w@batched"));
    until("submitted", Duration::from_secs(5), || {
        s.snapshot().events_submitted == 1
    })
    .await;
    let began = std::time::Instant::now();
    let stats = source.stop().await.snapshot();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "the window was not waited out"
    );
    assert_eq!(
        stats.entries_acked, 1,
        "flushed and acknowledged on the way out"
    );
    assert!(!present(&host, "a", "w").await);
    add_event(&mut c, emit("a", "key=w"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.snapshot().entries_read, 1, "nothing read after the stop");

    // The host shuts down under a running source: it stops by itself; what it read after
    // stays pending.
    let source = start(&host, config(&server, "c1"));
    until("the second entry is acked", Duration::from_secs(5), || {
        pending(&mut c) == 0 && source.stats.snapshot().entries_acked == 1
    })
    .await;
    host.shutdown().await.expect("shutdown");
    add_event(&mut c, emit("a", "key=late"));
    let ended = tokio::time::timeout(Duration::from_secs(5), source.task)
        .await
        .expect("the source stops when the host is shut down");
    ended.expect("no panic").expect("clean end");
    assert_eq!(pending(&mut c), 1, "read after shutdown, left pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_entries_through_two_consumers_all_end_acknowledged() {
    let _serial = serial().await;
    let server = TestRedis::start("streams-10k", 6397);
    let mut c = conn(&server);
    let host = echo_host(Relationships::new(), HostOptions::default());
    let n = 10_000;
    let keys: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    fill(&host, "a", &refs).await;
    let mut pipe = redis::pipe();
    for (i, key) in keys.iter().enumerate() {
        let strategy = if i % 2 == 0 { "" } else { "@batched" };
        let e = json(&[emit("a", &format!("key={key}{strategy}"))]);
        pipe.xadd(STREAM, "*", &[("event", e)]).ignore();
    }
    let () = pipe.query(&mut c).expect("XADD 10,000");
    let one = start(&host, config(&server, "one"));
    let two = start(&host, config(&server, "two"));
    let (s1, s2) = (one.stats.clone(), two.stats.clone());
    until("10,000 acked", Duration::from_secs(60), || {
        s1.snapshot().entries_acked + s2.snapshot().entries_acked >= n as u64
            && pending(&mut c) == 0
    })
    .await;
    let mut left = 0;
    for key in &refs {
        left += usize::from(present(&host, "a", key).await);
    }
    assert_eq!(left, 0, "every key gone");
    let (a, b) = (one.stop().await.snapshot(), two.stop().await.snapshot());
    assert!(
        a.entries_read > 0 && b.entries_read > 0,
        "both consumers worked: {a:?} {b:?}"
    );
    assert_eq!(
        a.dead_letters.values().sum::<u64>() + b.dead_letters.values().sum::<u64>(),
        0
    );
    let info: redis::streams::StreamInfoGroupsReply = c.xinfo_groups(STREAM).expect("XINFO");
    assert_eq!(info.groups[0].lag, Some(0));
    host.shutdown().await.expect("shutdown");
}
