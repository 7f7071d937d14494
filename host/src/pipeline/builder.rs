//! Building a host: backend, tenants, options, engine; the worker starts with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::batcher::Batcher;
use super::explain::ExplainLog;
use super::options::{HostOptions, MAX_BATCH_WINDOW, MIN_BATCH_WINDOW};
use super::stats::Stats;
use super::tx::Transactions;
use super::{Inner, Tagbust, worker};
use crate::backend::Backend;
use crate::sandbox::Engine;
use crate::tenant::{TenantSetup, Tenants};

/// Why a host could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The host spawns its worker on the current tokio runtime.
    #[error("Tagbust::builder(..).build() must be called inside a tokio runtime")]
    NoRuntime,
}

/// Builds a [`Tagbust`] host.
pub struct Builder<B: Backend> {
    backend: Arc<B>,
    tenants: Tenants,
    options: HostOptions,
    engine: Option<Engine>,
}

impl<B: Backend> Builder<B> {
    pub(super) fn new(backend: Arc<B>) -> Self {
        Builder {
            backend,
            // Until told otherwise, every tenant exists and has no rules.
            tenants: Tenants::new(TenantSetup::default()),
            options: HostOptions::default(),
            engine: None,
        }
    }

    pub fn tenants(mut self, tenants: Tenants) -> Self {
        self.tenants = tenants;
        self
    }

    pub fn options(mut self, options: HostOptions) -> Self {
        self.options = options;
        self
    }

    /// The engine [`Tagbust::reload`] compiles with: give the one the tenants were loaded
    /// with, so identical components are not compiled twice. Without one, the first reload
    /// makes a default engine.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Starts the host and its worker (it flushes batch windows, expires transactions and
    /// sweeps the backend) on the current tokio runtime.
    ///
    /// A batch window outside [`MIN_BATCH_WINDOW`]..=[`MAX_BATCH_WINDOW`] is brought within
    /// it, with a warning naming both values; [`Tagbust::options`] shows what is in force.
    pub fn build(mut self) -> Result<Tagbust<B>, BuildError> {
        let given = self.options.batch_window;
        let window = given.clamp(MIN_BATCH_WINDOW, MAX_BATCH_WINDOW);
        if window != given {
            tracing::warn!(
                given_ms = u64::try_from(given.as_millis()).unwrap_or(u64::MAX),
                used_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                "batch_window is outside 10..=5000 ms; using the nearest bound"
            );
            self.options.batch_window = window;
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let shutdown = CancellationToken::new();
        let inner = Arc::new(Inner {
            backend: self.backend,
            tenants: RwLock::new(Arc::new(self.tenants)),
            engine: Mutex::new(self.engine),
            explain: ExplainLog::new(self.options.explain_capacity),
            options: self.options,
            batcher: Mutex::new(Batcher::default()),
            flushing: tokio::sync::Mutex::new(()),
            txs: Mutex::new(Transactions::default()),
            stats: Arc::new(Stats::default()),
            wake: Notify::new(),
            seq: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            cooling: Mutex::new(HashMap::new()),
            shutdown: shutdown.clone(),
            tracker: TaskTracker::new(),
        });
        inner.tracker.spawn_on(worker::run(inner.clone()), &runtime);
        Ok(Tagbust {
            inner,
            _stop: Arc::new(shutdown.drop_guard()),
        })
    }
}
