//! Invalidations held until their transaction commits.
//!
//! Invalidating before commit would let a reader re-cache the old row; never invalidating a
//! rolled-back write is harmless. A transaction nobody closes is not dropped silently: after
//! the timeout its invalidations are applied (over-invalidation is safe) and counted.

use std::collections::HashMap;

use tokio::time::Instant;

use super::coalesce::group;
use super::operations::Routed;
use super::{CommitReport, HostError, Tagbust, lock};
use crate::backend::Backend;
use crate::model::Strategy;

pub(crate) struct Held {
    pub opened: Instant,
    pub events: u64,
    pub routed: Vec<Routed>,
}

/// Open transactions by (tenant, transaction id): ids are the tenant's own, so two tenants
/// may use the same one.
#[derive(Default)]
pub(crate) struct Transactions {
    open: HashMap<(String, String), Held>,
}

impl Transactions {
    pub fn hold(&mut self, tenant: &str, tx: &str, routed: Vec<Routed>) {
        let held = self
            .open
            .entry((tenant.to_owned(), tx.to_owned()))
            .or_insert_with(|| Held {
                opened: Instant::now(),
                events: 0,
                routed: Vec::new(),
            });
        held.events += 1;
        held.routed.extend(routed);
    }

    pub fn take(&mut self, tenant: &str, tx: &str) -> Option<Held> {
        self.open.remove(&(tenant.to_owned(), tx.to_owned()))
    }

    /// When the oldest open transaction was opened.
    pub fn oldest(&self) -> Option<Instant> {
        self.open.values().map(|h| h.opened).min()
    }

    /// Removes and returns transactions opened at or before `cutoff`.
    pub fn expire(&mut self, cutoff: Instant) -> Vec<((String, String), Held)> {
        let due: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|(_, h)| h.opened <= cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| self.open.remove(&k).map(|h| (k, h)))
            .collect()
    }

    /// Removes and returns every open transaction.
    pub fn drain(&mut self) -> Vec<((String, String), Held)> {
        self.open.drain().collect()
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }
}

impl<B: Backend> Tagbust<B> {
    /// Commits transaction `tx` of `tenant`: its held invalidations go out by their strategy.
    /// A commit of an unknown (or already closed) transaction releases nothing. Accepted
    /// whatever the backend does: what it cannot take now is deferred and retried. Refused
    /// once shutdown has begun (shutdown applies open transactions itself).
    pub async fn commit(&self, tenant: &str, tx: &str) -> Result<CommitReport, HostError> {
        let _in_flight = self.inner.tracker.token();
        if self.inner.shutdown.is_cancelled() {
            return Err(HostError::ShutDown);
        }
        let held = lock(&self.inner.txs).take(tenant, tx);
        let Some(held) = held else {
            return Ok(CommitReport::default());
        };
        self.inner.stats.update(|s| s.transactions_committed += 1);
        let released = held.routed.len();
        let (batched, now): (Vec<Routed>, Vec<Routed>) = held
            .routed
            .into_iter()
            .partition(|r| r.strategy == Strategy::Batched);
        let batched_count = batched.len();
        let now_targets = now.len();
        let (sent, _) = self
            .send_now_or_later(group(now), now_targets, batched)
            .await;
        Ok(CommitReport {
            released,
            applied: sent.applied,
            batched: batched_count,
            deferred: sent.deferred,
            keys_removed: sent.keys_removed,
        })
    }

    /// Rolls back transaction `tx` of `tenant`: its held invalidations are dropped (the data
    /// never changed). Returns the number of operations dropped.
    pub fn rollback(&self, tenant: &str, tx: &str) -> usize {
        let held = lock(&self.inner.txs).take(tenant, tx);
        match held {
            Some(h) => {
                self.inner.stats.update(|s| s.transactions_rolled_back += 1);
                let n = h.routed.len();
                // Nothing of a rolled-back write is to be applied: its acknowledgement is due.
                for r in h.routed {
                    if let Some(ticket) = r.ticket {
                        ticket.done(1);
                    }
                }
                n
            }
            None => 0,
        }
    }

    /// Applies every transaction open for longer than the timeout, conservatively.
    pub(super) async fn expire_transactions(&self) {
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
            // On failure the operations are kept for retry by the apply path.
            let _ = self.apply_now(held.routed, Some("tx_timeout")).await;
        }
    }
}
