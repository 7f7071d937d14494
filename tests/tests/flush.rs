//! `flush` racing the worker: when `flush` returns `Ok`, what was pending when it was called
//! is applied, even if the worker's window flush had already taken it out of the batcher and
//! was still applying it. (Without the host's flush gate, the second `flush` found the batcher
//! empty and returned at once, with the keys still cached: the seeds' outage test saw it under
//! load.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tagbust::{HostOptions, MemoryBackend, Op, Relationships};
use tagbust_tests::hooked::{BeforeApply, Hooked};
use tagbust_tests::{echo_host_on, emit, entry};
use tokio::sync::{Notify, Semaphore};

/// Holds one `apply` call at the door until released, when asked to.
struct Door {
    hold_next: AtomicBool,
    entered: Notify,
    door: Semaphore,
}

impl BeforeApply for Door {
    async fn before_apply(&self, _ops: &[Op]) {
        if self.hold_next.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            let _permit = self.door.acquire().await.expect("the door is never closed");
        }
    }
}

/// The in-memory backend behind the door.
type Held = Hooked<MemoryBackend, Door>;

fn held() -> Held {
    Hooked::new(
        MemoryBackend::new(),
        Door {
            hold_next: AtomicBool::new(false),
            entered: Notify::new(),
            door: Semaphore::new(0),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_the_batch_the_worker_is_applying() {
    let host = echo_host_on(
        held(),
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
