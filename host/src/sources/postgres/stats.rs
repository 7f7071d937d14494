//! What a PostgreSQL source counts: plain atomics the read loop bumps without a lock, and a
//! snapshot the daemon turns into metrics and readiness.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Counters and gauges of one source (share one `Arc` with whoever exports them).
#[derive(Debug, Default)]
pub struct PgStats {
    pub(crate) transactions: AtomicU64,
    pub(crate) rows: AtomicU64,
    pub(crate) truncates: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) events_submitted: AtomicU64,
    pub(crate) events_refused: AtomicU64,
    pub(crate) rows_skipped: AtomicU64,
    pub(crate) messages_invalid: AtomicU64,
    pub(crate) transactions_acked: AtomicU64,
    pub(crate) transactions_replayed: AtomicU64,
    pub(crate) keepalives_acked: AtomicU64,
    pub(crate) not_applied: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connection_errors: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) server_lsn: AtomicU64,
    pub(crate) received_lsn: AtomicU64,
    pub(crate) confirmed_lsn: AtomicU64,
    /// Commit time (µs since the Unix epoch) of the oldest transaction not yet applied; 0
    /// when none is in flight.
    pub(crate) oldest_unapplied_us: AtomicU64,
    pub(crate) connected: AtomicBool,
}

/// A copy of [`PgStats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PgStatsSnapshot {
    /// Committed transactions received (with changes to mapped tables or not).
    pub transactions: u64,
    /// Row changes received (insert, update, delete) of mapped tables.
    pub rows: u64,
    /// Tables truncated (each a whole-resource bulk delete).
    pub truncates: u64,
    /// `tagbust` logical messages attached as context.
    pub messages: u64,
    pub events_submitted: u64,
    /// Events the host refused (an unknown tenant, a field past a cap): logged, skipped.
    pub events_refused: u64,
    /// Rows of tables not mapped, or without a tenant or id value.
    pub rows_skipped: u64,
    /// `tagbust` messages that are not a JSON object of strings.
    pub messages_invalid: u64,
    /// Transactions whose invalidations are all applied, and so acknowledged.
    pub transactions_acked: u64,
    /// Transactions received again after a reconnect (already applied: duplicates).
    pub transactions_replayed: u64,
    /// Keepalives acknowledged while nothing was in flight.
    pub keepalives_acked: u64,
    /// Transactions the host stopped before applying (left unacknowledged, redelivered).
    pub not_applied: u64,
    /// Submissions tried again after backpressure or a rate limit.
    pub retries: u64,
    pub connects: u64,
    pub connection_errors: u64,
    pub decode_errors: u64,
    pub in_flight: u64,
    pub connected: bool,
    /// The server's WAL end as last reported.
    pub server_lsn: u64,
    /// End of the last commit received.
    pub received_lsn: u64,
    /// The position acknowledged to the slot.
    pub confirmed_lsn: u64,
    /// `server_lsn - confirmed_lsn`: WAL the slot holds back.
    pub lag_bytes: u64,
    /// Age of the oldest committed transaction not yet applied (0 when none is).
    pub lag_seconds: f64,
}

impl PgStats {
    pub fn snapshot(&self) -> PgStatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let server_lsn = get(&self.server_lsn);
        let confirmed_lsn = get(&self.confirmed_lsn);
        let oldest = get(&self.oldest_unapplied_us);
        let lag_seconds = if oldest == 0 {
            0.0
        } else {
            (now_us().saturating_sub(oldest)) as f64 / 1e6
        };
        PgStatsSnapshot {
            transactions: get(&self.transactions),
            rows: get(&self.rows),
            truncates: get(&self.truncates),
            messages: get(&self.messages),
            events_submitted: get(&self.events_submitted),
            events_refused: get(&self.events_refused),
            rows_skipped: get(&self.rows_skipped),
            messages_invalid: get(&self.messages_invalid),
            transactions_acked: get(&self.transactions_acked),
            transactions_replayed: get(&self.transactions_replayed),
            keepalives_acked: get(&self.keepalives_acked),
            not_applied: get(&self.not_applied),
            retries: get(&self.retries),
            connects: get(&self.connects),
            connection_errors: get(&self.connection_errors),
            decode_errors: get(&self.decode_errors),
            in_flight: get(&self.in_flight),
            connected: self.connected.load(Ordering::Relaxed),
            server_lsn,
            received_lsn: get(&self.received_lsn),
            confirmed_lsn,
            lag_bytes: server_lsn.saturating_sub(confirmed_lsn),
            lag_seconds,
        }
    }

    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(&self, gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    pub(crate) fn raise(&self, gauge: &AtomicU64, v: u64) {
        gauge.fetch_max(v, Ordering::Relaxed);
    }
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// PostgreSQL's epoch (2000-01-01) in µs after the Unix epoch.
pub(crate) const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A PostgreSQL timestamp (µs since 2000-01-01) as µs since the Unix epoch.
pub(crate) fn pg_to_unix_us(pg: i64) -> u64 {
    u64::try_from(pg.saturating_add(PG_EPOCH_US)).unwrap_or(0)
}
