//! The host a service embeds: events in, invalidations applied.
//!
//! ```text
//! submit(events) → admission (valid? known tenant? under its rate? room?) → cool-down
//!   → evaluate (blocking pool: rules, policy, confinement) → operations (cascade, strategy)
//!   → transaction? hold until commit : immediate/lazy → apply now; batched → coalesce
//! worker: flush the batch window, expire transactions, sweep the backend
//! ```
//!
//! - `builder`: building the host; `admission`: what is refused before any work.
//! - `submit`: a submission from evaluation to dispatch; `evaluate`: the CPU-bound stage.
//! - `confine`: keeping every target inside its tenant.
//! - `operations`: planned targets to backend operations; `preview`: the same, unapplied,
//!   and `dry_run`: a submission's whole path short of the backend.
//! - `coalesce`, `batcher`, `apply`: merging identical operations, the batch window, and
//!   handing operations to the backend (kept for retry when it fails).
//! - `tx`: transactions; `manual`: invalidations without a rule; `reload`: hot reload.
//! - `worker`: the background task and shutdown; [`explain`], [`stats`]: what happened.
//! - [`cache`]: the client services read and fill through.

mod ack;
mod admission;
mod apply;
mod batcher;
mod builder;
pub mod cache;
mod coalesce;
mod confine;
mod evaluate;
pub mod explain;
mod manual;
mod metrics;
mod operations;
mod options;
mod preview;
mod reload;
mod split;
pub mod stats;
mod submit;
mod tx;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::backend::Backend;
use crate::sandbox::Engine;
use crate::tenant::Tenants;
use batcher::Batcher;
use cache::Cache;
use explain::ExplainLog;
use stats::{Stats, StatsSnapshot};
use tx::Transactions;

pub use ack::{Applied, NotApplied};
pub use builder::{BuildError, Builder};
pub use manual::MANUAL;
pub use operations::{EventOrigin, EventRef, Origin};
pub use options::{
    CommitReport, FlushReport, HostError, HostOptions, Rejection, ShutdownError, ShutdownReport,
    SubmitReport, Unapplied,
};
pub use preview::{DryRun, DryRunEvent, PreviewOp, When, dry_run, preview};
pub use reload::Reloaded;

/// The embedded host. Cheap to clone; every clone is the same host. When the last clone is
/// dropped without [`Tagbust::shutdown`], the background worker stops (it does not flush:
/// call `shutdown` for that).
pub struct Tagbust<B: Backend> {
    inner: Arc<Inner<B>>,
    /// Cancels the worker when the last handle goes; the worker itself holds none.
    _stop: Arc<DropGuard>,
}

impl<B: Backend> Clone for Tagbust<B> {
    fn clone(&self) -> Self {
        Tagbust {
            inner: self.inner.clone(),
            _stop: self._stop.clone(),
        }
    }
}

pub(crate) struct Inner<B: Backend> {
    backend: Arc<B>,
    tenants: RwLock<Arc<Tenants>>,
    /// The engine reloads compile with: the one given to the builder, or a default one made
    /// at the first reload.
    engine: Mutex<Option<Engine>>,
    options: HostOptions,
    batcher: Mutex<Batcher>,
    /// Held by whoever takes operations out of the batcher and applies them (the worker's
    /// window flush, a caller's `flush`), so a flush that finds the batcher empty still waits
    /// for a batch another flush has in flight (and may hand back on failure).
    flushing: tokio::sync::Mutex<()>,
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
        Builder::new(backend)
    }

    /// The cache client services use to read and fill the same backend.
    pub fn cache(&self) -> Cache<B> {
        Cache::new(self.inner.backend.clone(), self.inner.stats.clone())
    }

    pub fn backend(&self) -> &Arc<B> {
        &self.inner.backend
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

    /// The options in force (after the builder brought them within their bounds).
    pub fn options(&self) -> &HostOptions {
        &self.inner.options
    }

    pub fn explain(&self) -> &ExplainLog {
        &self.inner.explain
    }

    /// True while the backend is failing: submissions queue their operations for retry.
    pub fn is_degraded(&self) -> bool {
        self.inner
            .degraded
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True once `shutdown` has begun: new submissions are refused.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// The tenant an API token acts for (by the sha256 its manifest names), if any.
    pub fn tenant_for_token(&self, token: &[u8]) -> Option<String> {
        use sha2::{Digest, Sha256};
        let presented: [u8; 32] = Sha256::digest(token).into();
        let tenants = self.tenants();
        tenants
            .ids()
            .find(|id| {
                tenants
                    .get_own(id)
                    .is_some_and(|t| t.accepts_token_sha256(&presented))
            })
            .map(str::to_owned)
    }

    /// True when any tenant names an API token: a service must then authenticate requests.
    pub fn any_tenant_token(&self) -> bool {
        let tenants = self.tenants();
        tenants.ids().any(|id| {
            tenants
                .get_own(id)
                .is_some_and(|t| !t.token_sha256.is_empty())
        })
    }

    /// Ids of the tenants that have a setup of their own.
    pub fn tenant_ids(&self) -> Vec<String> {
        self.tenants().ids().map(str::to_owned).collect()
    }

    fn tenants(&self) -> Arc<Tenants> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
