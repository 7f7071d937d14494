//! The explain log: every applied invalidation traced back to the event, rule and target that
//! asked for it, and the keys it removed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::backend::{Op, OpOutcome};
use crate::pipeline::route::Origin;

/// One applied operation, for one origin (an operation coalesced from many events has one
/// record per event).
#[derive(Debug, Clone, Serialize)]
pub struct ExplainRecord {
    #[serde(flatten)]
    pub origin: Arc<Origin>,
    pub op: Op,
    /// How it was applied: `immediate`, `batched`, `lazy`, `commit`, `timeout`, `shutdown`.
    pub applied_as: &'static str,
    pub keys_removed: u64,
    /// The first removed keys (see [`crate::backend::MAX_LISTED_KEYS`]).
    pub keys: Vec<String>,
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

    pub(crate) fn push(
        &self,
        origins: &[Arc<Origin>],
        op: &Op,
        applied_as: &'static str,
        outcome: &OpOutcome,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for origin in origins {
            if records.len() == self.capacity {
                records.pop_front();
            }
            records.push_back(ExplainRecord {
                origin: origin.clone(),
                op: op.clone(),
                applied_as,
                keys_removed: outcome.removed,
                keys: outcome.keys.clone(),
            });
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
            .filter(|r| r.op.tenant == tenant && r.keys.iter().any(|k| k == key))
            .cloned()
            .collect()
    }
}
