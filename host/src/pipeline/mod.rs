//! The host a service embeds: events in, invalidations applied.
//!
//! ```text
//! submit(events) → validate → evaluate (blocking pool) → plan → route (cascade, strategy)
//!   → transaction? hold until commit : immediate/lazy → apply now; batched → coalesce
//! worker: flush the batch window, expire transactions, sweep the backend
//! ```

mod apply;
mod batcher;
mod evaluate;
pub mod explain;
mod options;
pub mod route;
pub mod stats;
mod tx;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::Backend;
use crate::cache::Cache;
use crate::event::WriteEvent;
use crate::ingest::check_event;
use crate::target::Strategy;
use crate::tenants::Tenants;
use batcher::Batcher;
use explain::ExplainLog;
pub use options::{HostError, HostOptions, SubmitReport};
use route::Routed;
use stats::{Stats, StatsSnapshot};
use tx::Transactions;

/// Builds a [`Tagbust`] host.
pub struct Builder<B: Backend> {
    backend: Arc<B>,
    tenants: Tenants,
    options: HostOptions,
}

impl<B: Backend> Builder<B> {
    pub fn tenants(mut self, tenants: Tenants) -> Self {
        self.tenants = tenants;
        self
    }

    pub fn options(mut self, options: HostOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the host. Must be called inside a tokio runtime: it spawns the worker that
    /// flushes batch windows, expires transactions and sweeps the backend.
    pub fn build(self) -> Tagbust<B> {
        let mut options = self.options;
        options.batch_window = options
            .batch_window
            .clamp(Duration::from_millis(10), Duration::from_millis(5000));
        let inner = Arc::new(Inner {
            backend: self.backend,
            tenants: RwLock::new(Arc::new(self.tenants)),
            explain: ExplainLog::new(options.explain_capacity),
            options,
            batcher: Mutex::new(Batcher::default()),
            txs: Mutex::new(Transactions::default()),
            stats: Arc::new(Stats::default()),
            wake: Notify::new(),
            seq: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        inner.tracker.spawn(worker::run(inner.clone()));
        Tagbust { inner }
    }
}

/// The embedded host. Cheap to clone; every clone is the same host.
pub struct Tagbust<B: Backend> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Tagbust<B> {
    fn clone(&self) -> Self {
        Tagbust {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<B: Backend> {
    backend: Arc<B>,
    tenants: RwLock<Arc<Tenants>>,
    options: HostOptions,
    batcher: Mutex<Batcher>,
    txs: Mutex<Transactions>,
    stats: Arc<Stats>,
    explain: ExplainLog,
    /// Wakes the worker when the first batched operation arrives or a transaction opens.
    wake: Notify,
    seq: AtomicU64,
    /// Set when the backend failed, cleared when it answers again: while set, submissions
    /// queue their operations instead of waiting on a backend that is down.
    degraded: AtomicBool,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded data stays consistent across every panic point (none depends on input).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<B: Backend> Tagbust<B> {
    pub fn builder(backend: Arc<B>) -> Builder<B> {
        Builder {
            backend,
            tenants: Tenants::default(),
            options: HostOptions::default(),
        }
    }

    /// The cache client services use to read and fill the same backend.
    pub fn cache(&self) -> Cache<B> {
        Cache::new(self.inner.backend.clone(), self.inner.stats.clone())
    }

    pub fn backend(&self) -> &Arc<B> {
        &self.inner.backend
    }

    /// Replaces the tenant setups; batches already evaluating finish with the old ones.
    pub fn set_tenants(&self, tenants: Tenants) {
        *self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(tenants);
    }

    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.inner.stats.snapshot();
        s.transactions_open = lock(&self.inner.txs).len() as u64;
        s
    }

    pub fn explain(&self) -> &ExplainLog {
        &self.inner.explain
    }

    /// Evaluates `events`, applies what is due now, queues what is batched, holds what
    /// belongs to an open transaction.
    ///
    /// Events are validated first; one invalid event refuses the whole submission (nothing is
    /// applied) with its index and field, so the caller can fix or drop it and resubmit.
    pub async fn submit(&self, events: Vec<WriteEvent>) -> Result<SubmitReport, HostError> {
        let inner = &self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(HostError::ShutDown);
        }
        if let Some((index, (field, message))) = events.iter().enumerate().find_map(|(i, e)| {
            check_event(e, &inner.options.event_limits)
                .err()
                .map(|r| (i, r))
        }) {
            let n = events.len() as u64;
            inner.stats.update(|s| s.events_rejected += n);
            return Err(HostError::InvalidEvent {
                index,
                field,
                message,
            });
        }
        let pending = lock(&inner.batcher).len();
        if pending >= inner.options.max_pending_ops {
            let n = events.len() as u64;
            inner.stats.update(|s| s.events_refused_backpressure += n);
            return Err(HostError::Backpressure { pending });
        }
        let n = events.len();
        let first_seq = inner.seq.fetch_add(n as u64, Ordering::Relaxed);
        let tenants = inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let stats = inner.stats.clone();
        let span = tracing::debug_span!("tagbust.submit", events = n);
        let evaluated = tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            evaluate::evaluate_and_route(&tenants, &stats, events, first_seq)
        })
        .await
        .map_err(|e| HostError::Evaluation(e.to_string()))?;

        let mut report = SubmitReport {
            events: n,
            rule_failures: evaluated.failures,
            ..SubmitReport::default()
        };
        let mut now: Vec<Routed> = Vec::new();
        let mut batched: Vec<Routed> = Vec::new();
        for evaluate::EventRouting { tx, routed } in evaluated.events {
            report.targets += routed.len();
            match tx {
                Some((tenant, tx)) => {
                    report.held += routed.len();
                    lock(&inner.txs).hold(&tenant, &tx, routed);
                    inner.wake.notify_one();
                }
                None => {
                    for r in routed {
                        if r.strategy == Strategy::Batched {
                            batched.push(r);
                        } else {
                            now.push(r);
                        }
                    }
                }
            }
        }
        report.batched = batched.len();
        let mut pending = self.enqueue(batched);
        if !now.is_empty() && inner.degraded.load(Ordering::Relaxed) {
            report.deferred = now.len();
            pending = self.enqueue(now);
        } else if !now.is_empty() {
            let (applied, removed) = self.apply_now(now, None).await?;
            report.applied = applied;
            report.keys_removed = removed;
        }
        // While degraded the worker retries; the caller is not made to wait on a dead backend.
        if pending >= inner.options.batch_max_ops && !inner.degraded.load(Ordering::Relaxed) {
            self.flush().await?;
        }
        Ok(report)
    }

    /// Queues batched operations; returns how many are pending.
    fn enqueue(&self, batched: Vec<Routed>) -> usize {
        if batched.is_empty() {
            return lock(&self.inner.batcher).len();
        }
        let mut batcher = lock(&self.inner.batcher);
        let was_empty = batcher.len() == 0;
        let pending = batcher.add(batched);
        drop(batcher);
        if was_empty {
            self.inner.wake.notify_one();
        }
        pending
    }

    /// Commits transaction `tx` of `tenant`: its held invalidations go out by their strategy.
    /// Returns the number of operations released.
    pub async fn commit(&self, tenant: &str, tx: &str) -> Result<usize, HostError> {
        let held = lock(&self.inner.txs).take(tenant, tx);
        let Some(held) = held else {
            return Ok(0);
        };
        self.inner.stats.update(|s| s.transactions_committed += 1);
        let count = held.routed.len();
        let (batched, now): (Vec<Routed>, Vec<Routed>) = held
            .routed
            .into_iter()
            .partition(|r| r.strategy == Strategy::Batched);
        self.enqueue(batched);
        if !now.is_empty() {
            self.apply_now(now, None).await?;
        }
        Ok(count)
    }

    /// Rolls back transaction `tx` of `tenant`: its held invalidations are dropped (the data
    /// never changed). Returns the number of operations dropped.
    pub fn rollback(&self, tenant: &str, tx: &str) -> usize {
        let held = lock(&self.inner.txs).take(tenant, tx);
        match held {
            Some(h) => {
                self.inner.stats.update(|s| s.transactions_rolled_back += 1);
                h.routed.len()
            }
            None => 0,
        }
    }

    /// Applies every transaction open for longer than the timeout, conservatively.
    async fn expire_transactions(&self) {
        let cutoff = tokio::time::Instant::now() - self.inner.options.transaction_timeout;
        let expired = lock(&self.inner.txs).expire(cutoff);
        for ((tenant, tx), held) in expired {
            tracing::warn!(
                tenant,
                transaction = tx,
                events = held.events,
                "transaction neither committed nor rolled back in time; applying its invalidations"
            );
            self.inner.stats.update(|s| s.transactions_timed_out += 1);
            let _ = self.apply_now(held.routed, Some("tx_timeout")).await;
        }
    }

    /// Stops the worker, then applies everything pending: the batch window and (conservatively)
    /// open transactions. Later submissions are refused.
    pub async fn shutdown(&self) -> Result<(), HostError> {
        let inner = &self.inner;
        inner.shutdown.cancel();
        inner.tracker.close();
        inner.tracker.wait().await;
        let open = lock(&inner.txs).drain();
        for ((tenant, tx), held) in open {
            tracing::warn!(
                tenant,
                transaction = tx,
                "open at shutdown; applying its invalidations"
            );
            inner.stats.update(|s| s.transactions_timed_out += 1);
            self.apply_now(held.routed, Some("shutdown")).await?;
        }
        self.flush().await?;
        Ok(())
    }
}
