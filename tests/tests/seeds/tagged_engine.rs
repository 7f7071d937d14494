//! Seed 004: a tagged invalidation engine with strategies (immediate, batched, lazy, cascade),
//! relationships (cascade depth, bidirectional edges), transitive key dependencies, rules with
//! priorities, conditions and patterns, a batching delay of 10–5000 ms (default 100 ms) with
//! flush, statistics, and namespaced keys `{namespace}:{id}:{subtype}`.
//!
//! Flaws fixed: (1) the engine's rules and dependency tracker lived in one process's memory
//! (a `CacheDependencyTracker` dict that only grew); here dependencies live with the entries in
//! the backend, leave with them, and work across processes on Redis; (2) the batch timer was a
//! per-process thread, so pending invalidations died with the process; here shutdown applies
//! them (`pipeline.rs`), and the window is tested on paused time below.

use std::time::Duration;

use tagbust::{
    Backend, BoundRule, FieldChange, HostOptions, Operation, Relationships, RuleSet, Tagbust,
    TenantSetup, Tenants, WriteEvent,
};
use tagbust_tests::{components, emit, load};

use crate::support::{cached, host_with, on_both_backends, put, put_entry, submit};

const T: &str = "app";

/// The seed's relationship `user → {session, …}` with depth 2, a chain beyond it, and a
/// bidirectional edge `user ↔ account`. `echo` lets the test invalidate any tag directly.
fn tenants() -> Tenants {
    let relationships = Relationships::new()
        .edge("user", "session")
        .edge("session", "device")
        .edge("device", "token")
        .bidirectional("user", "account")
        .max_depth(2);
    let rules = RuleSet::new(vec![
        BoundRule::new(load(components::USER_SESSIONS)),
        BoundRule::new(load(components::ECHO)),
    ]);
    Tenants::new(TenantSetup::new(rules).with_relationships(relationships))
}

fn user_write(op: Operation, id: &str, fields: &[&str]) -> WriteEvent {
    let mut e = WriteEvent::new(T, "users", op);
    e.ids = vec![id.into()];
    for field in fields {
        e.changes.push(FieldChange {
            field: (*field).into(),
            old: Some("a".into()),
            new: Some("b".into()),
        });
    }
    e
}

const KEYS: [&str; 13] = [
    "user:42:profile",
    "user:42:session",
    "user:42:account",
    "user:42:device",
    "user:42:token",
    "user:42:prefs",
    "user:42:presence",
    "user:42:avatar",
    "dashboard:42",
    "report:42",
    "user:43:profile",
    "user:43:session",
    "user:44:avatar",
];

/// Namespaced keys; the dashboard derives from the profile and the report from the dashboard.
async fn cache_users<B: Backend>(host: &Tagbust<B>) {
    for (key, tag) in [
        ("user:42:profile", "user:42"),
        ("user:42:session", "session:42"),
        ("user:42:account", "account:42"),
        ("user:42:device", "device:42"),
        ("user:42:token", "token:42"),
        ("user:42:prefs", "preferences:42"),
        ("user:42:presence", "presence:42"),
        ("user:43:profile", "user:43"),
        ("user:43:session", "session:43"),
    ] {
        put(host, T, key, &[tag]).await;
    }
    put(host, T, "user:42:avatar", &[]).await;
    put(host, T, "user:44:avatar", &[]).await;
    put_entry(host, T, "dashboard:42", &[], &["user:42:profile"]).await;
    put_entry(host, T, "report:42", &[], &["dashboard:42"]).await;
}

async fn strategies_relationships_and_dependencies<B: Backend>(backend: B) {
    let host = host_with(backend, tenants(), HostOptions::default());
    cache_users(&host).await;

    // Condition: a write that only touches `last_seen` is a batched presence refresh.
    let report = submit(&host, user_write(Operation::Update, "42", &["last_seen"])).await;
    assert_eq!((report.batched, report.applied), (1, 0));
    host.flush().await.expect("flush");
    assert!(cached(&host, T, &["user:42:presence"]).await.is_empty());

    // Cascade to depth 2: user → session, account (1) → device (2); token is 3 edges away.
    // Transitive key dependencies: the profile takes the dashboard, which takes the report.
    let report = submit(&host, user_write(Operation::Update, "42", &["email"])).await;
    assert_eq!(report.targets, 4, "user, session, account, device");
    assert_eq!(
        cached(&host, T, &KEYS).await,
        vec![
            "user:42:token",
            "user:42:prefs",
            "user:42:avatar",
            "user:43:profile",
            "user:43:session",
            "user:44:avatar"
        ]
    );

    // Lazy: a preferences change bumps `preferences:42`; the entry reads as a miss.
    submit(&host, user_write(Operation::Update, "42", &["preferences"])).await;
    assert!(cached(&host, T, &["user:42:prefs"]).await.is_empty());

    // Bidirectional: an account invalidation reaches its user, and from there the session.
    submit(&host, emit(T, "tag=account:43+cascade")).await;
    assert!(
        cached(&host, T, &["user:43:profile", "user:43:session"])
            .await
            .is_empty()
    );

    // Namespaced keys: deleting user 42 kills `user:42:*`, tagged or not, and no other user's.
    submit(&host, user_write(Operation::Delete, "42", &[])).await;
    assert_eq!(cached(&host, T, &KEYS).await, vec!["user:44:avatar"]);

    let stats = host.stats();
    assert_eq!(stats.events, 5);
    assert_eq!(stats.targets.get("tag/batched"), Some(&1));
    assert_eq!(stats.targets.get("tag/lazy"), Some(&1));
    assert_eq!(stats.targets.get("pattern/immediate"), Some(&1));
    assert_eq!(stats.ops_applied.get("tag_version"), Some(&1));
    assert_eq!(stats.cascaded_tags, 3 + 3 + 2 + 3, "four cascades");
    assert_eq!(stats.rules["user-sessions"].events, 4);
}

on_both_backends!(strategies_relationships_and_dependencies);

/// Priorities: higher applies first, whatever order the rules were given in.
#[test]
fn rules_apply_in_priority_order() {
    let set = RuleSet::new(vec![
        BoundRule::new(load(components::BULK_MODELS)),
        BoundRule::new(load(components::USER_SESSIONS)),
    ]);
    let evaluation = set.evaluate(&[user_write(Operation::Delete, "42", &[])]);
    let plan: Vec<(&str, &str)> = evaluation.events[0]
        .plan
        .iter()
        .map(|p| (p.rule.name(), p.value.as_str()))
        .collect();
    assert_eq!(
        plan,
        vec![
            ("user-sessions", "user:42"),
            ("user-sessions", "user:42:*"),
            ("bulk-models", "users:queries"),
            ("bulk-models", "users:42"),
        ]
    );
}

fn presence_host(window: Option<Duration>) -> Tagbust<tagbust::MemoryBackend> {
    let options = HostOptions {
        batch_window: window.unwrap_or(HostOptions::default().batch_window),
        ..HostOptions::default()
    };
    host_with(tagbust::MemoryBackend::new(), tenants(), options)
}

/// How long a batched presence refresh waits: still cached just before `window`, gone just
/// after (paused time: the test controls the clock).
async fn waits(host: &Tagbust<tagbust::MemoryBackend>, window: Duration) -> bool {
    put(host, T, "user:1:presence", &["presence:1"]).await;
    submit(host, user_write(Operation::Update, "1", &["last_seen"])).await;
    let step = Duration::from_millis(1);
    tokio::time::sleep(window - step).await;
    let before = cached(host, T, &["user:1:presence"]).await.len() == 1;
    tokio::time::sleep(step * 2).await;
    let after = cached(host, T, &["user:1:presence"]).await.is_empty();
    before && after
}

#[tokio::test(start_paused = true)]
async fn the_batching_delay_is_100ms_by_default_and_kept_within_10_to_5000ms() {
    let ms = Duration::from_millis;
    assert!(waits(&presence_host(None), ms(100)).await, "default");
    assert!(
        waits(&presence_host(Some(ms(250))), ms(250)).await,
        "configured"
    );
    let low = presence_host(Some(ms(1)));
    assert_eq!(low.options().batch_window, ms(10), "reported as raised");
    assert!(waits(&low, ms(10)).await, "raised to 10 ms");
    let high = presence_host(Some(ms(60_000)));
    assert_eq!(high.options().batch_window, ms(5000), "reported as cut");
    assert!(waits(&high, ms(5000)).await, "cut to 5 s");
}

#[tokio::test(start_paused = true)]
async fn a_presence_storm_coalesces_and_flush_applies_it_at_once() {
    let host = presence_host(Some(Duration::from_secs(5)));
    let events = (0..100)
        .map(|i| user_write(Operation::Update, &(i % 5).to_string(), &["last_seen"]))
        .collect();
    let report = host.submit(events).await.expect("submit");
    assert_eq!((report.batched, report.applied), (100, 0));
    host.flush().await.expect("flush");
    let stats = host.stats();
    assert_eq!(stats.ops_applied.get("tag"), Some(&5));
    assert_eq!(stats.coalescing_ratio, 20.0);
}
