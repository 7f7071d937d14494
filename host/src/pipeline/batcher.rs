//! Coalescing of `batched` invalidations: identical operations inside one window become one.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use crate::backend::Op;
use crate::pipeline::route::{Origin, Routed};
use crate::target::Strategy;

/// Origins remembered per coalesced operation (for explain); the rest are only counted.
pub(crate) const MAX_ORIGINS: usize = 32;

/// One pending operation and the events that asked for it.
pub(crate) struct Pending {
    pub op: Op,
    pub origins: Vec<Arc<Origin>>,
    /// Targets merged into this operation (origins beyond the cap are only counted here).
    pub merged: u64,
    /// The strategy it was asked for with (the soonest, when merged).
    pub strategy: Strategy,
}

#[derive(Default)]
pub(crate) struct Batcher {
    pending: Vec<Pending>,
    index: HashMap<Op, usize>,
    /// When the oldest pending operation arrived: the window runs from here.
    pub first_at: Option<Instant>,
    /// Targets received since the last take (≥ pending operations).
    targets: u64,
}

impl Batcher {
    /// Adds routed batched targets; returns how many distinct operations are now pending.
    pub fn add(&mut self, routed: impl IntoIterator<Item = Routed>) -> usize {
        for r in routed {
            self.targets += 1;
            match self.index.get(&r.op) {
                Some(&i) => {
                    let p = &mut self.pending[i];
                    p.merged += 1;
                    if p.origins.len() < MAX_ORIGINS {
                        p.origins.push(r.origin);
                    }
                }
                None => {
                    self.index.insert(r.op.clone(), self.pending.len());
                    self.pending.push(Pending {
                        op: r.op,
                        origins: vec![r.origin],
                        merged: 1,
                        strategy: r.strategy,
                    });
                    self.first_at.get_or_insert_with(Instant::now);
                }
            }
        }
        self.pending.len()
    }

    /// Puts operations back after a failed apply, ahead of anything newer.
    pub fn restore(&mut self, failed: Vec<Pending>, targets: u64) {
        let newer = std::mem::take(&mut self.pending);
        self.index.clear();
        self.targets += targets;
        for p in failed.into_iter().chain(newer) {
            match self.index.get(&p.op) {
                Some(&i) => {
                    let kept = &mut self.pending[i];
                    kept.merged += p.merged;
                    let room = MAX_ORIGINS.saturating_sub(kept.origins.len());
                    kept.origins.extend(p.origins.into_iter().take(room));
                }
                None => {
                    self.index.insert(p.op.clone(), self.pending.len());
                    self.pending.push(p);
                }
            }
        }
        if !self.pending.is_empty() {
            self.first_at = Some(Instant::now());
        }
    }

    /// Takes everything pending and the number of targets it coalesced.
    pub fn take(&mut self) -> (Vec<Pending>, u64) {
        self.index.clear();
        self.first_at = None;
        (
            std::mem::take(&mut self.pending),
            std::mem::take(&mut self.targets),
        )
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }
}
