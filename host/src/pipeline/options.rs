//! The host's settings and every cap of the pipeline layer, its errors, and what each call
//! reports.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::backend::{BackendError, Op};
use crate::model::Strategy;
use crate::model::ingest::EventLimits;

/// Origins remembered per coalesced operation (for explain); the rest are only counted, so a
/// hot tag merged from a million events costs 32 origins, not a million.
pub const MAX_ORIGINS: usize = 32;

/// Shortest and longest batch window the builder accepts: under 10 ms a window coalesces
/// next to nothing; over 5 s a batched invalidation is staler than any cache user expects.
pub const MIN_BATCH_WINDOW: Duration = Duration::from_millis(10);
/// See [`MIN_BATCH_WINDOW`].
pub const MAX_BATCH_WINDOW: Duration = Duration::from_millis(5000);

/// Most cool-down any one failed rule call can owe, whatever the factor says: a tenant whose
/// rule once timed out must not be locked out for hours.
pub const MAX_OWED: Duration = Duration::from_secs(60);

/// Host settings, each with its default.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// How long `batched` invalidations wait to be coalesced. Default 100 ms; the builder
    /// brings it within [`MIN_BATCH_WINDOW`]..=[`MAX_BATCH_WINDOW`] and warns when it does.
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

/// Why a call was refused. For `submit`, `invalidate` and `clear_tenant` an `Err` means "not
/// accepted, nothing of it will happen": an accepted submission always returns `Ok` with a
/// report, whatever the backend does. [`HostError::is_retryable`] says whether the same call
/// can succeed later.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
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
    /// From [`crate::Tagbust::flush`] only: the backend failed; the operations stay pending
    /// and the worker retries them.
    #[error("applying invalidations failed ({pending} kept for retry): {source}")]
    Backend {
        pending: usize,
        #[source]
        source: BackendError,
    },
    /// The evaluation task was cancelled or panicked (a host bug, never a rule's doing:
    /// rule faults are outcomes). Nothing of the submission was applied.
    #[error("rule evaluation was interrupted: {source}")]
    Evaluation {
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
    #[error(
        "event {index} refused: unknown tenant `{tenant}` (no manifest loaded for it; nothing in this submission was applied)"
    )]
    UnknownTenant { index: usize, tenant: String },
    #[error(
        "tenant `{tenant}` is over its limit of {limit} events per second; submission refused (retry later)"
    )]
    RateLimited { tenant: String, limit: u32 },
}

impl HostError {
    /// True when the same call may succeed later unchanged (backpressure, a rate limit, a
    /// failing backend); false when it never will (invalid input, unknown tenant, shut down).
    pub fn is_retryable(&self) -> bool {
        match self {
            HostError::Backpressure { .. }
            | HostError::RateLimited { .. }
            | HostError::Backend { .. } => true,
            HostError::InvalidEvent { .. }
            | HostError::ShutDown
            | HostError::Evaluation { .. }
            | HostError::UnknownTenant { .. } => false,
        }
    }
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

/// What one accepted submission did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubmitReport {
    pub events: usize,
    /// Events a rule's `fail` policy rejected: nothing of them is applied. The other events
    /// of the submission went on as usual.
    pub rejected: Vec<Rejection>,
    /// Targets planned (after dedupe), cascades included.
    pub targets: usize,
    /// Operations applied during the call (immediate and lazy).
    pub applied: usize,
    /// Operations queued for the batch window.
    pub batched: usize,
    /// Operations held for a transaction.
    pub held: usize,
    /// Immediate or lazy operations kept for retry instead of applied because the backend is
    /// failing (or failed during this call); the worker applies them as soon as it answers.
    pub deferred: usize,
    pub keys_removed: u64,
    /// Rule outcomes that failed.
    pub rule_failures: usize,
}

/// What a flush applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Distinct operations handed to the backend.
    pub operations: u64,
    /// Cache entries those operations removed.
    pub keys_removed: u64,
}

/// What committing a transaction released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CommitReport {
    /// Operations the transaction held (0 when it was unknown or already closed).
    pub released: usize,
    /// Operations applied during the call.
    pub applied: usize,
    /// Batched operations queued for the window.
    pub batched: usize,
    /// Operations kept for retry because the backend failed.
    pub deferred: usize,
    pub keys_removed: u64,
}

/// One operation shutdown could not apply: handed back to the caller (to persist, retry
/// elsewhere or alert on), logged at ERROR with its tenant and transactions, and counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unapplied {
    pub op: Op,
    pub strategy: Strategy,
    /// The transactions it came from (committed, or still open at shutdown).
    pub transactions: Vec<String>,
    /// Sequence numbers of the events it came from, as far as remembered.
    pub events: Vec<u64>,
    /// Targets merged into it.
    pub merged: u64,
}

/// Shutdown finished, but the backend did not take everything: nothing is silently gone.
#[derive(Debug, thiserror::Error)]
#[error("shutdown could not apply {} operation(s): {source}", .unapplied.len())]
pub struct ShutdownError {
    /// What was done before the backend failed.
    pub report: ShutdownReport,
    pub unapplied: Vec<Unapplied>,
    #[source]
    pub source: BackendError,
}

/// What shutdown applied, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// Transactions still open, applied conservatively.
    pub transactions_applied: usize,
    /// Distinct operations applied by the final flush.
    pub operations: u64,
    pub keys_removed: u64,
}
