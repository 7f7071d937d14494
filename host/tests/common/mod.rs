//! What every backend must do, written once and run against each (memory_backend.rs,
//! redis_backend.rs), plus the helpers both use.

#[allow(dead_code, reason = "only some test binaries start private servers")]
pub mod server;

use std::time::Duration;

use tagbust::{Backend, FillOutcome, NewEntry, Op, OpKind};

/// An entry whose value is `<key>`, with a 60 s TTL.
pub fn entry(tenant: &str, key: &str, tags: &[&str]) -> NewEntry {
    NewEntry {
        tenant: tenant.into(),
        key: key.into(),
        value: format!("<{key}>").into_bytes(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ttl: Some(Duration::from_secs(60)),
        depends_on: Vec::new(),
    }
}

pub fn op(tenant: &str, kind: OpKind, value: &str) -> Op {
    Op {
        tenant: tenant.into(),
        kind,
        value: value.into(),
    }
}

pub async fn present<B: Backend>(b: &B, tenant: &str, key: &str) -> bool {
    b.get(tenant, key).await.expect("get").is_some()
}

/// Tag, pattern, key and tenant invalidation; tenants stay apart; applying again is harmless.
pub async fn invalidation_kinds<B: Backend>(b: &B) {
    for (k, tags) in [
        ("post:1", &["feed", "author:7"][..]),
        ("post:2", &["feed"][..]),
        ("user:7", &["author:7"][..]),
        ("report:2024", &[][..]),
    ] {
        b.set(entry("a", k, tags)).await.expect("set");
    }
    b.set(entry("b", "post:1", &["feed"])).await.expect("set");
    assert_eq!(
        b.get("a", "post:1").await.expect("get"),
        Some(b"<post:1>".to_vec())
    );

    let out = b
        .apply(&[op("a", OpKind::Tag, "feed")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 2);
    assert!(!present(b, "a", "post:1").await && !present(b, "a", "post:2").await);
    assert!(present(b, "b", "post:1").await, "tenant b untouched");
    assert!(present(b, "a", "user:7").await);

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
    assert!(!present(b, "a", "user:7").await);

    b.set(entry("a", "x", &[])).await.expect("set");
    b.apply(&[op("a", OpKind::Tenant, "")])
        .await
        .expect("apply");
    assert!(!present(b, "a", "x").await);
    assert!(present(b, "b", "post:1").await);
    let out = b
        .apply(&[op("a", OpKind::Tag, "feed")])
        .await
        .expect("apply");
    assert_eq!(out[0].removed, 0, "idempotent");
}

/// A fill lease is voided by every kind of invalidation that can touch its key, and only by
/// those; a lease cannot fill another key.
pub async fn leases_are_voided_by_every_kind_of_invalidation<B: Backend>(b: &B) {
    let tags = vec!["t".to_owned()];
    for case in [
        op("a", OpKind::Key, "k"),
        op("a", OpKind::Tag, "t"),
        op("a", OpKind::TagVersion, "t"),
        op("a", OpKind::Pattern, "k*"),
        op("a", OpKind::Tenant, ""),
    ] {
        let lease = b.begin_fill("a", "k", &tags).await.expect("lease");
        b.apply(std::slice::from_ref(&case)).await.expect("apply");
        let outcome = b
            .complete_fill(lease, entry("a", "k", &["t"]))
            .await
            .expect("fill");
        assert_eq!(outcome, FillOutcome::Refused, "{case:?}");
        assert!(!present(b, "a", "k").await);
    }
    let lease = b.begin_fill("a", "k", &tags).await.expect("lease");
    b.apply(&[op("a", OpKind::Tag, "other"), op("b", OpKind::Tenant, "")])
        .await
        .expect("apply");
    let outcome = b
        .complete_fill(lease, entry("a", "k", &["t"]))
        .await
        .expect("fill");
    assert_eq!(outcome, FillOutcome::Stored);
    assert!(present(b, "a", "k").await);
    let lease = b.begin_fill("a", "k", &tags).await.expect("lease");
    assert!(
        b.complete_fill(lease, entry("a", "other", &["t"]))
            .await
            .is_err()
    );
}
