//! The explain log: every applied invalidation traced back to the event, rule and target that
//! asked for it, and the keys it removed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::backend::{Op, OpOutcome};
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
pub struct ExplainLog {
    records: Mutex<VecDeque<ExplainRecord>>,
    capacity: usize,
}

impl ExplainLog {
    pub fn new(capacity: usize) -> ExplainLog {
        ExplainLog {
            records: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity,
        }
    }

    /// A writer for one applied batch: the log is locked once for all its operations, not
    /// once per operation. Writes nothing when the log is off (capacity 0).
    pub(crate) fn writer(&self) -> ExplainWriter<'_> {
        ExplainWriter {
            records: (self.capacity > 0)
                .then(|| self.records.lock().unwrap_or_else(|p| p.into_inner())),
            capacity: self.capacity,
        }
    }

    /// Every kept record, oldest first.
    pub fn records(&self) -> Vec<ExplainRecord> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.iter().cloned().collect()
    }

    /// Why was `key` of `tenant` invalidated? Every kept record that removed it.
    pub fn why(&self, tenant: &str, key: &str) -> Vec<ExplainRecord> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records
            .iter()
            .filter(|r| &*r.applied.op.tenant == tenant && r.applied.keys.iter().any(|k| k == key))
            .cloned()
            .collect()
    }
}

/// Appends the records of one applied batch under a single lock (see [`ExplainLog::writer`]).
pub(crate) struct ExplainWriter<'a> {
    records: Option<MutexGuard<'a, VecDeque<ExplainRecord>>>,
    capacity: usize,
}

impl ExplainWriter<'_> {
    /// Records one applied operation, once for each of its kept origins.
    pub(crate) fn push(
        &mut self,
        origins: &[Arc<Origin>],
        op: Op,
        applied_as: &'static str,
        outcome: OpOutcome,
        coalesced: u64,
    ) {
        let Some(records) = &mut self.records else {
            return;
        };
        let applied = Arc::new(Applied {
            op,
            applied_as,
            keys_removed: outcome.removed,
            coalesced,
            keys: outcome.keys,
        });
        for origin in origins {
            if records.len() == self.capacity {
                records.pop_front();
            }
            records.push_back(ExplainRecord {
                origin: origin.clone(),
                applied: applied.clone(),
            });
        }
    }
}
