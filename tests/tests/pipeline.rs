//! The embedded host end to end: strategies, batching window, coalescing, cascades,
//! transactions, tenant confinement, dedupe, explain, shutdown. Rules are real components.

use std::time::Duration;

use tagbust::{HostError, HostOptions, MemoryBackend, Relationships, Tagbust};
use tagbust_tests::{echo_host, emit, entry};

async fn has(host: &Tagbust<MemoryBackend>, tenant: &str, key: &str) -> bool {
    host.cache().get(tenant, key).await.expect("get").is_some()
}

async fn seed(host: &Tagbust<MemoryBackend>, entries: &[(&str, &str, &[&str])]) {
    for (tenant, key, tags) in entries {
        host.cache()
            .set(entry(tenant, key, tags))
            .await
            .expect("set");
    }
}

fn default_host() -> Tagbust<MemoryBackend> {
    echo_host(Relationships::new(), HostOptions::default())
}

#[tokio::test(start_paused = true)]
async fn immediate_is_applied_before_submit_returns() {
    let host = default_host();
    seed(&host, &[("a", "post:1", &["feed"]), ("a", "post:2", &[])]).await;
    let report = host
        .submit(vec![emit("a", "tag=feed key=post:2")])
        .await
        .expect("submit");
    assert_eq!((report.applied, report.keys_removed), (2, 2));
    assert!(!has(&host, "a", "post:1").await && !has(&host, "a", "post:2").await);
}

#[tokio::test(start_paused = true)]
async fn batched_waits_for_the_window_or_a_flush() {
    let host = echo_host(
        Relationships::new(),
        HostOptions {
            batch_window: Duration::from_millis(200),
            ..HostOptions::default()
        },
    );
    seed(
        &host,
        &[("a", "w1", &["widgets"]), ("a", "w2", &["gadgets"])],
    )
    .await;
    let report = host
        .submit(vec![emit("a", "tag=widgets@batched")])
        .await
        .expect("submit");
    assert_eq!((report.applied, report.batched), (0, 1));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(has(&host, "a", "w1").await, "still inside the window");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !has(&host, "a", "w1").await,
        "the window ended and the worker flushed"
    );

    host.submit(vec![emit("a", "tag=gadgets@batched")])
        .await
        .expect("submit");
    assert_eq!(
        host.flush().await.expect("flush").keys_removed,
        1,
        "an explicit flush applies at once"
    );
    assert!(!has(&host, "a", "w2").await);
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_events_on_a_hundred_tags_coalesce_to_a_hundred_invalidations() {
    let host = default_host();
    for chunk in (0..10_000).collect::<Vec<u32>>().chunks(500) {
        let events = chunk
            .iter()
            .map(|i| emit("a", &format!("tag=t{}@batched", i % 100)))
            .collect();
        host.submit(events).await.expect("submit");
    }
    host.flush().await.expect("flush");
    let stats = host.stats();
    assert_eq!(stats.events, 10_000);
    assert_eq!(stats.batched_targets, 10_000);
    assert_eq!(stats.ops_applied.get("tag"), Some(&100));
    assert_eq!(stats.batched_ops_applied, 100);
    assert_eq!(stats.coalescing_ratio, 100.0);
}

#[tokio::test(start_paused = true)]
async fn the_size_cap_flushes_before_the_window() {
    let host = echo_host(
        Relationships::new(),
        HostOptions {
            batch_max_ops: 10,
            batch_window: Duration::from_secs(5),
            ..HostOptions::default()
        },
    );
    let events = (0..10)
        .map(|i| emit("a", &format!("tag=t{i}@batched")))
        .collect();
    host.submit(events).await.expect("submit");
    assert_eq!(host.stats().flushes, 1);
}

#[tokio::test(start_paused = true)]
async fn lazy_bumps_a_version_and_the_entry_reads_as_a_miss() {
    let host = default_host();
    seed(
        &host,
        &[("a", "p1", &["prefs:9"]), ("a", "p2", &["prefs:9"])],
    )
    .await;
    let report = host
        .submit(vec![emit("a", "tag=prefs:9@lazy")])
        .await
        .expect("submit");
    assert_eq!(report.applied, 1);
    assert_eq!(host.backend().len("a"), 2, "O(1): nothing removed yet");
    assert!(!has(&host, "a", "p1").await);
    assert_eq!(host.stats().ops_applied.get("tag_version"), Some(&1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        host.backend().is_empty("a"),
        "the worker's sweep removed the rest"
    );
}

#[tokio::test(start_paused = true)]
async fn cascades_follow_relationships_to_the_configured_depth() {
    let relationships = Relationships::new()
        .edges("user", &["session", "preferences"])
        .edge("session", "device")
        .edge("device", "token")
        .bidirectional("preferences", "user");
    let host = echo_host(relationships, HostOptions::default());
    seed(
        &host,
        &[
            ("a", "u", &["user:42"]),
            ("a", "s", &["session:42"]),
            ("a", "p", &["preferences:42"]),
            ("a", "d", &["device:42"]),
            ("a", "t", &["token:42"]),
            ("a", "other", &["session:43"]),
        ],
    )
    .await;
    let report = host
        .submit(vec![emit("a", "tag=user:42+cascade")])
        .await
        .expect("submit");
    assert_eq!(
        report.targets, 4,
        "user, session, preferences, device (depth 2)"
    );
    for gone in ["u", "s", "p", "d"] {
        assert!(!has(&host, "a", gone).await, "{gone}");
    }
    assert!(has(&host, "a", "t").await, "token is 3 edges away");
    assert!(has(&host, "a", "other").await, "another user's session");
    assert_eq!(host.stats().cascaded_tags, 3);
    let why = host.explain().why("a", "d");
    assert_eq!(why[0].origin.cascaded_from.as_deref(), Some("session:42"));
    assert_eq!(why[0].origin.target, "user:42");
}

#[tokio::test(start_paused = true)]
async fn transactions_hold_until_commit_and_drop_on_rollback() {
    let host = default_host();
    seed(
        &host,
        &[("a", "k1", &[]), ("a", "k2", &[]), ("b", "k1", &[])],
    )
    .await;
    let mut e = emit("a", "key=k1");
    e.transaction = Some("tx-1".into());
    let report = host.submit(vec![e]).await.expect("submit");
    assert_eq!((report.applied, report.held), (0, 1));
    assert!(has(&host, "a", "k1").await, "not before commit");
    assert_eq!(
        host.commit("b", "tx-1").await.expect("commit").released,
        0,
        "another tenant's tx"
    );
    assert_eq!(host.commit("a", "tx-1").await.expect("commit").released, 1);
    assert!(!has(&host, "a", "k1").await);
    assert!(has(&host, "b", "k1").await);

    let mut e = emit("a", "key=k2");
    e.transaction = Some("tx-2".into());
    host.submit(vec![e]).await.expect("submit");
    assert_eq!(host.rollback("a", "tx-2"), 1);
    host.flush().await.expect("flush");
    assert!(
        has(&host, "a", "k2").await,
        "rolled back: the data never changed"
    );
    let stats = host.stats();
    assert_eq!(
        (stats.transactions_committed, stats.transactions_rolled_back),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_transaction_is_applied_after_the_timeout_and_counted() {
    let host = echo_host(
        Relationships::new(),
        HostOptions {
            transaction_timeout: Duration::from_secs(10),
            ..HostOptions::default()
        },
    );
    seed(&host, &[("a", "k", &[])]).await;
    let mut e = emit("a", "key=k");
    e.transaction = Some("forgotten".into());
    host.submit(vec![e]).await.expect("submit");
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(has(&host, "a", "k").await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!has(&host, "a", "k").await, "applied conservatively");
    let stats = host.stats();
    assert_eq!(
        (stats.transactions_timed_out, stats.transactions_open),
        (1, 0)
    );
    assert_eq!(
        host.explain().why("a", "k")[0].applied.applied_as,
        "tx_timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tenant_cannot_reach_another_tenants_keys() {
    let host = tagbust_tests::named_echo_host(MemoryBackend::new(), &["a", "b"]);
    seed(
        &host,
        &[
            ("a", "shared:1", &["t"]),
            ("b", "shared:1", &["t"]),
            ("b", "b-only", &[]),
            ("b", "b:shared:1", &[]),
        ],
    )
    .await;
    // Tenant `a` aims at `b` four ways: b's prefix, b's hash tag, the backend's own key
    // layout, and a pattern under b's prefix. Its own `pattern=*`, `tag=t` and a key that
    // only `b` has stay inside `a` (structurally).
    let report = host
        .submit(vec![emit(
            "a",
            "pattern=* tag=t key=b-only key=b:shared:1 key={b}:shared:1 key=tb:{b}:e:b-only pattern=b:*",
        )])
        .await
        .expect("submit");
    assert_eq!(
        host.stats().confinement_violations,
        4,
        "each attempt counted: {report:?}"
    );
    assert!(!has(&host, "a", "shared:1").await, "a's own entry went");
    for key in ["shared:1", "b-only", "b:shared:1"] {
        assert!(has(&host, "b", key).await, "b's `{key}` was not reached");
    }
}

#[tokio::test(start_paused = true)]
async fn identical_targets_across_events_apply_once_and_explain_both() {
    let host = default_host();
    seed(&host, &[("a", "k", &["t"])]).await;
    host.submit(vec![emit("a", "tag=t"), emit("a", "tag=t key=k")])
        .await
        .expect("submit");
    let stats = host.stats();
    assert_eq!(stats.ops_applied.get("tag"), Some(&1));
    assert_eq!(stats.ops_applied.get("key"), Some(&1));
    let why = host.explain().why("a", "k");
    assert_eq!(why.len(), 2, "both events are credited: {why:?}");
    assert_eq!(why[0].origin.rule.name(), "echo");
    assert_eq!(why[0].origin.rule.version(), "1.0.0");
    assert_ne!(why[0].origin.event.seq, why[1].origin.event.seq);
}

#[tokio::test(start_paused = true)]
async fn a_bad_event_refuses_the_submission_and_is_counted() {
    let host = default_host();
    seed(&host, &[("a", "k", &[])]).await;
    let mut bad = emit("a", "key=k");
    bad.tenant = "../etc".into();
    let err = host
        .submit(vec![emit("a", "key=k"), bad])
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, HostError::InvalidEvent { index: 1, field, .. } if field == "tenant"),
        "{err}"
    );
    assert!(has(&host, "a", "k").await, "nothing was applied");
    assert_eq!(host.stats().events_rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_applies_pending_batches_and_open_transactions() {
    let host = default_host();
    seed(&host, &[("a", "b", &["batchy"]), ("a", "t", &[])]).await;
    let mut e = emit("a", "key=t");
    e.transaction = Some("open".into());
    host.submit(vec![emit("a", "tag=batchy@batched"), e])
        .await
        .expect("submit");
    host.shutdown().await.expect("shutdown");
    assert!(!has(&host, "a", "b").await);
    assert!(!has(&host, "a", "t").await);
    assert!(matches!(
        host.submit(vec![emit("a", "key=x")]).await,
        Err(HostError::ShutDown)
    ));
}

#[tokio::test(start_paused = true)]
async fn rule_failures_are_counted_per_rule() {
    let host = default_host();
    host.submit(vec![emit("a", "nonsense")])
        .await
        .expect("submit");
    let stats = host.stats();
    assert_eq!(stats.rules["echo"].failures.get("rule_error"), Some(&1));
    assert_eq!(stats.rules["echo"].calls, 1);
}

#[tokio::test(start_paused = true)]
async fn one_operation_asked_for_by_many_events_keeps_a_bounded_explanation() {
    let host = default_host();
    seed(&host, &[("a", "k", &["hot"])]).await;
    let events = (0..500).map(|_| emit("a", "tag=hot")).collect();
    let report = host.submit(events).await.expect("submit");
    assert_eq!(report.applied, 1, "500 identical targets, one operation");
    let why = host.explain().why("a", "k");
    assert_eq!(why.len(), 32, "origins kept per operation are capped");
    assert_eq!(why[0].applied.coalesced, 500, "but all of them are counted");
}
