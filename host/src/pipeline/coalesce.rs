//! The one coalescer: identical operations become one pending operation that remembers who
//! asked for it. Used for an immediate apply (group what one submission asked for), the batch
//! window (merge across submissions), and a retry after a failed apply (put back ahead of
//! anything newer).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::ack::Tickets;
use super::operations::{Origin, Routed};
use super::options::MAX_ORIGINS;
use crate::backend::Op;
use crate::model::Strategy;

/// One pending operation and the events that asked for it.
pub(crate) struct Pending {
    pub op: Op,
    pub origins: Vec<Arc<Origin>>,
    /// Targets merged into this operation (origins beyond the cap are only counted here).
    pub merged: u64,
    /// The strategy it was asked for with (the soonest, when merged).
    pub strategy: Strategy,
    /// The tracked submissions waiting for it to be applied.
    pub tickets: Tickets,
}

impl From<Routed> for Pending {
    fn from(r: Routed) -> Self {
        Pending {
            op: r.op,
            origins: vec![r.origin],
            merged: 1,
            strategy: r.strategy,
            tickets: Tickets::one(r.ticket),
        }
    }
}

/// Pending operations in first-seen order, each distinct. The index holds positions into the
/// list and hashes the operations in place, so an operation is never cloned to be a key.
#[derive(Default)]
pub(crate) struct Coalescer {
    pending: Vec<Pending>,
    index: HashTable<usize>,
    hasher: RandomState,
}

impl Coalescer {
    pub fn with_capacity(n: usize) -> Self {
        Coalescer {
            pending: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            hasher: RandomState::new(),
        }
    }

    /// Merges `p` into its twin if one is pending (counts add up, origins are kept up to
    /// [`MAX_ORIGINS`], the soonest strategy wins), or appends it. Returns true when it was
    /// new.
    pub fn merge(&mut self, p: Pending) -> bool {
        let hash = self.hasher.hash_one(&p.op);
        let pending = &self.pending;
        match self.index.find(hash, |&i| pending[i].op == p.op) {
            Some(&i) => {
                let kept = &mut self.pending[i];
                kept.merged += p.merged;
                let room = MAX_ORIGINS.saturating_sub(kept.origins.len());
                kept.origins.extend(p.origins.into_iter().take(room));
                kept.strategy = kept.strategy.sooner(p.strategy);
                kept.tickets.absorb(p.tickets);
                false
            }
            None => {
                let i = self.pending.len();
                let hasher = &self.hasher;
                let pending = &self.pending;
                self.index
                    .insert_unique(hash, i, |&j| hasher.hash_one(&pending[j].op));
                self.pending.push(p);
                true
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Everything pending, in first-seen order; the coalescer is left empty.
    pub fn take(&mut self) -> Vec<Pending> {
        self.index.clear();
        std::mem::take(&mut self.pending)
    }
}

/// Groups identical operations of one apply, keeping first-seen order and every origin.
pub(crate) fn group(routed: Vec<Routed>) -> Vec<Pending> {
    let mut c = Coalescer::with_capacity(routed.len());
    for r in routed {
        c.merge(r.into());
    }
    c.take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::OpKind;
    use crate::model::{Operation, TargetKind};
    use crate::pipeline::operations::EventOrigin;

    fn routed(value: &str, strategy: Strategy, seq: u64) -> Routed {
        Routed {
            op: Op {
                tenant: Arc::from("t"),
                kind: OpKind::Tag,
                value: value.to_owned(),
            },
            strategy,
            ticket: None,
            origin: Arc::new(Origin {
                event: Arc::new(EventOrigin {
                    seq,
                    tenant: Arc::from("t"),
                    resource: "r".to_owned(),
                    operation: Operation::Update,
                    transaction: None,
                    source: None,
                }),
                rule: Arc::from("rule"),
                rule_version: Arc::from("1"),
                rule_sha256: Arc::from("0"),
                fallback: false,
                target_kind: TargetKind::Tag,
                target: value.to_owned(),
                strategy,
                cascaded_from: None,
            }),
        }
    }

    #[test]
    fn identical_operations_merge_soonest_strategy_wins_order_is_kept() {
        let out = group(vec![
            routed("a", Strategy::Batched, 1),
            routed("b", Strategy::Lazy, 2),
            routed("a", Strategy::Immediate, 3),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].op.value, "a");
        assert_eq!(out[0].merged, 2);
        assert_eq!(out[0].origins.len(), 2);
        assert_eq!(out[0].strategy, Strategy::Immediate);
        assert_eq!(out[1].op.value, "b");
    }

    #[test]
    fn origins_are_capped_but_counted() {
        let many = (0..MAX_ORIGINS as u64 + 10).map(|i| routed("a", Strategy::Batched, i));
        let out = group(many.collect());
        assert_eq!(out[0].origins.len(), MAX_ORIGINS);
        assert_eq!(out[0].merged, MAX_ORIGINS as u64 + 10);
    }
}
