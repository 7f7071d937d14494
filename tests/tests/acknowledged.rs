//! Nothing accepted is lost, and the caller knows when it is applied.
//!
//! - `submit_tracked`'s future resolves only once every invalidation of the submission is in
//!   the backend: immediate ones at once, batched ones after their window, held ones after
//!   commit (a rollback resolves it: nothing was to be applied).
//! - Shutdown on a dead backend hands back every operation it could not apply (open
//!   transactions included), counts them, and resolves waiting acknowledgements with
//!   `NotApplied`: 0 lost silently.
//! - Redis down while tracked submissions arrive: nothing resolves until Redis is back, then
//!   everything does. Private servers on ports 6395 and 6396.

use std::time::Duration;

use futures_util::FutureExt;
use tagbust::backend::RedisBackend;
use tagbust::pipeline::NotApplied;
use tagbust::{HostOptions, Tagbust};
use tagbust_tests::{TestRedis, echo_host, emit, entry};

fn tx(mut e: tagbust::WriteEvent, id: &str) -> tagbust::WriteEvent {
    e.transaction = Some(id.into());
    e
}

#[tokio::test(start_paused = true)]
async fn the_acknowledgement_waits_for_the_window_and_the_commit() {
    let host = echo_host(tagbust::Relationships::new(), HostOptions::default());
    let cache = host.cache();
    for key in ["now", "later", "held"] {
        cache.set(entry("a", key, &[key])).await.expect("set");
    }
    // Immediate: applied during the call, acknowledged at once.
    let (report, applied) = host
        .submit_tracked(vec![emit("a", "tag=now")])
        .await
        .expect("accepted");
    assert_eq!(report.applied, 1);
    assert_eq!(applied.now_or_never(), Some(Ok(())));

    // Batched: not before the window ends.
    let (_, mut batched) = host
        .submit_tracked(vec![emit("a", "tag=later@batched")])
        .await
        .expect("accepted");
    assert!(
        (&mut batched).now_or_never().is_none(),
        "still in the window"
    );
    assert!(cache.get("a", "later").await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(batched.await, Ok(()));
    assert!(cache.get("a", "later").await.expect("get").is_none());

    // Held for a transaction: not before commit.
    let (_, mut held) = host
        .submit_tracked(vec![tx(emit("a", "tag=held"), "tx-1")])
        .await
        .expect("accepted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!((&mut held).now_or_never().is_none(), "held until commit");
    assert_eq!(host.commit("a", "tx-1").await.expect("commit").applied, 1);
    assert_eq!(held.await, Ok(()));

    // Rolled back: nothing to apply, acknowledged.
    let (_, rolled) = host
        .submit_tracked(vec![tx(emit("a", "tag=x"), "tx-2")])
        .await
        .expect("accepted");
    assert_eq!(host.rollback("a", "tx-2"), 1);
    assert_eq!(rolled.await, Ok(()));

    // Nothing planned at all: acknowledged at once.
    let (_, nothing) = host
        .submit_tracked(vec![emit("a", "")])
        .await
        .expect("accepted");
    assert_eq!(nothing.now_or_never(), Some(Ok(())));
    host.shutdown().await.expect("shutdown");
}

async fn redis_host(server: &TestRedis, options: HostOptions) -> Tagbust<RedisBackend> {
    let backend = server.fast_failing_backend().await;
    tagbust_tests::echo_host_on(backend, tagbust::Relationships::new(), options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_a_dead_backend_hands_back_every_operation() {
    let mut server = TestRedis::start("shutdown-dead", 6395);
    let host = redis_host(
        &server,
        HostOptions {
            batch_window: Duration::from_secs(5),
            ..HostOptions::default()
        },
    )
    .await;
    // Three open transactions of two tenants, and a batch window with two operations.
    let mut waiting = Vec::new();
    for (tenant, id, target) in [
        ("a", "tx-1", "t1"),
        ("a", "tx-2", "t2"),
        ("b", "tx-1", "t3"),
    ] {
        let (report, applied) = host
            .submit_tracked(vec![tx(emit(tenant, &format!("tag={target}")), id)])
            .await
            .expect("accepted");
        assert_eq!(report.held, 1);
        waiting.push(applied);
    }
    let (report, applied) = host
        .submit_tracked(vec![emit("a", "tag=b1@batched key=b2@batched")])
        .await
        .expect("accepted");
    assert_eq!(report.batched, 2);
    waiting.push(applied);

    server.kill();
    let err = host.shutdown().await.expect_err("the backend is dead");
    assert_eq!(err.report.transactions_applied, 3);
    let mut handed: Vec<(String, String, Vec<String>)> = err
        .unapplied
        .iter()
        .map(|u| {
            (
                u.op.tenant.to_string(),
                u.op.value.clone(),
                u.transactions.clone(),
            )
        })
        .collect();
    handed.sort();
    assert_eq!(
        handed,
        vec![
            ("a".into(), "b1".into(), vec![]),
            ("a".into(), "b2".into(), vec![]),
            ("a".into(), "t1".into(), vec!["tx-1".to_owned()]),
            ("a".into(), "t2".into(), vec!["tx-2".to_owned()]),
            ("b".into(), "t3".into(), vec!["tx-1".to_owned()]),
        ],
        "every operation comes back: 0 lost"
    );
    assert_eq!(host.stats().ops_unapplied_at_shutdown, 5);
    for applied in waiting {
        assert!(
            matches!(applied.await, Err(NotApplied { .. })),
            "a waiting acknowledgement learns it was not applied"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_wait_out_an_outage_and_then_all_resolve() {
    let mut server = TestRedis::start("ack-outage", 6396);
    let host = redis_host(&server, HostOptions::default()).await;
    let cache = host.cache();
    for i in 0..20 {
        cache
            .set(entry("a", &format!("k{i}"), &[&format!("t{i}")]))
            .await
            .expect("set");
    }
    server.kill();
    let mut waiting = Vec::new();
    let mut deferred = 0;
    for i in 0..20 {
        let (report, applied) = host
            .submit_tracked(vec![emit("a", &format!("tag=t{i}"))])
            .await
            .expect("accepted while Redis is down");
        deferred += report.deferred;
        waiting.push(applied);
    }
    assert_eq!(deferred, 20, "every operation was kept for retry");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for applied in &mut waiting {
        assert!(
            applied.now_or_never().is_none(),
            "not acknowledged while down"
        );
    }
    server.restart();
    for applied in waiting {
        let done = tokio::time::timeout(Duration::from_secs(20), applied)
            .await
            .expect("resolves once Redis is back");
        assert_eq!(done, Ok(()));
    }
    for i in 0..20 {
        let left = cache.get("a", &format!("k{i}")).await.expect("get");
        assert!(left.is_none(), "k{i} invalidated after the outage");
    }
    host.shutdown().await.expect("shutdown");
}
