//! The in-memory tagged cache: every invalidation kind, dependencies, lazy versions, leases,
//! expiry, and indexes that never leak.

use std::time::Duration;

mod common;

use common::{op, present};
use tagbust::backend::memory::IndexSizes;
use tagbust::{Backend, FillOutcome, MemoryBackend, NewEntry, OpKind};

/// Entries without TTL, so index sizes can be checked exactly.
fn entry(tenant: &str, key: &str, tags: &[&str]) -> NewEntry {
    NewEntry {
        ttl: None,
        ..common::entry(tenant, key, tags)
    }
}

#[tokio::test]
async fn tag_key_pattern_and_tenant_invalidation() {
    let b = MemoryBackend::new();
    common::invalidation_kinds(&b).await;
    assert!(b.is_empty("a"));
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
    common::leases_are_voided_by_every_kind_of_invalidation(&b).await;
    // An expired lease is refused.
    let lease = b.begin_fill("a", "late", &[]).await.expect("lease");
    tokio::time::advance(Duration::from_secs(11)).await;
    let outcome = b
        .complete_fill(lease, entry("a", "late", &[]))
        .await
        .expect("fill");
    assert_eq!(outcome, FillOutcome::Refused);
    b.sweep(usize::MAX).await.expect("sweep");
    assert_eq!(b.index_sizes().leases, 0, "expired leases are swept");
}
