//! The host a service embeds: events in, invalidations applied.
//!
//! ```text
//! submit(events) → validate → evaluate (blocking pool) → plan → route (cascade, strategy)
//!   → transaction? hold until commit : immediate/lazy → apply now; batched → coalesce
//! worker: flush the batch window, expire transactions, sweep the backend
//! ```

mod batcher;
mod evaluate;
pub mod explain;
pub mod route;
pub mod stats;
mod tx;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backend::{Backend, BackendError, Op};
use crate::cache::Cache;
use crate::event::WriteEvent;
use crate::ingest::{EventLimits, check_event};
use crate::target::Strategy;
use crate::tenants::Tenants;
use batcher::{Batcher, Pending};
use explain::ExplainLog;
use route::{Origin, Routed};
use stats::{Stats, StatsSnapshot};
use tx::Transactions;

/// Host settings, each with its default.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// How long `batched` invalidations wait to be coalesced. Default 100 ms; clamped to
    /// 10–5000 ms.
    pub batch_window: Duration,
    /// Distinct pending operations that force a flush before the window ends. Default 10,000.
    pub batch_max_ops: usize,
    /// Pending operations (batched, or kept for retry while the backend is down) past which
    /// `submit` refuses new events with [`HostError::Backpressure`] instead of growing without
    /// bound. Accepted operations are never dropped. Default 100,000.
    pub max_pending_ops: usize,
    /// How long a transaction may stay open before its invalidations are applied anyway.
    /// Default 30 s.
    pub transaction_timeout: Duration,
    /// How often the backend is swept of expired and lazily-invalidated entries. Default 1 s.
    pub sweep_interval: Duration,
    /// Most entries one sweep removes. Default 10,000.
    pub sweep_budget: usize,
    /// Explain records kept (a ring: the newest win). Default 1,024: small enough to stay in
    /// cache, where a larger ring makes every eviction a cache miss (measured: a 10,000-record
    /// ring cost ~20% of end-to-end throughput). 0 turns explain off.
    pub explain_capacity: usize,
    /// Caps on incoming events.
    pub event_limits: EventLimits,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            batch_window: Duration::from_millis(100),
            batch_max_ops: 10_000,
            max_pending_ops: 100_000,
            transaction_timeout: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(1),
            sweep_budget: 10_000,
            explain_capacity: 1024,
            event_limits: EventLimits::default(),
        }
    }
}

/// Why a submission or flush failed. Nothing is lost on these errors: operations that could
/// not be applied stay pending and are retried at the next flush.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error(
        "event {index} refused: field `{field}`: {message} (nothing in this submission was applied)"
    )]
    InvalidEvent {
        index: usize,
        field: String,
        message: String,
    },
    #[error("the host is shut down")]
    ShutDown,
    #[error(
        "{pending} invalidations are waiting for the backend; submission refused (retry later)"
    )]
    Backpressure { pending: usize },
    #[error("applying invalidations failed ({pending} kept for retry): {source}")]
    Backend {
        pending: usize,
        source: BackendError,
    },
    #[error("rule evaluation was interrupted: {0}")]
    Evaluation(String),
}

/// What one submission did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubmitReport {
    pub events: usize,
    /// Targets planned (after dedupe), cascades included.
    pub targets: usize,
    /// Operations applied during the call (immediate and lazy).
    pub applied: usize,
    /// Operations queued for the batch window.
    pub batched: usize,
    /// Operations held for a transaction.
    pub held: usize,
    /// Immediate or lazy operations queued instead of applied because the backend is
    /// failing; the worker applies them as soon as it answers again.
    pub deferred: usize,
    pub keys_removed: u64,
    /// Rule outcomes that failed.
    pub rule_failures: usize,
}

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

/// Groups identical operations, keeping first-seen order and every origin; the soonest
/// strategy wins.
fn group(routed: Vec<Routed>) -> Vec<Pending> {
    // Number the groups by borrowing the operations, then move everything once.
    let mut slots: Vec<usize> = Vec::with_capacity(routed.len());
    {
        let mut index: HashMap<&Op, usize> = HashMap::with_capacity(routed.len());
        for r in &routed {
            let next = index.len();
            slots.push(*index.entry(&r.op).or_insert(next));
        }
    }
    let mut out: Vec<Pending> = Vec::new();
    for (r, slot) in routed.into_iter().zip(slots) {
        if slot == out.len() {
            out.push(Pending {
                op: r.op,
                origins: vec![r.origin],
                merged: 1,
                strategy: r.strategy,
            });
        } else {
            let p = &mut out[slot];
            p.merged += 1;
            p.origins.push(r.origin);
            if r.strategy.urgency() < p.strategy.urgency() {
                p.strategy = r.strategy;
            }
        }
    }
    out
}

fn strategy_label(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Immediate => "immediate",
        Strategy::Batched => "batched",
        Strategy::Lazy => "lazy",
    }
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

    /// Applies operations now, labelled by strategy (or `label` when given).
    async fn apply_now(
        &self,
        routed: Vec<Routed>,
        label: Option<&'static str>,
    ) -> Result<(usize, u64), HostError> {
        let grouped = group(routed);
        let count = grouped.len();
        let removed = self
            .apply_grouped(grouped, 0, |p| label.unwrap_or(strategy_label(p.strategy)))
            .await?;
        Ok((count, removed))
    }

    /// Applies grouped operations; on failure puts them in the batcher for retry.
    async fn apply_grouped(
        &self,
        grouped: Vec<Pending>,
        batched_targets: u64,
        label: impl Fn(&Pending) -> &'static str,
    ) -> Result<u64, HostError> {
        let inner = &self.inner;
        let labels: Vec<&'static str> = grouped.iter().map(&label).collect();
        let (ops, metas): (Vec<Op>, Vec<Meta>) = grouped.into_iter().map(Meta::split).unzip();
        let span = tracing::debug_span!(
            "tagbust.apply",
            ops = ops.len(),
            keys_removed = tracing::field::Empty
        );
        match inner.backend.apply(&ops).instrument(span.clone()).await {
            Ok(outcomes) => {
                if inner.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("backend answers again; applying normally");
                }
                let removed: u64 = outcomes.iter().map(|o| o.removed).sum();
                span.record("keys_removed", removed);
                inner.stats.update(|s| {
                    for op in &ops {
                        s.op(op.kind);
                    }
                    s.keys_removed += removed;
                });
                for (((op, meta), outcome), label) in
                    ops.into_iter().zip(metas).zip(outcomes).zip(labels)
                {
                    inner
                        .explain
                        .push(&meta.origins, op, label, outcome, meta.merged);
                }
                Ok(removed)
            }
            Err(source) => {
                let pending = ops.len();
                inner.degraded.store(true, Ordering::Relaxed);
                inner.stats.update(|s| s.backend_errors += 1);
                tracing::warn!(error = %source, pending, "backend apply failed; operations kept for retry");
                let grouped = ops.into_iter().zip(metas).map(Meta::join).collect();
                lock(&inner.batcher).restore(grouped, batched_targets);
                inner.wake.notify_one();
                Err(HostError::Backend { pending, source })
            }
        }
    }

    /// Applies every pending batched operation now.
    pub async fn flush(&self) -> Result<u64, HostError> {
        let (pending, targets) = lock(&self.inner.batcher).take();
        if pending.is_empty() {
            return Ok(0);
        }
        let ops = pending.len() as u64;
        let removed = self
            .apply_grouped(pending, targets, |p| match p.strategy {
                Strategy::Batched => "batched",
                _ => "deferred",
            })
            .instrument(tracing::debug_span!("tagbust.flush", ops))
            .await?;
        self.inner.stats.update(|s| {
            s.flushes += 1;
            s.batched_targets += targets;
            s.batched_ops_applied += ops;
        });
        Ok(removed)
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

/// Everything of a pending operation but the operation, so the operations can be handed to
/// the backend as one slice without copying them.
struct Meta {
    origins: Vec<Arc<Origin>>,
    merged: u64,
    strategy: Strategy,
}

impl Meta {
    fn split(p: Pending) -> (Op, Meta) {
        (
            p.op,
            Meta {
                origins: p.origins,
                merged: p.merged,
                strategy: p.strategy,
            },
        )
    }

    fn join((op, m): (Op, Meta)) -> Pending {
        Pending {
            op,
            origins: m.origins,
            merged: m.merged,
            strategy: m.strategy,
        }
    }
}
