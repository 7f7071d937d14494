//! Redis failing under the host: connections killed mid-batch, and the server restarted while
//! events keep coming. Zero invalidations may be lost. Each test runs its own redis-server on
//! a port of its own (see `TestRedis`), so killing clients touches nothing else.

use std::time::Duration;

use tagbust::backend::RedisBackend;
use tagbust::{Backend, HostError, HostOptions, NewEntry, Tagbust};
use tagbust_tests::{TestRedis, emit};

async fn host_on(server: &TestRedis, options: HostOptions) -> Tagbust<RedisBackend> {
    let backend = server.fast_failing_backend().await;
    tagbust_tests::echo_host_on(backend, tagbust::Relationships::new(), options)
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
    let control = redis::Client::open(server.url()).expect("url");
    let mut control = control
        .get_multiplexed_async_connection()
        .await
        .expect("control connection");
    let mut hit = 0;
    for chunk in (0..200).collect::<Vec<usize>>().chunks(10) {
        // Pause Redis's writes so the batch (Lua scripts are writes) is in flight and
        // waiting, then kill the host's connection under it: the kill hits that batch.
        let () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(2000)
            .arg("WRITE")
            .query_async(&mut control)
            .await
            .expect("pause");
        let events = chunk
            .iter()
            .map(|i| emit("a", &format!("tag=t{i}")))
            .collect();
        let submit = tokio::spawn({
            let host = host.clone();
            async move { host.submit(events).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut control)
            .await
            .expect("kill");
        let () = redis::cmd("CLIENT")
            .arg("UNPAUSE")
            .query_async(&mut control)
            .await
            .expect("unpause");
        let report = submit.await.expect("joined").expect("accepted");
        if killed > 0 {
            hit += 1;
        }
        assert!(report.applied + report.deferred > 0, "{report:?}");
    }
    drain(&host).await;
    assert_eq!(hit, 20, "every batch had its connection killed under it");
    assert!(
        host.backend().retries() >= 20,
        "each killed batch was retried: {} retries",
        host.backend().retries()
    );
    // Correctness is what is left, not the count: a batch whose reply is lost after Redis
    // ran it is retried and finds its keys already gone, so `keys_removed` may undercount.
    assert_eq!(remaining(&host, 2000).await, 0, "0 invalidations lost");
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
    assert!(
        host.stats().backend_errors > 0,
        "the outage reached the host: its applies failed"
    );
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
