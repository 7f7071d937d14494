//! Sorting a submission's routed operations by where they go: held for their transaction,
//! queued for the batch window, or grouped to be applied now.
//!
//! Routing hands each operation to the [`Sorter`] as it is made, on the blocking pool right
//! after evaluation, so no list of every routed operation is built and read back, and the
//! operations that merge while grouping (`feed:home` from every event of a batch) are freed
//! on the thread that allocated their strings, where the allocator's per-thread cache takes
//! them back, instead of on the runtime thread.

use std::sync::Arc;

use super::ack::Ticket;
use super::coalesce::{Coalescer, Grouped};
use super::operations::Routed;
use super::options::Rejection;
use crate::model::Strategy;

/// A submission's operations, sorted.
#[derive(Default)]
pub(super) struct Split {
    /// Operations due now (immediate, lazy), identical ones grouped, in first-seen order.
    pub now: Grouped,
    /// How many routed operations `now` was grouped from.
    pub now_targets: usize,
    pub batched: Vec<Routed>,
    /// Each transacted event's operations, with its (tenant, transaction).
    pub held: Vec<(String, String, Vec<Routed>)>,
    /// Events a `fail` rule rejected, in submission order.
    pub rejected: Vec<Rejection>,
    /// Operations planned, held ones included.
    pub targets: usize,
    pub held_targets: usize,
}

/// Sorts a submission's operations as they are routed, event by event, giving each the
/// submission's ticket.
pub(super) struct Sorter<'t> {
    out: Split,
    now: Coalescer,
    ticket: Option<&'t Arc<Ticket>>,
}

impl<'t> Sorter<'t> {
    /// `targets` is a hint: about how many operations the submission will route.
    pub fn new(targets: usize, ticket: Option<&'t Arc<Ticket>>) -> Self {
        Sorter {
            out: Split::default(),
            now: Coalescer::with_capacity(targets),
            ticket,
        }
    }

    /// An operation of an event outside any transaction: queued for the window, or grouped
    /// to be applied now.
    pub fn route(&mut self, mut r: Routed) {
        r.ticket = self.ticket.cloned();
        self.out.targets += 1;
        if r.strategy == Strategy::Batched {
            self.out.batched.push(r);
        } else {
            self.out.now_targets += 1;
            self.now.merge(r.into());
        }
    }

    /// One transacted event's operations, held until its transaction ends.
    pub fn hold(&mut self, tenant: String, tx: String, mut ops: Vec<Routed>) {
        for r in &mut ops {
            r.ticket = self.ticket.cloned();
        }
        self.out.targets += ops.len();
        self.out.held_targets += ops.len();
        self.out.held.push((tenant, tx, ops));
    }

    /// An event a `fail` rule rejected: nothing of it is applied.
    pub fn reject(&mut self, rejection: Rejection) {
        self.out.rejected.push(rejection);
    }

    pub fn finish(mut self) -> Split {
        // Events are routed tenant by tenant: rejections are reported in submission order.
        self.out.rejected.sort_by_key(|r| r.index);
        self.out.now = self.now.take();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(value: &str, strategy: Strategy) -> Routed {
        Routed::for_test(value, strategy, 0)
    }

    #[test]
    fn held_batched_and_grouped_now() {
        let ticket = Ticket::new().0;
        let mut sorter = Sorter::new(6, Some(&ticket));
        sorter.route(routed("a", Strategy::Immediate));
        sorter.route(routed("b", Strategy::Batched));
        sorter.route(routed("c", Strategy::Lazy));
        sorter.hold(
            "t".into(),
            "tx1".into(),
            vec![routed("held", Strategy::Immediate)],
        );
        sorter.route(routed("a", Strategy::Immediate));
        sorter.route(routed("b", Strategy::Batched));
        let out = sorter.finish();
        assert_eq!(out.targets, 6);
        assert_eq!(out.held_targets, 1);
        assert_eq!(out.held.len(), 1);
        assert_eq!(out.held[0].2[0].op.value, "held");
        assert!(
            out.held[0].2[0].ticket.is_some(),
            "held operations carry the ticket"
        );
        assert_eq!(
            out.batched.len(),
            2,
            "batched ones are merged by the batcher"
        );
        assert!(out.batched.iter().all(|r| r.ticket.is_some()));
        assert_eq!(out.now_targets, 3);
        let now: Vec<(&str, u64)> = (out.now.ops.iter().zip(&out.now.metas))
            .map(|(op, m)| (&*op.value, m.merged))
            .collect();
        assert_eq!(now, [("a", 2), ("c", 1)]);
        assert!(out.now.metas.iter().all(|m| !m.tickets.is_empty()));
    }

    #[test]
    fn rejected_events_are_reported_in_submission_order() {
        let reject = |index| Rejection {
            index,
            tenant: "t".into(),
            rule: "r".into(),
            failure: "trap".into(),
        };
        let mut sorter = Sorter::new(1, None);
        sorter.reject(reject(5));
        sorter.route(routed("a", Strategy::Immediate));
        sorter.reject(reject(2));
        let out = sorter.finish();
        let order: Vec<usize> = out.rejected.iter().map(|r| r.index).collect();
        assert_eq!(order, [2, 5]);
        assert_eq!(out.now.len(), 1);
    }
}
