//! Redis failing under the host: connections killed mid-batch, and the server restarted while
//! events keep coming. Zero invalidations may be lost. Each test runs its own redis-server on
//! a port of its own (see `TestRedis`), so killing clients touches nothing else.

use std::sync::Arc;
use std::time::Duration;

use tagbust::backend::{RedisBackend, RedisOptions};
use tagbust::{
    Backend, BoundRule, HostError, HostOptions, NewEntry, RuleSet, Tagbust, TenantSetup, Tenants,
};
use tagbust_tests::{TestRedis, components, emit, load};

async fn host_on(server: &TestRedis, options: HostOptions) -> Tagbust<RedisBackend> {
    let backend = RedisBackend::connect(
        &server.url(),
        RedisOptions {
            timeout: Duration::from_millis(500),
            attempts: 3,
            backoff: Duration::from_millis(10),
            ..RedisOptions::default()
        },
    )
    .await
    .expect("connect");
    let rules = RuleSet::new(vec![BoundRule::new(load(components::ECHO))]);
    Tagbust::builder(Arc::new(backend))
        .tenants(Tenants::new(TenantSetup::new(rules)))
        .options(options)
        .build()
        .expect("host builds")
}

async fn seed(host: &Tagbust<RedisBackend>, n: usize, tags: usize) {
    for i in 0..n {
        host.backend()
            .set(NewEntry {
                tenant: "a".into(),
                key: format!("k{i}"),
                value: b"v".to_vec(),
                tags: vec![format!("t{}", i % tags)],
                ttl: Some(Duration::from_secs(600)),
                depends_on: Vec::new(),
            })
            .await
            .expect("seed");
    }
}

async fn remaining(host: &Tagbust<RedisBackend>, n: usize) -> usize {
    let mut left = 0;
    for i in 0..n {
        if host
            .backend()
            .get("a", &format!("k{i}"))
            .await
            .expect("get")
            .is_some()
        {
            left += 1;
        }
    }
    left
}

/// Flushes until the backend takes everything (it may still be reconnecting).
async fn drain(host: &Tagbust<RedisBackend>) {
    for _ in 0..200 {
        if host.flush().await.is_ok() && host.stats().transactions_open == 0 {
            let again = host.flush().await;
            if again.is_ok_and(|r| r.operations == 0) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the backend never came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_mid_batch_lose_no_invalidation() {
    let server = TestRedis::start("kill", 6391);
    let host = host_on(&server, HostOptions::default()).await;
    seed(&host, 2000, 200).await;
    let killer = {
        let url = server.url();
        tokio::task::spawn_blocking(move || {
            for _ in 0..30 {
                std::thread::sleep(Duration::from_millis(3));
                tagbust_tests::kill_clients(&url);
            }
        })
    };
    let mut failed = 0;
    for chunk in (0..200).collect::<Vec<usize>>().chunks(10) {
        let events = chunk
            .iter()
            .map(|i| emit("a", &format!("tag=t{i}")))
            .collect();
        match host.submit(events).await {
            Ok(report) if report.deferred > 0 => failed += 1,
            Ok(_) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    killer.await.expect("killer");
    drain(&host).await;
    assert_eq!(
        remaining(&host, 2000).await,
        0,
        "{failed} submissions saw the backend fail"
    );
    assert!(host.stats().keys_removed >= 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_load_loses_no_invalidation_and_the_queue_is_bounded() {
    let mut server = TestRedis::start("restart", 6392);
    let host = host_on(
        &server,
        HostOptions {
            max_pending_ops: 50,
            ..HostOptions::default()
        },
    )
    .await;
    seed(&host, 300, 100).await;
    // Down: invalidations wait in the host's queue, then the queue pushes back.
    server.kill();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..100 {
        match host.submit(vec![emit("a", &format!("tag=t{i}"))]).await {
            Ok(_) => accepted.push(i),
            Err(HostError::Backpressure { pending }) => {
                assert!(pending >= 50);
                refused += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "a full queue must push back, not grow");
    assert!(host.stats().events_refused_backpressure > 0);
    // Back up with its data (AOF): every accepted invalidation is applied.
    server.restart();
    drain(&host).await;
    let left = remaining(&host, 300).await;
    // Entries k{i} carry tag t{i % 100}: accepted tags' entries are gone, the rest remain.
    let expected_left = (0..300).filter(|i| !accepted.contains(&(i % 100))).count();
    assert_eq!(left, expected_left, "accepted {} tags", accepted.len());
    // And the refused events can be submitted again now.
    for i in (0..100).filter(|i| !accepted.contains(i)) {
        host.submit(vec![emit("a", &format!("tag=t{i}"))])
            .await
            .expect("accepted once the backend is back");
    }
    drain(&host).await;
    assert_eq!(remaining(&host, 300).await, 0);
}
