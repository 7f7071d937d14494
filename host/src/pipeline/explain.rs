//! The explain log: every applied invalidation traced back to the event, rule and target that
//! asked for it, and the keys it removed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::backend::{Op, OpOutcome};
use crate::model::Strategy;
use crate::pipeline::coalesce::{Meta, Origins};
use crate::pipeline::operations::Origin;

/// One applied operation and what it did; shared by the records of all its origins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub op: Op,
    /// How it was applied: `immediate`, `batched`, `lazy`, `tx_timeout`, `shutdown`.
    pub applied_as: &'static str,
    pub keys_removed: u64,
    /// Targets merged into this one operation (1 unless batched or deduplicated); only the
    /// first few of their origins are kept as records.
    pub coalesced: u64,
    /// The first removed keys (see [`crate::backend::MAX_LISTED_KEYS`]).
    pub keys: Vec<String>,
}

/// One applied operation, for one origin (an operation coalesced from many events has one
/// record per kept origin).
#[derive(Debug, Clone, Serialize)]
pub struct ExplainRecord {
    #[serde(flatten)]
    pub origin: Arc<Origin>,
    #[serde(flatten)]
    pub applied: Arc<Applied>,
}

/// A bounded log of the most recent records.
///
/// Kept as the applied batches themselves, each as the apply left it (its operations, what
/// each did, and their origins, position for position), and turned into [`ExplainRecord`]s
/// (shared behind `Arc`s) only when read: writing is on every submission's path, reading is
/// an operator asking. Recording a batch moves its lists in whole; building an entry per
/// operation was a measured share of the runtime thread's work.
pub struct ExplainLog {
    ring: Mutex<Ring>,
    capacity: usize,
}

/// The kept batches, oldest first, and how many records (origins) they hold in all.
#[derive(Default)]
struct Ring {
    batches: VecDeque<Batch>,
    records: usize,
}

/// A batch's lists are cut down only from this many operations on (see
/// [`Batch::forget_first`]): below it, what is left behind is at most a few hundred KiB, and
/// moving the rest would cost every ordinary batch.
const COMPACT_FROM: usize = 4096;

/// One applied batch. Operations before `start` have left the log: their strings and origins
/// are already freed, and the lists themselves go when the last one leaves.
struct Batch {
    ops: Vec<Op>,
    applied_as: Vec<&'static str>,
    outcomes: Vec<OpOutcome>,
    metas: Vec<Meta>,
    start: usize,
    /// Records (origins) still kept, from `start` on.
    records: usize,
}

impl Batch {
    fn len(&self) -> usize {
        self.ops.len()
    }

    /// The kept operations: (operation, how it was applied, what it did, the rest of it).
    fn kept(&self) -> impl Iterator<Item = (&Op, &'static str, &OpOutcome, &Meta)> + '_ {
        let (ops, outcomes, metas) = (&self.ops, &self.outcomes, &self.metas);
        (self.start..self.len())
            .map(move |i| (&ops[i], self.applied_as[i], &outcomes[i], &metas[i]))
    }

    /// Frees the oldest kept operation (its origins, its strings) and leaves it behind. Once
    /// the operations left behind are half the lists of a large batch (one far larger than
    /// the log), the lists are cut down to the kept ones: a batch holds lists for at most
    /// [`COMPACT_FROM`] operations or twice what it keeps, however large it was.
    fn forget_first(&mut self) {
        let i = self.start;
        drop(std::mem::take(&mut self.ops[i].value));
        drop(std::mem::take(&mut self.outcomes[i].keys));
        drop(std::mem::replace(
            &mut self.metas[i].origins,
            Origins::Many(Vec::new()),
        ));
        self.start += 1;
        if self.len() >= COMPACT_FROM && 2 * self.start >= self.len() {
            let gone = ..self.start;
            self.ops.drain(gone);
            self.applied_as.drain(gone);
            self.outcomes.drain(gone);
            self.metas.drain(gone);
            self.ops.shrink_to_fit();
            self.applied_as.shrink_to_fit();
            self.outcomes.shrink_to_fit();
            self.metas.shrink_to_fit();
            self.start = 0;
        }
    }

    /// The memory a batch holds, in operations (for the bound's test).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.ops.capacity()
    }
}

fn records_of<'a>(
    (op, applied_as, outcome, meta): (&'a Op, &'static str, &'a OpOutcome, &'a Meta),
) -> impl Iterator<Item = ExplainRecord> + 'a {
    let applied = Arc::new(Applied {
        op: op.clone(),
        applied_as,
        keys_removed: outcome.removed,
        coalesced: meta.merged,
        keys: outcome.keys.clone(),
    });
    meta.origins.iter().map(move |o| ExplainRecord {
        origin: Arc::new(o.clone().for_op(&applied.op)),
        applied: applied.clone(),
    })
}

impl ExplainLog {
    pub fn new(capacity: usize) -> ExplainLog {
        ExplainLog {
            ring: Mutex::new(Ring::default()),
            capacity,
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks every operation of an applied batch applied for the submissions waiting on it,
    /// and records it, once for each kept origin of each operation (the oldest records leave
    /// when the log is full). `outcomes` is the backend's answer, position for position with
    /// `ops`.
    pub(crate) fn record(
        &self,
        ops: Vec<Op>,
        mut metas: Vec<Meta>,
        mut outcomes: Vec<OpOutcome>,
        label: impl Fn(Strategy) -> &'static str,
    ) {
        if self.capacity == 0 {
            for meta in metas {
                meta.tickets.applied();
            }
            return;
        }
        // Under the log's lock: whoever the tickets wake reads the log after this returns.
        let mut ring = self.ring();
        for meta in &mut metas {
            std::mem::take(&mut meta.tickets).applied();
        }
        // One outcome per operation is the backend's contract; a backend that breaks it
        // gets empty outcomes (or loses the extra ones) here rather than a panic on read.
        outcomes.resize_with(ops.len(), OpOutcome::default);
        let applied_as = metas.iter().map(|m| label(m.strategy)).collect();
        let records = metas.iter().map(|m| m.origins.len()).sum::<usize>();
        ring.records += records;
        ring.batches.push_back(Batch {
            ops,
            applied_as,
            outcomes,
            metas,
            start: 0,
            records,
        });
        self.evict(&mut ring);
    }

    /// Drops the oldest records until at most `capacity` are kept.
    fn evict(&self, ring: &mut Ring) {
        while ring.records > self.capacity {
            let excess = ring.records - self.capacity;
            let Some(oldest) = ring.batches.front_mut() else {
                break;
            };
            // The usual case: the whole oldest batch leaves, dropped in one pass.
            if oldest.records <= excess || oldest.start == oldest.len() {
                ring.records -= oldest.records;
                ring.batches.pop_front();
                continue;
            }
            let first = &mut oldest.metas[oldest.start].origins;
            let n = first.len().min(excess);
            if n == first.len() {
                oldest.forget_first();
            } else {
                first.drop_first(n);
            }
            oldest.records -= n;
            ring.records -= n;
        }
    }

    /// Every kept record, oldest first.
    pub fn records(&self) -> Vec<ExplainRecord> {
        let ring = self.ring();
        ring.batches
            .iter()
            .flat_map(Batch::kept)
            .flat_map(records_of)
            .collect()
    }

    /// Why was `key` of `tenant` invalidated? Every kept record that removed it.
    pub fn why(&self, tenant: &str, key: &str) -> Vec<ExplainRecord> {
        let ring = self.ring();
        ring.batches
            .iter()
            .flat_map(Batch::kept)
            .filter(|(op, _, outcome, _)| {
                &*op.tenant == tenant && outcome.keys.iter().any(|k| k == key)
            })
            .flat_map(records_of)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::pipeline::ack::Ticket;
    use crate::pipeline::coalesce::{Coalescer, Grouped, Pending};
    use crate::pipeline::operations::Routed;

    /// A batch of operations named `values`, each from `origins` events (seq 0, 1, …), and
    /// the backend's outcome for each: it removed the key `<value>!`.
    fn batch(
        values: &[&str],
        origins: u64,
        ticket: Option<&Arc<Ticket>>,
    ) -> (Grouped, Vec<OpOutcome>) {
        let mut c = Coalescer::with_capacity(values.len());
        for v in values {
            for seq in 0..origins {
                let mut r = Routed::for_test(v, Strategy::Immediate, seq);
                r.ticket = ticket.cloned();
                c.merge(Pending::from(r));
            }
        }
        let grouped = c.take();
        let outcomes = grouped
            .ops
            .iter()
            .map(|op| OpOutcome {
                removed: 1,
                keys: vec![format!("{}!", op.value)],
                ..OpOutcome::default()
            })
            .collect();
        (grouped, outcomes)
    }

    fn record(log: &ExplainLog, (grouped, outcomes): (Grouped, Vec<OpOutcome>)) {
        log.record(grouped.ops, grouped.metas, outcomes, |_| "immediate");
    }

    /// A tracked submission whose dispatch is done, waiting for `operations` to be applied.
    fn submission(operations: u64) -> (Arc<Ticket>, crate::pipeline::ack::Applied) {
        let (ticket, applied) = Ticket::new();
        ticket.add(operations);
        ticket.done(1);
        (ticket, applied)
    }

    /// Target and event seq of every kept record (`a1`), oldest first.
    fn kept(log: &ExplainLog) -> Vec<String> {
        let records = log.records();
        records
            .iter()
            .map(|r| format!("{}{}", r.origin.target, r.origin.event.seq))
            .collect()
    }

    #[test]
    fn keeps_the_newest_records_up_to_its_capacity_across_batches() {
        let log = ExplainLog::new(5);
        record(&log, batch(&["a", "b"], 2, None));
        assert_eq!(kept(&log).len(), 4);
        // Two more records: `a`'s first origin goes, then the rest of `a`.
        record(&log, batch(&["c"], 2, None));
        assert_eq!(kept(&log), ["a1", "b0", "b1", "c0", "c1"]);
        record(&log, batch(&["d", "e"], 1, None));
        assert_eq!(kept(&log), ["b1", "c0", "c1", "d0", "e0"]);
        let why = log.why("t", "c!");
        assert_eq!(
            why.len(),
            2,
            "both origins of the operation that removed it"
        );
        assert_eq!(why[0].applied.coalesced, 2);
        assert_eq!(why[0].applied.applied_as, "immediate");
        assert!(log.why("t", "a!").is_empty(), "left the log");
        assert!(log.why("other", "c!").is_empty(), "another tenant's key");
    }

    #[test]
    fn a_batch_larger_than_the_log_keeps_its_newest_records_and_still_acknowledges() {
        let (ticket, applied) = submission(12);
        let log = ExplainLog::new(3);
        record(&log, batch(&["a", "b", "c", "d"], 3, Some(&ticket)));
        assert_eq!(kept(&log), ["d0", "d1", "d2"]);
        assert_eq!(
            applied.now_or_never(),
            Some(Ok(())),
            "operations whose records left at once were applied all the same"
        );
    }

    #[test]
    fn a_huge_batch_does_not_hold_its_memory_for_a_few_kept_records() {
        let values: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let log = ExplainLog::new(3);
        record(&log, batch(&values, 1, None));
        assert_eq!(kept(&log), ["k99970", "k99980", "k99990"]);
        let held = log.ring().batches[0].held();
        assert!(
            held <= COMPACT_FROM,
            "10,000 operations' lists kept for 3 records: {held}"
        );
    }

    #[test]
    fn a_log_of_capacity_zero_keeps_nothing_and_acknowledges() {
        let (ticket, applied) = submission(2);
        let log = ExplainLog::new(0);
        record(&log, batch(&["a", "b"], 1, Some(&ticket)));
        assert!(log.records().is_empty());
        assert_eq!(applied.now_or_never(), Some(Ok(())));
    }

    #[test]
    fn a_backend_answering_short_gets_empty_outcomes_not_a_panic() {
        let log = ExplainLog::new(10);
        let (grouped, mut outcomes) = batch(&["a", "b"], 1, None);
        outcomes.truncate(1);
        record(&log, (grouped, outcomes));
        let records = log.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].applied.keys_removed, 0);
    }
}
