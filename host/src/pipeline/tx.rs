//! Invalidations held until their transaction commits.
//!
//! Invalidating before commit would let a reader re-cache the old row; never invalidating a
//! rolled-back write is harmless. A transaction nobody closes is not dropped silently: after
//! the timeout its invalidations are applied (over-invalidation is safe) and counted.

use std::collections::HashMap;

use tokio::time::Instant;

use crate::pipeline::route::Routed;

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
