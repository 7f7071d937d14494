//! The explain log: every applied invalidation traced back to the event, rule and target that
//! asked for it, and the keys it removed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::backend::{Op, OpOutcome};
use crate::pipeline::coalesce::Origins;
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
/// Kept as one entry per applied operation with its origins inline, and turned into
/// [`ExplainRecord`]s (shared behind `Arc`s) only when read: writing is on every submission's
/// path, reading is an operator asking.
pub struct ExplainLog {
    ring: Mutex<Ring>,
    capacity: usize,
}

/// The kept operations, oldest first, and how many records (origins) they hold in all.
#[derive(Default)]
struct Ring {
    entries: VecDeque<Entry>,
    records: usize,
}

struct Entry {
    applied: Applied,
    origins: Origins,
}

impl Entry {
    fn records(&self) -> impl Iterator<Item = ExplainRecord> + '_ {
        let applied = Arc::new(self.applied.clone());
        self.origins.iter().map(move |o| ExplainRecord {
            origin: Arc::new(o.clone().for_op(&applied.op)),
            applied: applied.clone(),
        })
    }
}

impl ExplainLog {
    pub fn new(capacity: usize) -> ExplainLog {
        ExplainLog {
            ring: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(4096)),
                records: 0,
            }),
            capacity,
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A writer for one applied batch: the log is locked once for all its operations, not
    /// once per operation. Writes nothing when the log is off (capacity 0).
    pub(crate) fn writer(&self) -> ExplainWriter<'_> {
        ExplainWriter {
            ring: (self.capacity > 0).then(|| self.ring()),
            capacity: self.capacity,
        }
    }

    /// Every kept record, oldest first.
    pub fn records(&self) -> Vec<ExplainRecord> {
        let ring = self.ring();
        ring.entries.iter().flat_map(Entry::records).collect()
    }

    /// Why was `key` of `tenant` invalidated? Every kept record that removed it.
    pub fn why(&self, tenant: &str, key: &str) -> Vec<ExplainRecord> {
        let ring = self.ring();
        ring.entries
            .iter()
            .filter(|e| &*e.applied.op.tenant == tenant && e.applied.keys.iter().any(|k| k == key))
            .flat_map(Entry::records)
            .collect()
    }
}

/// Appends the records of one applied batch under a single lock (see [`ExplainLog::writer`]).
pub(crate) struct ExplainWriter<'a> {
    ring: Option<MutexGuard<'a, Ring>>,
    capacity: usize,
}

impl ExplainWriter<'_> {
    /// Records one applied operation, once for each of its kept origins; the oldest records
    /// leave when the log is full.
    pub(crate) fn push(
        &mut self,
        origins: Origins,
        op: Op,
        applied_as: &'static str,
        outcome: OpOutcome,
        coalesced: u64,
    ) {
        let Some(ring) = &mut self.ring else {
            return;
        };
        ring.records += origins.len();
        ring.entries.push_back(Entry {
            applied: Applied {
                op,
                applied_as,
                keys_removed: outcome.removed,
                coalesced,
                keys: outcome.keys,
            },
            origins,
        });
        while ring.records > self.capacity {
            let excess = ring.records - self.capacity;
            let Some(oldest) = ring.entries.front_mut() else {
                break;
            };
            if oldest.origins.len() <= excess {
                ring.records -= oldest.origins.len();
                ring.entries.pop_front();
            } else {
                oldest.origins.drop_first(excess);
                ring.records -= excess;
            }
        }
    }
}
