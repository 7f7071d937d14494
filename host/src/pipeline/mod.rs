//! The host a service embeds: events in, invalidations applied.
//!
//! ```text
//! submit(events) → validate → evaluate (blocking pool) → plan → route (cascade, strategy)
//!   → transaction? hold until commit : immediate/lazy → apply now; batched → coalesce
//! worker: flush the batch window, expire transactions, sweep the backend
//! ```

mod apply;
mod batcher;
pub mod confine;
mod evaluate;
pub mod explain;
mod manual;
mod options;
pub mod route;
pub mod stats;
mod tx;
mod worker;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::Backend;
use crate::cache::Cache;
use crate::engine::Engine;
use crate::event::WriteEvent;
use crate::ingest::check_event;
use crate::manifest::{self, ManifestError};
use crate::target::Strategy;
use crate::tenants::{TenantInForce, TenantSetup, Tenants};
use batcher::Batcher;
use explain::ExplainLog;
pub use options::{HostError, HostOptions, Rejection, SubmitReport};
use route::Routed;
use stats::{Stats, StatsSnapshot};
use tx::Transactions;

/// What a [`Tagbust::reload`] swapped in, and what it replaced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reloaded {
    pub tenant: String,
    pub now: TenantInForce,
    pub previous: Option<TenantInForce>,
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
            cooling: Mutex::new(HashMap::new()),
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
    /// Tenants cooling down after failed rule calls, until when. Only tenants with a recent
    /// failure have an entry; expired ones are removed when next looked at.
    cooling: Mutex<HashMap<String, tokio::time::Instant>>,
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
            // Until told otherwise, every tenant exists and has no rules.
            tenants: Tenants::new(TenantSetup::default()),
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

    fn tenants(&self) -> Arc<Tenants> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces (or adds) one tenant's setup atomically; batches already evaluating finish
    /// with the old one.
    pub fn set_tenant(&self, tenant: &str, setup: TenantSetup) {
        let mut guard = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut next = Tenants::clone(&guard);
        next.set(tenant, Arc::new(setup));
        *guard = Arc::new(next);
    }

    /// Hot reload: loads the tenant manifest at `path` and swaps its tenant's setup in.
    ///
    /// The rules compile on the blocking pool while the old version keeps serving (identical
    /// component bytes are not compiled again); on success the new setup replaces the old one
    /// atomically, and batches in flight finish on the old one. A broken manifest or component
    /// is refused with the file and field to blame, and the old version stays live. The
    /// versions and sha256 in force show in [`Tagbust::stats`] (`tenants`) and in every
    /// explain record (`rule_version`, `rule_sha256`).
    pub async fn reload(&self, engine: &Engine, path: &Path) -> Result<Reloaded, ManifestError> {
        let (engine, owned) = (engine.clone(), path.to_path_buf());
        let loaded = tokio::task::spawn_blocking(move || {
            crate::evaluate::on_blocking_thread(|| manifest::load(&engine, &owned))
        })
        .await
        .map_err(|e| ManifestError {
            file: path.display().to_string(),
            field: String::new(),
            message: format!("loading was interrupted: {e}"),
        })
        .and_then(|r| r);
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                self.inner.stats.update(|s| s.reloads_failed += 1);
                tracing::warn!(error = %e, "manifest reload refused; the old version stays live");
                return Err(e);
            }
        };
        let previous = self
            .tenants()
            .get_own(&loaded.tenant)
            .map(|setup| setup.in_force());
        let now = loaded.setup.in_force();
        self.set_tenant(&loaded.tenant, loaded.setup);
        self.inner.stats.update(|s| s.reloads += 1);
        tracing::info!(tenant = %loaded.tenant, manifest = %path.display(), "tenant reloaded");
        Ok(Reloaded {
            tenant: loaded.tenant,
            now,
            previous,
        })
    }

    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.inner.stats.snapshot();
        s.transactions_open = lock(&self.inner.txs).len() as u64;
        let tenants = self.tenants();
        s.tenants = tenants
            .ids()
            .filter_map(|id| tenants.get_own(id).map(|t| (id.to_owned(), t.in_force())))
            .collect();
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
        let tenants = self.tenants();
        self.admit(&tenants, &events)?;
        let pending = lock(&inner.batcher).len();
        if pending >= inner.options.max_pending_ops {
            let n = events.len() as u64;
            inner.stats.update(|s| s.events_refused_backpressure += n);
            return Err(HostError::Backpressure { pending });
        }
        self.cool_down(&events).await;
        let n = events.len();
        let first_seq = inner.seq.fetch_add(n as u64, Ordering::Relaxed);
        let stats = inner.stats.clone();
        let span = tracing::debug_span!("tagbust.submit", events = n);
        let evaluated = tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            crate::evaluate::on_blocking_thread(|| {
                evaluate::evaluate_and_route(&tenants, &stats, events, first_seq)
            })
        })
        .await
        .map_err(|e| HostError::Evaluation(e.to_string()))?;

        self.owe(&evaluated.burned);
        let report = SubmitReport {
            events: n,
            rule_failures: evaluated.failures,
            ..SubmitReport::default()
        };
        self.dispatch(report, evaluated.events).await
    }

    /// Sends routed events on by strategy: held for their transaction, applied now
    /// (immediate, lazy), or queued for the batch window; rejected events are reported.
    async fn dispatch(
        &self,
        mut report: SubmitReport,
        events: Vec<evaluate::EventRouting>,
    ) -> Result<SubmitReport, HostError> {
        let inner = &self.inner;
        let mut now: Vec<Routed> = Vec::new();
        let mut batched: Vec<Routed> = Vec::new();
        let mut rejected = Vec::new();
        for evaluate::EventRouting {
            tx,
            routed,
            rejected: rejection,
        } in events
        {
            if let Some(rejection) = rejection {
                rejected.push(rejection);
                continue;
            }
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
        if !rejected.is_empty() {
            return Err(HostError::Rejected {
                rejected,
                report: Box::new(report),
            });
        }
        Ok(report)
    }

    /// Waits until every tenant of `events` has finished its cool-down.
    async fn cool_down(&self, events: &[WriteEvent]) {
        let until = {
            let mut cooling = lock(&self.inner.cooling);
            if cooling.is_empty() {
                return;
            }
            let now = tokio::time::Instant::now();
            cooling.retain(|_, until| *until > now);
            events
                .iter()
                .filter_map(|e| cooling.get(&e.tenant).copied())
                .max()
        };
        if let Some(until) = until {
            let waited = until.saturating_duration_since(tokio::time::Instant::now());
            self.inner.stats.update(|s| {
                s.cooldown_waits += 1;
                s.cooldown_wait_ms += u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            });
            tokio::time::sleep_until(until).await;
        }
    }

    /// Adds what tenants' failed rule calls burned to their cool-down.
    fn owe(&self, burned: &[(String, Duration)]) {
        // Any one failure owes at most a minute, whatever the factor says.
        const MAX_OWED: Duration = Duration::from_secs(60);
        let factor = self.inner.options.failure_cooldown;
        // NaN and non-positive factors turn it off.
        if burned.is_empty() || factor.is_nan() || factor <= 0.0 {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut cooling = lock(&self.inner.cooling);
        for (tenant, time) in burned {
            let owed = Duration::try_from_secs_f64(time.as_secs_f64() * factor)
                .map_or(MAX_OWED, |d| d.min(MAX_OWED));
            let until = cooling.entry(tenant.clone()).or_insert(now);
            *until = (*until).max(now) + owed;
        }
    }

    /// Refuses a submission with an event of an unknown tenant, or of a tenant over its rate.
    fn admit(&self, tenants: &Tenants, events: &[WriteEvent]) -> Result<(), HostError> {
        let n = events.len() as u64;
        let unknown = if tenants.has_default() {
            None
        } else {
            events.iter().position(|e| tenants.get(&e.tenant).is_none())
        };
        if let Some(index) = unknown {
            self.inner.stats.update(|s| {
                s.events_rejected += n;
                s.events_unknown_tenant += 1;
            });
            return Err(HostError::UnknownTenant {
                index,
                tenant: events[index].tenant.clone(),
            });
        }
        if !tenants.any_rate() {
            return Ok(());
        }
        let mut per_tenant: HashMap<&str, usize> = HashMap::new();
        for e in events {
            if tenants.get(&e.tenant).is_some_and(|t| t.rate.is_some()) {
                *per_tenant.entry(e.tenant.as_str()).or_default() += 1;
            }
        }
        for (tenant, count) in per_tenant {
            let Some(rate) = tenants.get(tenant).and_then(|t| t.rate.as_ref()) else {
                continue;
            };
            if !rate.try_take(count) {
                self.inner.stats.update(|s| s.events_rate_limited += n);
                return Err(HostError::RateLimited {
                    tenant: tenant.to_owned(),
                    limit: rate.per_window(),
                });
            }
        }
        Ok(())
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
