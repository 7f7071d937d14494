//! Seed 003: a treasury service's table → glob-pattern dependency map, invalidated after the
//! transaction commits, by currency and by entity, with a clear-all and statistics.
//!
//! Flaws fixed: (1) "if Redis is not available, return": an invalidation issued while Redis
//! was down was dropped, and the entries cached before the outage came back with it, stale,
//! for their whole TTL ("without Redis, no caching = no stale data" is false); here it is kept
//! and applied when Redis answers (`a_redis_outage_loses_no_invalidation`); (2) the race the
//! report does not mention: a reader that loaded the old row before the commit and stores it
//! after the invalidation; here its guarded fill is refused.

use std::time::Duration;

use tagbust::{Backend, FieldChange, FillOutcome, HostOptions, Operation, WriteEvent};
use tagbust::{BoundRule, RuleSet, TenantSetup, Tenants};
use tagbust_tests::{TestRedis, components, load};

use crate::support::{
    cached, drain, host, kept_or_applied, on_both_backends, private_redis_host, put, submit,
};

const T: &str = "treasury";

/// Cached views, keyed `{view}:currency:{c}:entity:{e}`.
const VIEWS: [&str; 6] = [
    "hedge_positions:currency:USD:entity:E1",
    "hedge_positions:currency:EUR:entity:E2",
    "deal_summary:currency:USD:entity:E2",
    "exposure_analysis:currency:USD:entity:E1",
    "gl_balances:currency:EUR:entity:E1",
    "gl_balances:currency:GBP:entity:E2",
];

async fn cache_views<B: Backend>(host: &tagbust::Tagbust<B>, tenant: &str) {
    for view in VIEWS {
        put(host, tenant, view, &[]).await;
    }
}

fn write(table: &str, field: &str, value: &str) -> WriteEvent {
    let mut e = WriteEvent::new(T, table, Operation::Create);
    e.changes.push(FieldChange {
        field: field.into(),
        old: None,
        new: Some(value.into()),
    });
    e
}

fn table_patterns<B: Backend>(backend: B) -> tagbust::Tagbust<B> {
    host(
        backend,
        &[components::TABLE_PATTERNS],
        HostOptions::default(),
    )
}

/// Held until commit, never before; a rollback drops it; a fill racing the commit is refused.
async fn invalidation_waits_for_the_commit<B: Backend>(backend: B) {
    let host = table_patterns(backend);
    cache_views(&host, T).await;
    let mut booking = write("deal_bookings", "currency", "USD");
    booking.transaction = Some("tx-1".into());
    let report = submit(&host, booking.clone()).await;
    assert_eq!((report.held, report.applied), (2, 0));
    assert_eq!(
        cached(&host, T, &VIEWS).await,
        VIEWS,
        "not before the commit"
    );

    // A reader misses, loads the pre-commit row, and tries to store it after the commit.
    let racing = "hedge_positions:currency:USD:entity:E3";
    let lease = host
        .cache()
        .begin_fill(T, racing, &[])
        .await
        .expect("lease");
    assert_eq!(host.commit(T, "tx-1").await.expect("commit").released, 2);
    let spec = tagbust::FillSpec {
        tenant: T.into(),
        key: racing.into(),
        tags: Vec::new(),
        ttl: Some(Duration::from_secs(600)),
        depends_on: Vec::new(),
    };
    let stored = host
        .cache()
        .complete_fill(lease, &spec, b"old".to_vec())
        .await;
    assert_eq!(
        stored.expect("fill"),
        FillOutcome::Refused,
        "the stale-set race"
    );

    assert_eq!(
        cached(&host, T, &VIEWS).await,
        vec![VIEWS[1], VIEWS[3], VIEWS[4], VIEWS[5]],
        "USD hedge positions and deal summaries"
    );

    booking.transaction = Some("tx-2".into());
    booking.changes[0].new = Some("EUR".into());
    submit(&host, booking).await;
    assert_eq!(host.rollback(T, "tx-2"), 2);
    host.flush().await.expect("flush");
    assert_eq!(cached(&host, T, &[VIEWS[1]]).await.len(), 1, "rolled back");
}

/// Reference data narrows over every view: a rate kills its currency, an entity its entity.
async fn by_currency_and_by_entity<B: Backend>(backend: B) {
    let host = table_patterns(backend);
    cache_views(&host, T).await;
    submit(&host, write("fx_rates", "currency", "EUR")).await;
    assert_eq!(
        cached(&host, T, &VIEWS).await,
        vec![VIEWS[0], VIEWS[2], VIEWS[3], VIEWS[5]]
    );
    submit(&host, write("entities", "entity_id", "E2")).await;
    assert_eq!(cached(&host, T, &VIEWS).await, vec![VIEWS[0], VIEWS[3]]);
}

/// Clear all (one tenant's cache, nobody else's), and the statistics the report asked for.
async fn clear_all_and_statistics<B: Backend>(backend: B) {
    let host = table_patterns(backend);
    for tenant in [T, "other"] {
        cache_views(&host, tenant).await;
    }
    let report = submit(
        &host,
        WriteEvent::new(T, "hedge_instructions", Operation::BulkUpdate),
    )
    .await;
    assert_eq!((report.applied, report.keys_removed), (5, 3));

    // Clear all, through the host: counted and explained like any invalidation.
    let out = host.clear_tenant(T).await.expect("clear all");
    assert_eq!(out.keys_removed, 3);
    assert!(cached(&host, T, &VIEWS).await.is_empty());
    assert_eq!(cached(&host, "other", &VIEWS).await, VIEWS);

    let stats = host.stats();
    assert_eq!(stats.events, 1);
    assert_eq!(stats.rules["table-patterns"].calls, 1);
    // The rule's five patterns, and the clear-all (counted as the pattern `*`).
    assert_eq!(stats.targets.get("pattern/immediate"), Some(&6));
    assert_eq!(stats.ops_applied.get("pattern"), Some(&5));
    assert_eq!(stats.ops_applied.get("tenant"), Some(&1));
    assert_eq!(stats.keys_removed, 6);
}

on_both_backends!(
    invalidation_waits_for_the_commit,
    by_currency_and_by_entity,
    clear_all_and_statistics,
);

/// Redis goes down with views cached; writes go on; nothing is dropped, and the views cached
/// before the outage die once it is back. Private server on port 6393.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_invalidation() {
    let mut server = TestRedis::start("seed-tables", 6393);
    let rules = RuleSet::new(vec![BoundRule::new(load(components::TABLE_PATTERNS))]);
    let host = private_redis_host(&server, Tenants::new(TenantSetup::new(rules))).await;
    cache_views(&host, T).await;

    server.kill();
    let first = kept_or_applied(
        host.submit(vec![write("gl_entries", "currency", "EUR")])
            .await,
    );
    assert!(
        first.deferred > 0,
        "the outage hit this submission: {first:?}"
    );
    let report = host
        .submit(vec![write("deal_bookings", "entity_id", "E2")])
        .await
        .expect("degraded: queued at once, not refused");
    assert_eq!(report.deferred, 2);
    assert!(host.stats().backend_errors >= 1);

    server.restart();
    drain(&host).await;
    assert_eq!(
        cached(&host, T, &VIEWS).await,
        vec![VIEWS[0], VIEWS[3], VIEWS[5]],
        "EUR gl balances, E2 hedge positions and deal summaries"
    );
}
