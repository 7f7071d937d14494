//! Sorting a submission's routed operations by where they go: held for their transaction,
//! queued for the batch window, or grouped to be applied now.
//!
//! This is plain work on owned lists, so a submission does it on the blocking pool right
//! after evaluation: the operations that merge while grouping (`feed:home` from every event
//! of a batch) are freed on the thread that allocated their strings, where the allocator's
//! per-thread cache takes them back, instead of on the runtime thread.

use std::sync::Arc;

use super::ack::Ticket;
use super::coalesce::{Coalescer, Grouped};
use super::evaluate::EventRouting;
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

/// Sorts `routed` (every event's operations back to back, in the order of `events`), giving
/// each the submission's `ticket`.
pub(super) fn split(
    events: Vec<EventRouting>,
    routed: Vec<Routed>,
    ticket: Option<&Arc<Ticket>>,
) -> Split {
    let mut out = Split::default();
    let mut now = Coalescer::with_capacity(routed.len());
    let mut routed = routed.into_iter();
    for EventRouting {
        tx,
        targets,
        rejected,
    } in events
    {
        if let Some(rejection) = rejected {
            out.rejected.push(rejection);
            continue;
        }
        let mine = routed.by_ref().take(targets).map(|mut r| {
            r.ticket = ticket.cloned();
            r
        });
        out.targets += targets;
        match tx {
            Some((tenant, tx)) => {
                out.held_targets += targets;
                out.held.push((tenant, tx, mine.collect()));
            }
            None => {
                for r in mine {
                    if r.strategy == Strategy::Batched {
                        out.batched.push(r);
                    } else {
                        out.now_targets += 1;
                        now.merge(r.into());
                    }
                }
            }
        }
    }
    // Events are routed tenant by tenant: rejections are reported in submission order.
    out.rejected.sort_by_key(|r| r.index);
    out.now = now.take();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(value: &str, strategy: Strategy) -> Routed {
        Routed::for_test(value, strategy, 0)
    }

    fn event(tx: Option<&str>, targets: usize) -> EventRouting {
        EventRouting {
            tx: tx.map(|t| ("t".to_owned(), t.to_owned())),
            targets,
            rejected: None,
        }
    }

    #[test]
    fn held_batched_and_grouped_now() {
        let events = vec![event(None, 3), event(Some("tx1"), 1), event(None, 2)];
        let routed = vec![
            routed("a", Strategy::Immediate),
            routed("b", Strategy::Batched),
            routed("c", Strategy::Lazy),
            routed("held", Strategy::Immediate),
            routed("a", Strategy::Immediate),
            routed("b", Strategy::Batched),
        ];
        let out = split(events, routed, None);
        assert_eq!(out.targets, 6);
        assert_eq!(out.held_targets, 1);
        assert_eq!(out.held.len(), 1);
        assert_eq!(out.held[0].2[0].op.value, "held");
        assert_eq!(
            out.batched.len(),
            2,
            "batched ones are merged by the batcher"
        );
        assert_eq!(out.now_targets, 3);
        let now: Vec<(&str, u64)> = (out.now.ops.iter().zip(&out.now.metas))
            .map(|(op, m)| (&*op.value, m.merged))
            .collect();
        assert_eq!(now, [("a", 2), ("c", 1)]);
    }

    #[test]
    fn rejected_events_are_reported_in_submission_order() {
        let reject = |index| EventRouting {
            tx: None,
            targets: 0,
            rejected: Some(Rejection {
                index,
                tenant: "t".into(),
                rule: "r".into(),
                failure: "trap".into(),
            }),
        };
        let out = split(
            vec![reject(5), event(None, 1), reject(2)],
            vec![routed("a", Strategy::Immediate)],
            None,
        );
        let order: Vec<usize> = out.rejected.iter().map(|r| r.index).collect();
        assert_eq!(order, [2, 5]);
        assert_eq!(out.now.len(), 1);
    }
}
