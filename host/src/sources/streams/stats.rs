//! What a stream source counts: plain atomics, so the read loop never takes a lock for them,
//! and a snapshot the daemon turns into metrics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Why an entry went to the dead-letter stream (it is acknowledged there, never retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// Not JSON, truncated, not UTF-8, or neither an object nor an array of objects.
    Json,
    /// An event field breaks the event format or a cap (the error names the field).
    Field,
    /// An event names a tenant the host has no rules for.
    UnknownTenant,
    /// Bigger than `max_entry_bytes` (or the host's input cap), refused before decoding.
    Oversized,
    /// No `event`, `commit` or `rollback` field, or a `commit`/`rollback` that is not
    /// `tenant/transaction`.
    Malformed,
    /// Delivered more than `max_deliveries` times.
    MaxDeliveries,
}

impl DeadLetterReason {
    pub const ALL: [DeadLetterReason; 6] = [
        DeadLetterReason::Json,
        DeadLetterReason::Field,
        DeadLetterReason::UnknownTenant,
        DeadLetterReason::Oversized,
        DeadLetterReason::Malformed,
        DeadLetterReason::MaxDeliveries,
    ];

    /// The label used in dead letters and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Json => "json",
            DeadLetterReason::Field => "field",
            DeadLetterReason::UnknownTenant => "unknown_tenant",
            DeadLetterReason::Oversized => "oversized",
            DeadLetterReason::Malformed => "malformed",
            DeadLetterReason::MaxDeliveries => "max_deliveries",
        }
    }
}

/// Why a submission waited and was tried again (never a dead letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryReason {
    RateLimited = 0,
    Backpressure = 1,
    Other = 2,
}

/// Counters of one source (share one `Arc` with whoever exports them). Gauges (`in_flight`,
/// `pending`, `lag`) hold the last value seen.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub(crate) entries_read: AtomicU64,
    pub(crate) entries_redelivered: AtomicU64,
    pub(crate) entries_claimed: AtomicU64,
    pub(crate) entries_deleted: AtomicU64,
    pub(crate) submissions: AtomicU64,
    pub(crate) events_submitted: AtomicU64,
    pub(crate) events_rejected_by_rules: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
    pub(crate) entries_acked: AtomicU64,
    pub(crate) entries_not_applied: AtomicU64,
    pub(crate) entries_left_pending: AtomicU64,
    pub(crate) dead_letters: [AtomicU64; 6],
    pub(crate) retries: [AtomicU64; 3],
    pub(crate) redis_errors: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) pending: AtomicU64,
    pub(crate) lag: AtomicU64,
}

/// A copy of [`StreamStats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamStatsSnapshot {
    /// Entries delivered to this consumer (new, re-read and claimed).
    pub entries_read: u64,
    /// Entries delivered more than once (own pending re-read, or claimed).
    pub entries_redelivered: u64,
    /// Entries taken over from idle consumers by `XAUTOCLAIM`.
    pub entries_claimed: u64,
    /// Pending entries whose data was gone (trimmed by `MAXLEN`), acknowledged unread.
    pub entries_deleted: u64,
    /// Host submissions (one per run of consecutive entries) and the events in them.
    pub submissions: u64,
    pub events_submitted: u64,
    /// Events a rule's `fail` policy rejected (their entry is still acknowledged).
    pub events_rejected_by_rules: u64,
    pub commits: u64,
    pub rollbacks: u64,
    pub entries_acked: u64,
    /// Entries whose invalidations the host stopped without applying: left pending.
    pub entries_not_applied: u64,
    /// Entries the host could not take for a reason of its own (not the entry's): left
    /// pending for a claimer.
    pub entries_left_pending: u64,
    /// Dead letters by reason (every reason present, zeros included).
    pub dead_letters: BTreeMap<&'static str, u64>,
    /// Submissions retried after a rate limit, backpressure or another retryable refusal.
    pub retries_rate_limited: u64,
    pub retries_backpressure: u64,
    pub retries_other: u64,
    /// Failed Redis calls of the source (each followed by a backoff and a reconnect).
    pub redis_errors: u64,
    /// Entries submitted and not yet acknowledged.
    pub in_flight: u64,
    /// The group's pending entries and lag (`XINFO GROUPS`), as last seen.
    pub pending: u64,
    pub lag: u64,
}

impl StreamStats {
    pub fn snapshot(&self) -> StreamStatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StreamStatsSnapshot {
            entries_read: get(&self.entries_read),
            entries_redelivered: get(&self.entries_redelivered),
            entries_claimed: get(&self.entries_claimed),
            entries_deleted: get(&self.entries_deleted),
            submissions: get(&self.submissions),
            events_submitted: get(&self.events_submitted),
            events_rejected_by_rules: get(&self.events_rejected_by_rules),
            commits: get(&self.commits),
            rollbacks: get(&self.rollbacks),
            entries_acked: get(&self.entries_acked),
            entries_not_applied: get(&self.entries_not_applied),
            entries_left_pending: get(&self.entries_left_pending),
            dead_letters: DeadLetterReason::ALL
                .iter()
                .map(|r| (r.as_str(), get(&self.dead_letters[*r as usize])))
                .collect(),
            retries_rate_limited: get(&self.retries[RetryReason::RateLimited as usize]),
            retries_backpressure: get(&self.retries[RetryReason::Backpressure as usize]),
            retries_other: get(&self.retries[RetryReason::Other as usize]),
            redis_errors: get(&self.redis_errors),
            in_flight: get(&self.in_flight),
            pending: get(&self.pending),
            lag: get(&self.lag),
        }
    }

    /// Dead letters of every reason.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }
}
