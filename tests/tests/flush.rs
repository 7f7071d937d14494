//! `flush` racing the worker: when `flush` returns `Ok`, what was pending when it was called
//! is applied, even if the worker's window flush had already taken it out of the batcher and
//! was still applying it. (Without the host's flush gate, the second `flush` found the batcher
//! empty and returned at once, with the keys still cached: the seeds' outage test saw it under
//! load.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tagbust::{
    Backend, BackendError, FillLease, FillOutcome, HostOptions, MemoryBackend, NewEntry, Op,
    OpOutcome, Relationships,
};
use tagbust_tests::{echo_host_on, emit, entry};
use tokio::sync::{Notify, Semaphore};

/// The in-memory backend with one `apply` call held at the door until released.
struct Held {
    inner: MemoryBackend,
    hold_next: AtomicBool,
    entered: Notify,
    door: Semaphore,
}

impl Held {
    fn new() -> Held {
        Held {
            inner: MemoryBackend::new(),
            hold_next: AtomicBool::new(false),
            entered: Notify::new(),
            door: Semaphore::new(0),
        }
    }
}

impl Backend for Held {
    async fn apply(&self, ops: &[Op]) -> Result<Vec<OpOutcome>, BackendError> {
        if self.hold_next.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            let _permit = self.door.acquire().await.expect("the door is never closed");
        }
        self.inner.apply(ops).await
    }

    async fn set(&self, entry: NewEntry) -> Result<(), BackendError> {
        self.inner.set(entry).await
    }

    async fn set_many(&self, entries: Vec<NewEntry>) -> Result<(), BackendError> {
        self.inner.set_many(entries).await
    }

    async fn get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.get(tenant, key).await
    }

    async fn begin_fill(
        &self,
        tenant: &str,
        key: &str,
        tags: &[String],
    ) -> Result<FillLease, BackendError> {
        self.inner.begin_fill(tenant, key, tags).await
    }

    async fn complete_fill(
        &self,
        lease: FillLease,
        entry: NewEntry,
    ) -> Result<FillOutcome, BackendError> {
        self.inner.complete_fill(lease, entry).await
    }

    async fn sweep(&self, budget: usize) -> Result<usize, BackendError> {
        self.inner.sweep(budget).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_the_batch_the_worker_is_applying() {
    let host = echo_host_on(
        Held::new(),
        Relationships::new(),
        HostOptions {
            batch_window: Duration::from_millis(20),
            ..HostOptions::default()
        },
    );
    let cache = host.cache();
    cache
        .set(entry("a", "w1", &["widgets"]))
        .await
        .expect("set");

    let backend: Arc<Held> = host.backend().clone();
    backend.hold_next.store(true, Ordering::SeqCst);
    let entered = backend.entered.notified();
    host.submit(vec![emit("a", "tag=widgets@batched")])
        .await
        .expect("submit");
    tokio::time::timeout(Duration::from_secs(10), entered)
        .await
        .expect("the worker's window flush reached the backend");
    assert!(
        cache.get("a", "w1").await.expect("get").is_some(),
        "held at the door: not applied yet"
    );

    let door = backend.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        door.door.add_permits(1);
    });
    host.flush().await.expect("flush");
    assert!(
        cache.get("a", "w1").await.expect("get").is_none(),
        "flush returned Ok while the worker's batch was still in flight"
    );
    release.await.expect("release task");
}
