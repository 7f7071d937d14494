//! The in-memory tagged cache: every invalidation kind, dependencies, lazy versions, leases,
//! expiry, and indexes that never leak.

use std::time::Duration;

use tagbust::backend::memory::IndexSizes;
use tagbust::{Backend, FillOutcome, MemoryBackend, NewEntry, Op, OpKind};

fn entry(tenant: &str, key: &str, tags: &[&str]) -> NewEntry {
    NewEntry {
        tenant: tenant.into(),
        key: key.into(),
        value: key.as_bytes().to_vec(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ttl: None,
        depends_on: Vec::new(),
    }
}

fn op(tenant: &str, kind: OpKind, value: &str) -> Op {
    Op {
        tenant: tenant.into(),
        kind,
        value: value.into(),
    }
}

async fn present(b: &MemoryBackend, tenant: &str, key: &str) -> bool {
    b.get(tenant, key).await.expect("get").is_some()
}

#[tokio::test]
async fn tag_key_pattern_and_tenant_invalidation() {
    let b = MemoryBackend::new();
    for (k, tags) in [
        ("post:1", &["feed", "author:7"][..]),
        ("post:2", &["feed"][..]),
        ("user:7", &["author:7"][..]),
        ("report:2024", &[][..]),
    ] {
        b.set(entry("a", k, tags)).await.expect("set");
    }
    b.set(entry("b", "post:1", &["feed"])).await.expect("set");

    let out = b
        .apply(&[op("a", OpKind::Tag, "feed")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 2);
    assert!(!present(&b, "a", "post:1").await && !present(&b, "a", "post:2").await);
    assert!(present(&b, "b", "post:1").await, "tenant b untouched");
    assert!(present(&b, "a", "user:7").await);

    let out = b
        .apply(&[op("a", OpKind::Pattern, "rep*")])
        .await
        .expect("apply");
    assert_eq!(out[0].keys, vec!["report:2024"]);
    let out = b
        .apply(&[op("a", OpKind::Key, "user:7")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 1);
    assert!(b.is_empty("a"));

    b.set(entry("a", "x", &[])).await.expect("set");
    b.apply(&[op("a", OpKind::Tenant, "")])
        .await
        .expect("apply");
    assert!(b.is_empty("a"));
    assert!(present(&b, "b", "post:1").await);
    // Idempotent: applying again removes nothing and does not fail.
    let out = b
        .apply(&[op("a", OpKind::Tag, "feed")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 0);
}

#[tokio::test]
async fn removed_entries_leave_every_index() {
    let b = MemoryBackend::new();
    b.set(entry("a", "k1", &["t1", "t2"])).await.expect("set");
    b.set(NewEntry {
        depends_on: vec!["k1".into()],
        ..entry("a", "k2", &["t2"])
    })
    .await
    .expect("set");
    b.apply(&[op("a", OpKind::Tag, "t1")]).await.expect("apply");
    assert_eq!(
        b.index_sizes(),
        IndexSizes::default(),
        "k1 and its dependent k2 are gone"
    );
}

#[tokio::test]
async fn dependencies_are_invalidated_transitively_without_cycles() {
    let b = MemoryBackend::new();
    b.set(entry("a", "order:1", &["order"])).await.expect("set");
    for (k, dep) in [
        ("summary:1", "order:1"),
        ("dashboard", "summary:1"),
        ("order:1", "dashboard"),
    ] {
        // The last one makes a cycle: order:1 now depends on dashboard.
        let tags = if k == "order:1" {
            vec!["order".to_owned()]
        } else {
            Vec::new()
        };
        b.set(NewEntry {
            depends_on: vec![dep.into()],
            tags,
            ..entry("a", k, &[])
        })
        .await
        .expect("set");
    }
    let out = b
        .apply(&[op("a", OpKind::Key, "summary:1")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 3, "{:?}", out[0].keys);
    assert!(b.is_empty("a"));
}

#[tokio::test(start_paused = true)]
async fn lazy_bumps_are_o1_then_swept() {
    let b = MemoryBackend::new();
    for i in 0..100 {
        b.set(entry("a", &format!("k{i}"), &["hot"]))
            .await
            .expect("set");
    }
    b.set(NewEntry {
        depends_on: vec!["k0".into()],
        ..entry("a", "derived", &[])
    })
    .await
    .expect("set");
    let out = b
        .apply(&[op("a", OpKind::TagVersion, "hot")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 100, "reported as invalidated");
    assert_eq!(b.len("a"), 101, "nothing removed yet: the bump is O(1)");
    assert!(
        !present(&b, "a", "k5").await,
        "a stale entry reads as a miss"
    );
    assert!(
        !present(&b, "a", "derived").await,
        "derived entries inherit the version"
    );
    // Entries stored after the bump are fresh.
    b.set(entry("a", "k5", &["hot"])).await.expect("set");
    assert!(present(&b, "a", "k5").await);
    b.sweep(usize::MAX).await.expect("sweep");
    assert_eq!(b.len("a"), 1);
    b.apply(&[op("a", OpKind::Key, "k5")]).await.expect("apply");
    b.sweep(usize::MAX).await.expect("sweep");
    assert_eq!(
        b.index_sizes(),
        IndexSizes::default(),
        "versions forgotten once unused"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_entries_miss_and_are_swept() {
    let b = MemoryBackend::new();
    b.set(NewEntry {
        ttl: Some(Duration::from_secs(5)),
        ..entry("a", "k", &["t"])
    })
    .await
    .expect("set");
    b.set(NewEntry {
        ttl: Some(Duration::from_secs(50)),
        ..entry("a", "long", &["t"])
    })
    .await
    .expect("set");
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(b.sweep(usize::MAX).await.expect("sweep"), 1);
    assert!(!present(&b, "a", "k").await);
    assert!(present(&b, "a", "long").await);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(
        !present(&b, "a", "long").await,
        "a read of an expired entry misses"
    );
    b.sweep(usize::MAX).await.expect("sweep");
    assert_eq!(b.index_sizes(), IndexSizes::default());
}

#[tokio::test(start_paused = true)]
async fn leases_are_voided_by_every_kind_of_invalidation() {
    let b = MemoryBackend::with_lease_ttl(Duration::from_secs(10));
    let cases = [
        op("a", OpKind::Key, "k"),
        op("a", OpKind::Tag, "t"),
        op("a", OpKind::TagVersion, "t"),
        op("a", OpKind::Pattern, "k*"),
        op("a", OpKind::Tenant, ""),
    ];
    for case in cases {
        let lease = b.begin_fill("a", "k", &["t".into()]).await.expect("lease");
        b.apply(std::slice::from_ref(&case)).await.expect("apply");
        let outcome = b
            .complete_fill(lease, entry("a", "k", &["t"]))
            .await
            .expect("fill");
        assert_eq!(outcome, FillOutcome::Refused, "{case:?}");
        assert!(!present(&b, "a", "k").await);
    }
    // Unrelated invalidations and other tenants do not void it.
    let lease = b.begin_fill("a", "k", &["t".into()]).await.expect("lease");
    b.apply(&[op("a", OpKind::Tag, "other"), op("b", OpKind::Tenant, "")])
        .await
        .expect("apply");
    let outcome = b
        .complete_fill(lease, entry("a", "k", &["t"]))
        .await
        .expect("fill");
    assert_eq!(outcome, FillOutcome::Stored);
    // An expired lease is refused.
    let lease = b.begin_fill("a", "late", &[]).await.expect("lease");
    tokio::time::advance(Duration::from_secs(11)).await;
    let outcome = b
        .complete_fill(lease, entry("a", "late", &[]))
        .await
        .expect("fill");
    assert_eq!(outcome, FillOutcome::Refused);
    // A lease cannot fill another key.
    let lease = b.begin_fill("a", "k", &[]).await.expect("lease");
    assert!(
        b.complete_fill(lease, entry("a", "other", &[]))
            .await
            .is_err()
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    b.sweep(usize::MAX).await.expect("sweep");
    assert_eq!(b.index_sizes().leases, 0, "expired leases are swept");
}
