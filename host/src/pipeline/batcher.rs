//! Coalescing of `batched` invalidations: identical operations inside one window become one.

use tokio::time::Instant;

use super::coalesce::{Coalescer, Grouped, Pending};

#[derive(Default)]
pub(crate) struct Batcher {
    pending: Coalescer,
    /// When the oldest pending operation arrived: the window runs from here.
    pub first_at: Option<Instant>,
    /// Targets received since the last take (≥ pending operations).
    targets: u64,
}

impl Batcher {
    /// Adds routed batched targets (or operations already grouped from them); returns how
    /// many distinct operations are now pending.
    pub fn add<T: Into<Pending>>(&mut self, routed: impl IntoIterator<Item = T>) -> usize {
        for r in routed {
            let p: Pending = r.into();
            self.targets += p.meta.merged;
            if self.pending.merge(p) {
                self.first_at.get_or_insert_with(Instant::now);
            }
        }
        self.pending.len()
    }

    /// Puts operations back after a failed apply, ahead of anything newer.
    pub fn restore(&mut self, failed: Grouped, targets: u64) {
        let newer = self.pending.take();
        self.targets += targets;
        for p in failed.into_iter().chain(newer) {
            self.pending.merge(p);
        }
        if !self.pending.is_empty() {
            self.first_at = Some(Instant::now());
        }
    }

    /// Takes everything pending and the number of targets it coalesced.
    pub fn take(&mut self) -> (Grouped, u64) {
        self.first_at = None;
        (self.pending.take(), std::mem::take(&mut self.targets))
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }
}
