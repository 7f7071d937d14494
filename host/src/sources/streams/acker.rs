//! Acknowledging entries once the host has applied them, without holding up the reader.
//!
//! Each tracked submission gets a small task that awaits its [`Applied`] future and hands
//! the entry ids to one acknowledger task, which `XACK`s whatever has arrived in one call
//! (retrying while Redis is down). A semaphore bounds the entries in flight: the reader
//! takes a permit per entry before submitting, the acknowledger returns it after `XACK`.
//! Ids whose invalidations were never applied ([`crate::pipeline::NotApplied`]) are not
//! acknowledged: they stay pending and are delivered again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::StreamConfig;
use super::link::{self, Link};
use super::stats::StreamStats;
use crate::pipeline::{Applied, NotApplied};

/// Most ids in one `XACK`.
const ACK_BATCH: usize = 4096;

/// Entries submitted and not yet acknowledged, with when each was last refreshed.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<HashMap<String, Instant>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn insert(&self, ids: &[String]) {
        let now = Instant::now();
        let mut map = self.lock();
        for id in ids {
            map.insert(id.clone(), now);
        }
    }

    fn remove(&self, ids: &[String]) {
        let mut map = self.lock();
        for id in ids {
            map.remove(id);
        }
    }

    /// Ids last refreshed before `older_than`, marked refreshed now (the caller resets
    /// their idle time in Redis).
    pub fn stale(&self, older_than: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut map = self.lock();
        map.iter_mut()
            .filter(|(_, at)| now.duration_since(**at) >= older_than)
            .map(|(id, at)| {
                *at = now;
                id.clone()
            })
            .collect()
    }
}

struct Done {
    ids: Vec<String>,
    result: Result<(), NotApplied>,
    _permit: OwnedSemaphorePermit,
}

pub(crate) struct Acker {
    tx: mpsc::UnboundedSender<Done>,
    task: JoinHandle<()>,
    permits: Arc<Semaphore>,
    pub in_flight: Arc<InFlight>,
}

impl Acker {
    pub fn spawn(link: Link, cfg: Arc<StreamConfig>, stats: Arc<StreamStats>) -> Acker {
        let (tx, rx) = mpsc::unbounded_channel();
        let in_flight = Arc::new(InFlight::default());
        let task = tokio::spawn(acknowledge(rx, link, cfg.clone(), stats, in_flight.clone()));
        Acker {
            tx,
            task,
            permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
            in_flight,
        }
    }

    /// Waits for room for `n` more entries in flight; `None` if `shutdown` fires first.
    pub async fn room(
        &self,
        n: usize,
        shutdown: &CancellationToken,
    ) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        tokio::select! {
            permit = self.permits.clone().acquire_many_owned(n) => permit.ok(),
            () = shutdown.cancelled() => None,
        }
    }

    /// Acknowledges `ids` once `applied` resolves Ok.
    pub fn track(&self, ids: Vec<String>, applied: Applied, permit: OwnedSemaphorePermit) {
        self.in_flight.insert(&ids);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = applied.await;
            // The acknowledger is gone only after shutdown's wait: the ids stay pending.
            let _ = tx.send(Done {
                ids,
                result,
                _permit: permit,
            });
        });
    }

    /// Acknowledges `ids` now (nothing of them waits on the host).
    pub fn ack_now(&self, ids: Vec<String>, permit: OwnedSemaphorePermit) {
        self.in_flight.insert(&ids);
        let _ = self.tx.send(Done {
            ids,
            result: Ok(()),
            _permit: permit,
        });
    }

    /// Stops taking entries and waits up to `wait` for those in flight to be applied and
    /// acknowledged; what is left stays pending in Redis.
    pub async fn drain(self, wait: Duration) -> usize {
        let Acker {
            tx,
            mut task,
            in_flight,
            ..
        } = self;
        drop(tx);
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            task.abort();
        }
        in_flight.len()
    }
}

async fn acknowledge(
    mut rx: mpsc::UnboundedReceiver<Done>,
    mut link: Link,
    cfg: Arc<StreamConfig>,
    stats: Arc<StreamStats>,
    in_flight: Arc<InFlight>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < ACK_BATCH {
            match rx.try_recv() {
                Ok(done) => batch.push(done),
                Err(_) => break,
            }
        }
        let mut ids = Vec::new();
        for done in &mut batch {
            match done.result {
                Ok(()) => ids.append(&mut done.ids),
                Err(not_applied) => {
                    tracing::warn!(
                        stream = %cfg.stream, group = %cfg.group, entries = ?done.ids,
                        "{not_applied}: the entries stay pending and will be delivered again"
                    );
                    StreamStats::add(&stats.entries_not_applied, done.ids.len() as u64);
                    in_flight.remove(&done.ids);
                }
            }
        }
        let mut wait = cfg.backoff;
        while !ids.is_empty() {
            match link.run(async |c| link::ack(c, &cfg, &ids).await).await {
                Ok(_) => {
                    StreamStats::add(&stats.entries_acked, ids.len() as u64);
                    break;
                }
                Err(e) => {
                    StreamStats::add(&stats.redis_errors, 1);
                    tracing::warn!(
                        stream = %cfg.stream, group = %cfg.group, entries = ids.len(),
                        "XACK failed (retrying in {wait:?}): {e}"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(cfg.max_backoff);
                }
            }
        }
        in_flight.remove(&ids);
        StreamStats::set(&stats.in_flight, in_flight.len() as u64);
        batch.clear(); // returns the permits
    }
}
