//! The host's settings, its errors, and what a submission reports.

use std::time::Duration;

use serde::Serialize;

use crate::backend::BackendError;
use crate::ingest::EventLimits;

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
    /// Cool-down after failures, as a multiple of the time a tenant's failed rule calls took:
    /// the tenant's next submissions wait that long before they evaluate. A rule that loops
    /// until its deadline is then held to about half a core however hard its tenant submits,
    /// so it cannot starve its neighbours. Default 1.0; 0 turns it off.
    pub failure_cooldown: f64,
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
            failure_cooldown: 1.0,
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
    #[error(
        "event {index} refused: unknown tenant `{tenant}` (no manifest loaded for it; nothing in this submission was applied)"
    )]
    UnknownTenant { index: usize, tenant: String },
    #[error(
        "tenant `{tenant}` is over its limit of {limit} events per second; submission refused (retry later)"
    )]
    RateLimited { tenant: String, limit: u32 },
    #[error("{} event(s) rejected by a rule's `fail` policy (first: {}); the other events were applied", .rejected.len(), .rejected.first().map(ToString::to_string).unwrap_or_default())]
    Rejected {
        rejected: Vec<Rejection>,
        /// What the submission did with the events that were not rejected.
        report: Box<SubmitReport>,
    },
}

/// An event rejected because a rule with the `fail` policy failed on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The event's index in the submission.
    pub index: usize,
    pub tenant: String,
    pub rule: String,
    /// The failure code (`timeout`, `trap`, …) or `confinement: …`.
    pub failure: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {} of tenant `{}`: rule `{}` failed: {}",
            self.index, self.tenant, self.rule, self.failure
        )
    }
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
