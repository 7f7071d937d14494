//! Counters for everything the host does, snapshotted as one serialisable value.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::backend::OpKind;
use crate::model::target::{Strategy, TargetKind};
use crate::tenant::tenants::TenantInForce;

/// Per-rule counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// Events the rule was asked about.
    pub events: u64,
    /// Calls into the rule (one per batch).
    pub calls: u64,
    /// Events for which the rule failed, by failure code.
    pub failures: BTreeMap<String, u64>,
    /// Records the rule logged at WARN and at ERROR (e.g. a missing configuration table);
    /// the records themselves go to `tracing`.
    pub warnings: u64,
    pub errors: u64,
    /// Records dropped past the per-evaluation cap.
    pub logs_dropped: u64,
}

/// A snapshot of the host's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    pub events: u64,
    pub events_rejected: u64,
    /// Events refused because too many invalidations were waiting for the backend.
    pub events_refused_backpressure: u64,
    /// Events refused because their tenant has no setup (counted in `events_rejected` too).
    pub events_unknown_tenant: u64,
    /// Events refused because their tenant was over its `max_events_per_second`.
    pub events_rate_limited: u64,
    /// Events rejected because a rule with the `fail` policy failed on them.
    pub events_failed_by_rule: u64,
    /// Rule failures answered by the `fallback` policy (a conservative invalidation).
    pub rule_fallbacks: u64,
    /// Rule failures answered by the `skip` policy.
    pub rule_skips: u64,
    /// Targets rejected because they reached outside their tenant's namespace.
    pub confinement_violations: u64,
    /// Submissions that waited for their tenant's cool-down, and how long in all (ms).
    pub cooldown_waits: u64,
    pub cooldown_wait_ms: u64,
    /// Manifests swapped in by `reload`, and refused (the old version stayed live).
    pub reloads: u64,
    pub reloads_failed: u64,
    pub rules: BTreeMap<String, RuleStats>,
    /// Planned targets, by `kind/strategy` (e.g. `tag/batched`).
    pub targets: BTreeMap<String, u64>,
    pub cascaded_tags: u64,
    pub cascades_truncated: u64,
    /// Operations applied to the backend, by kind.
    pub ops_applied: BTreeMap<String, u64>,
    pub keys_removed: u64,
    pub batched_targets: u64,
    pub batched_ops_applied: u64,
    /// Batched targets received per batched operation applied (≥ 1; higher is better).
    pub coalescing_ratio: f64,
    pub flushes: u64,
    pub transactions_committed: u64,
    pub transactions_rolled_back: u64,
    /// Transactions neither committed nor rolled back in time: applied conservatively.
    pub transactions_timed_out: u64,
    pub transactions_open: u64,
    pub backend_errors: u64,
    /// Operations shutdown could not apply (returned to the caller in `ShutdownError`).
    pub ops_unapplied_at_shutdown: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub fills_stored: u64,
    pub fills_refused: u64,
    pub swept: u64,
    /// Each tenant's rules in force (name, version, sha256) and the manifest they came from;
    /// tenants served by the default setup are not listed.
    pub tenants: BTreeMap<String, TenantInForce>,
}

/// Counters updated per batch, indexed by enum so counting allocates nothing.
#[derive(Default)]
pub(crate) struct Counters {
    pub snapshot: StatsSnapshot,
    /// Planned targets by [kind][strategy].
    pub targets: [[u64; 3]; 3],
    /// Operations applied by kind.
    pub ops: [u64; 5],
}

impl Counters {
    pub fn target(&mut self, kind: TargetKind, strategy: Strategy) {
        self.targets[kind as usize][strategy as usize] += 1;
    }

    pub fn op(&mut self, kind: OpKind) {
        self.ops[kind as usize] += 1;
    }
}

impl std::ops::Deref for Counters {
    type Target = StatsSnapshot;
    fn deref(&self) -> &StatsSnapshot {
        &self.snapshot
    }
}

impl std::ops::DerefMut for Counters {
    fn deref_mut(&mut self) -> &mut StatsSnapshot {
        &mut self.snapshot
    }
}

const KINDS: [TargetKind; 3] = [TargetKind::Tag, TargetKind::Key, TargetKind::Pattern];
const STRATEGIES: [Strategy; 3] = [Strategy::Immediate, Strategy::Batched, Strategy::Lazy];
const OPS: [OpKind; 5] = [
    OpKind::Tag,
    OpKind::Key,
    OpKind::Pattern,
    OpKind::TagVersion,
    OpKind::Tenant,
];

/// Live counters. Hot cache counters are atomics; the rest are updated once per batch.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Counters>,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) fills_stored: AtomicU64,
    pub(crate) fills_refused: AtomicU64,
}

fn op_key(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Tag => "tag",
        OpKind::Key => "key",
        OpKind::Pattern => "pattern",
        OpKind::TagVersion => "tag_version",
        OpKind::Tenant => "tenant",
    }
}

impl Stats {
    /// Runs `f` on the counters under the lock.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Counters)) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let counters = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = counters.snapshot.clone();
        for kind in KINDS {
            for strategy in STRATEGIES {
                let n = counters.targets[kind as usize][strategy as usize];
                if n > 0 {
                    let key = format!("{}/{}", kind.as_str(), strategy.as_str());
                    s.targets.insert(key, n);
                }
            }
        }
        for kind in OPS {
            let n = counters.ops[kind as usize];
            if n > 0 {
                s.ops_applied.insert(op_key(kind).to_owned(), n);
            }
        }
        drop(counters);
        s.cache_hits = self.cache_hits.load(Ordering::Relaxed);
        s.cache_misses = self.cache_misses.load(Ordering::Relaxed);
        s.fills_stored = self.fills_stored.load(Ordering::Relaxed);
        s.fills_refused = self.fills_refused.load(Ordering::Relaxed);
        s.coalescing_ratio = if s.batched_ops_applied == 0 {
            0.0
        } else {
            s.batched_targets as f64 / s.batched_ops_applied as f64
        };
        s
    }
}
