//! The one coalescer: identical operations become one pending operation that remembers who
//! asked for it. Used for an immediate apply (group what one submission asked for), the batch
//! window (merge across submissions), and a retry after a failed apply (put back ahead of
//! anything newer).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::ack::Tickets;
use super::operations::{Origin, Routed};
use super::options::MAX_ORIGINS;
use crate::backend::Op;
use crate::model::Strategy;

/// The first list of origins an operation gets when a second one merges into it.
const FIRST_MANY: usize = 4;

/// The origins of one pending operation, held inline. Nearly every operation has exactly one
/// (only coalescing adds more), so that one is kept without a list of its own: no allocation
/// per operation.
#[derive(Debug)]
pub(crate) enum Origins {
    One(Origin),
    Many(Vec<Origin>),
}

impl Origins {
    /// Adds `other`'s origins while fewer than `cap` are kept.
    fn extend_capped(&mut self, other: Origins, cap: usize) {
        let room = cap.saturating_sub(self.len());
        if room == 0 {
            return;
        }
        let mut all = match std::mem::replace(self, Origins::Many(Vec::new())) {
            Origins::One(first) => {
                // Room for a few more at once: an operation that merges once usually merges
                // again (a hot tag from every event of a batch), and growing one slot at a
                // time reallocated the list of origins (~110 bytes each) at every doubling.
                let mut all = Vec::with_capacity((1 + other.len()).max(FIRST_MANY).min(cap));
                all.push(first);
                all
            }
            Origins::Many(all) => all,
        };
        match other {
            Origins::One(o) => all.push(o),
            Origins::Many(more) => all.extend(more.into_iter().take(room)),
        }
        *self = Origins::Many(all);
    }

    /// Forgets the first `n` origins (the oldest, when explain's ring is full).
    pub fn drop_first(&mut self, n: usize) {
        match self {
            Origins::One(_) => {
                if n > 0 {
                    *self = Origins::Many(Vec::new());
                }
            }
            Origins::Many(all) => {
                all.drain(..n.min(all.len()));
            }
        }
    }
}

impl std::ops::Deref for Origins {
    type Target = [Origin];
    fn deref(&self) -> &[Origin] {
        match self {
            Origins::One(o) => std::slice::from_ref(o),
            Origins::Many(all) => all,
        }
    }
}

/// One pending operation and the events that asked for it.
pub(crate) struct Pending {
    pub op: Op,
    pub meta: Meta,
}

/// Everything of a pending operation but the operation.
pub(crate) struct Meta {
    pub origins: Origins,
    /// Targets merged into this operation (origins beyond the cap are only counted here).
    pub merged: u64,
    /// The strategy it was asked for with (the soonest, when merged).
    pub strategy: Strategy,
    /// The tracked submissions waiting for it to be applied.
    pub tickets: Tickets,
}

impl From<Routed> for Pending {
    // Inlined into the sorter's one call: built in place instead of moved again (~170
    // bytes per operation).
    #[inline]
    fn from(r: Routed) -> Self {
        Pending {
            op: r.op,
            meta: Meta {
                origins: Origins::One(r.origin),
                merged: 1,
                strategy: r.strategy,
                tickets: Tickets::one(r.ticket),
            },
        }
    }
}

/// Grouped operations, in first-seen order: the operations in one list, handed to the backend
/// as one slice as they are, and the rest of each beside it, position for position. (Kept
/// apart from the start: splitting a list of [`Pending`] in two before each apply was a
/// measured share of the pipeline's work on the runtime thread.)
#[derive(Default)]
pub(crate) struct Grouped {
    pub ops: Vec<Op>,
    pub metas: Vec<Meta>,
}

impl Grouped {
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl IntoIterator for Grouped {
    type Item = Pending;
    type IntoIter = std::iter::Map<
        std::iter::Zip<std::vec::IntoIter<Op>, std::vec::IntoIter<Meta>>,
        fn((Op, Meta)) -> Pending,
    >;

    fn into_iter(self) -> Self::IntoIter {
        fn join((op, meta): (Op, Meta)) -> Pending {
            Pending { op, meta }
        }
        self.ops.into_iter().zip(self.metas).map(join as fn(_) -> _)
    }
}

/// Pending operations in first-seen order, each distinct. The index holds positions into the
/// lists and hashes the operations in place, so an operation is never cloned to be a key.
#[derive(Default)]
pub(crate) struct Coalescer {
    grouped: Grouped,
    index: HashTable<usize>,
    /// foldhash, seeded per coalescer: a fraction of SipHash's cost per operation.
    hasher: DefaultHashBuilder,
}

impl Coalescer {
    pub fn with_capacity(n: usize) -> Self {
        Coalescer {
            grouped: Grouped {
                ops: Vec::with_capacity(n),
                metas: Vec::with_capacity(n),
            },
            index: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Merges `p` into its twin if one is pending (counts add up, origins are kept up to
    /// [`MAX_ORIGINS`], the soonest strategy wins), or appends it. Returns true when it was
    /// new.
    pub fn merge(&mut self, p: Pending) -> bool {
        let hash = hash_op(&self.hasher, &p.op);
        let ops = &self.grouped.ops;
        match self.index.find(hash, |&i| same_op(&ops[i], &p.op)) {
            Some(&i) => {
                let kept = &mut self.grouped.metas[i];
                kept.merged += p.meta.merged;
                kept.origins.extend_capped(p.meta.origins, MAX_ORIGINS);
                kept.strategy = kept.strategy.sooner(p.meta.strategy);
                kept.tickets.absorb(p.meta.tickets);
                false
            }
            None => {
                let i = ops.len();
                let hasher = &self.hasher;
                self.index
                    .insert_unique(hash, i, |&j| hash_op(hasher, &ops[j]));
                self.grouped.ops.push(p.op);
                self.grouped.metas.push(p.meta);
                true
            }
        }
    }

    pub fn len(&self) -> usize {
        self.grouped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grouped.is_empty()
    }

    /// Everything pending, in first-seen order; the coalescer is left empty.
    pub fn take(&mut self) -> Grouped {
        self.index.clear();
        std::mem::take(&mut self.grouped)
    }
}

/// `a == b`, cheapest test first: the value tells most operations apart, and one
/// submission's operations share their tenant's `Arc`, so its bytes are rarely compared.
#[inline]
fn same_op(a: &Op, b: &Op) -> bool {
    a.value == b.value
        && a.kind == b.kind
        && (Arc::ptr_eq(&a.tenant, &b.tenant) || a.tenant == b.tenant)
}

/// An operation's hash for the index: its value only. Operations differing only in tenant or
/// kind share a hash and are told apart by comparing them; hashing the tenant and kind too
/// cost a third of the hashing for every operation, to separate what rarely collides.
fn hash_op(hasher: &DefaultHashBuilder, op: &Op) -> u64 {
    // The bytes alone: `str`'s `Hash` also folds in a terminator, which only matters when
    // several fields are hashed in a row.
    let mut h = hasher.build_hasher();
    h.write(op.value.as_bytes());
    h.finish()
}

/// Groups identical operations of one apply, keeping first-seen order and every origin.
pub(crate) fn group(routed: Vec<Routed>) -> Grouped {
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

    fn routed(value: &str, strategy: Strategy, seq: u64) -> Routed {
        Routed::for_test(value, strategy, seq)
    }

    #[test]
    fn identical_operations_merge_soonest_strategy_wins_order_is_kept() {
        let out = group(vec![
            routed("a", Strategy::Batched, 1),
            routed("b", Strategy::Lazy, 2),
            routed("a", Strategy::Immediate, 3),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out.ops[0].value, "a");
        assert_eq!(out.metas[0].merged, 2);
        assert_eq!(out.metas[0].origins.len(), 2);
        assert_eq!(out.metas[0].strategy, Strategy::Immediate);
        assert_eq!(out.ops[1].value, "b");
    }

    #[test]
    fn only_the_same_tenant_kind_and_value_merge() {
        let with = |tenant: &str, kind: OpKind, value: &str| {
            let mut r = routed(value, Strategy::Immediate, 0);
            r.op.tenant = Arc::from(tenant);
            r.op.kind = kind;
            r
        };
        let out = group(vec![
            with("acme", OpKind::Tag, "a"),
            // Another tenant's tag of the same name, and another kind of the same value.
            with("globex", OpKind::Tag, "a"),
            with("acme", OpKind::Key, "a"),
            // The same tenant in an `Arc` of its own (another tenant group's copy).
            with("acme", OpKind::Tag, "a"),
        ]);
        let kept: Vec<(&str, OpKind, u64)> = (out.ops.iter().zip(&out.metas))
            .map(|(op, m)| (&*op.tenant, op.kind, m.merged))
            .collect();
        assert_eq!(
            kept,
            [
                ("acme", OpKind::Tag, 2),
                ("globex", OpKind::Tag, 1),
                ("acme", OpKind::Key, 1)
            ]
        );
    }

    #[test]
    fn origins_are_capped_but_counted() {
        let many = (0..MAX_ORIGINS as u64 + 10).map(|i| routed("a", Strategy::Batched, i));
        let out = group(many.collect());
        assert_eq!(out.metas[0].origins.len(), MAX_ORIGINS);
        assert_eq!(out.metas[0].merged, MAX_ORIGINS as u64 + 10);
    }
}
