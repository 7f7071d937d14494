//! The Redis backend against a real server on loopback (`TAGBUST_TEST_REDIS`, default
//! `redis://127.0.0.1:6379/15`). Each test uses its own key prefix and removes its keys.
//! Without a server these tests fail, saying so: CI starts one (see .ci/run).

use std::time::Duration;

mod common;

use common::{entry, op, present};
use tagbust::backend::redis::{RedisBackend, RedisOptions};
use tagbust::{Backend, BackendError, NewEntry, OpKind};

fn url() -> String {
    std::env::var("TAGBUST_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into())
}

/// A backend with a prefix of its own; its keys are removed on drop.
struct Fixture {
    backend: RedisBackend,
    prefix: String,
}

impl Fixture {
    async fn new(name: &str, options: RedisOptions) -> Fixture {
        let prefix = format!("tbtest-{name}-{}", std::process::id());
        let backend = RedisBackend::connect(
            &url(),
            RedisOptions {
                prefix: prefix.clone(),
                ..options
            },
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "these tests need a Redis server at {} ({e}); .ci/run starts one",
                url()
            )
        });
        Fixture { backend, prefix }
    }

    async fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(url()).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        keys.sort();
        keys
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(url())
            && let Ok(mut conn) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.prefix))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("UNLINK").arg(&keys).query(&mut conn);
            }
        }
    }
}

#[tokio::test]
async fn tag_key_pattern_and_tenant_invalidation() {
    let f = Fixture::new("kinds", RedisOptions::default()).await;
    common::invalidation_kinds(&f.backend).await;
    let out = f
        .backend
        .apply(&[op("a", OpKind::Pattern, "post*")])
        .await
        .expect("apply");
    assert!(
        out[0].scanned > 0,
        "patterns are scanned, and the scan is reported"
    );
}

#[tokio::test]
async fn the_layout_is_readable_from_any_client() {
    let f = Fixture::new("layout", RedisOptions::default()).await;
    f.backend
        .set(entry("acme", "k", &["t"]))
        .await
        .expect("set");
    let keys = f.keys().await;
    let p = &f.prefix;
    assert_eq!(
        keys,
        vec![format!("{p}:{{acme}}:e:k"), format!("{p}:{{acme}}:t:t")],
        "entry and tag index share the tenant's hash tag"
    );
    let client = redis::Client::open(url()).expect("url");
    let mut conn = client.get_connection().expect("connect");
    let stored: String = redis::cmd("GET")
        .arg(format!("{p}:{{acme}}:e:k"))
        .query(&mut conn)
        .expect("get");
    // Store time (µs), `;`, the tag field, `|`, the value (see entry.lua).
    let (time, rest) = stored.split_once(';').expect("a store time");
    assert!(
        time.parse::<u64>().is_ok_and(|t| t > 1_600_000_000_000_000),
        "{stored}"
    );
    assert_eq!(rest, "t:1:t|<k>");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{p}:{{acme}}:t:t"))
        .query(&mut conn)
        .expect("pttl");
    assert!(
        ttl > 0 && ttl <= 60_000,
        "the tag index carries a TTL: {ttl}"
    );
}

#[tokio::test]
async fn lazy_bumps_a_version_and_derived_entries_follow() {
    let f = Fixture::new("lazy", RedisOptions::default()).await;
    let b = &f.backend;
    b.set(entry("a", "prefs", &["prefs:9"])).await.expect("set");
    b.set(NewEntry {
        depends_on: vec!["prefs".into()],
        ..entry("a", "page", &[])
    })
    .await
    .expect("set");
    let out = b
        .apply(&[op("a", OpKind::TagVersion, "prefs:9")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 1);
    assert!(!present(b, "a", "prefs").await);
    assert!(
        !present(b, "a", "page").await,
        "inherits the parent's tag version"
    );
    b.set(entry("a", "prefs", &["prefs:9"])).await.expect("set");
    assert!(
        present(b, "a", "prefs").await,
        "stored after the bump: fresh"
    );
}

#[tokio::test]
async fn dependencies_are_invalidated_transitively() {
    let f = Fixture::new("deps", RedisOptions::default()).await;
    let b = &f.backend;
    b.set(entry("a", "order:1", &[])).await.expect("set");
    for (k, dep) in [("summary:1", "order:1"), ("dashboard", "summary:1")] {
        b.set(NewEntry {
            depends_on: vec![dep.into()],
            ..entry("a", k, &[])
        })
        .await
        .expect("set");
    }
    let out = b
        .apply(&[op("a", OpKind::Key, "order:1")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 3, "{:?}", out[0].keys);
    assert!(!present(b, "a", "dashboard").await);
}

#[tokio::test]
async fn a_fill_overtaken_by_any_invalidation_is_refused() {
    let f = Fixture::new("fill", RedisOptions::default()).await;
    common::leases_are_voided_by_every_kind_of_invalidation(&f.backend).await;
}

#[tokio::test]
async fn match_all_patterns_are_refused_and_scans_are_bounded() {
    let f = Fixture::new(
        "guard",
        RedisOptions {
            max_scan_keys: 10,
            scan_count: 5,
            ..RedisOptions::default()
        },
    )
    .await;
    let b = &f.backend;
    for i in 0..50 {
        b.set(entry("a", &format!("k{i}"), &[])).await.expect("set");
    }
    let out = b
        .apply(&[op("a", OpKind::Pattern, "*")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 0);
    assert!(
        out[0]
            .refused
            .as_deref()
            .is_some_and(|r| r.contains("matches every key"))
    );
    let out = b
        .apply(&[op("a", OpKind::Pattern, "k*")])
        .await
        .expect("apply");
    assert!(
        out[0]
            .refused
            .as_deref()
            .is_some_and(|r| r.contains("cost guard")),
        "{out:?}"
    );
    assert!(out[0].scanned >= 10);
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error_naming_the_url() {
    let result = RedisBackend::connect(
        "redis://127.0.0.1:1/0",
        RedisOptions {
            timeout: Duration::from_millis(300),
            ..RedisOptions::default()
        },
    )
    .await;
    match result {
        Err(BackendError::Unavailable(message)) => {
            assert!(message.contains("redis://127.0.0.1:1/0"), "{message}")
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

#[tokio::test]
async fn sweep_prunes_expired_members_from_tag_indexes() {
    let f = Fixture::new("sweep", RedisOptions::default()).await;
    let b = &f.backend;
    b.set(NewEntry {
        ttl: Some(Duration::from_millis(50)),
        ..entry("a", "short", &["t"])
    })
    .await
    .expect("set");
    b.set(entry("a", "long", &["t"])).await.expect("set");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let mut removed = 0;
    for _ in 0..100 {
        removed += b.sweep(1000).await.expect("sweep");
        if removed > 0 {
            break;
        }
    }
    assert_eq!(removed, 1, "the expired member left the index");
    assert!(present(b, "a", "long").await);
}

#[tokio::test]
async fn nothing_is_left_without_a_ttl_but_the_tenant_epoch() {
    let f = Fixture::new("ttl", RedisOptions::default()).await;
    let b = &f.backend;
    b.set(entry("a", "k1", &["t1", "t2"])).await.expect("set");
    b.set(NewEntry {
        depends_on: vec!["k1".into()],
        ..entry("a", "k2", &["t3"])
    })
    .await
    .expect("set");
    b.apply(&[
        op("a", OpKind::Tag, "t1"),
        op("a", OpKind::TagVersion, "t3"),
        op("a", OpKind::Key, "never-cached"),
        op("a", OpKind::Pattern, "k*"),
    ])
    .await
    .expect("apply");
    let client = redis::Client::open(url()).expect("url");
    let mut conn = client.get_connection().expect("connect");
    for key in f.keys().await {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).expect("pttl");
        assert!(
            ttl > 0 || key.ends_with(":epoch"),
            "{key} has no TTL ({ttl})"
        );
    }
}
