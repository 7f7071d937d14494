//! Test guest whose instantiation is slow on purpose: a 24 MiB initialised static array lands
//! in a data segment, and every fresh instance starts by copying it into linear memory.
//!
//! Copying a data segment is host code, not guest code, so the epoch deadline cannot cut it
//! short; the memory cap bounds it instead (the segment must fit in the instance's memory).
//! For each id the rule returns `byte:<id>=<value>`, reading the array at that offset, so the
//! array cannot be optimised away.

use std::hint::black_box;

use tagbust_guest::{Context, Decision, Rule, RuleError, RuleInfo, Target, WriteEvent};

/// Size of the data segment.
const BLOB_BYTES: usize = 24 << 20;

/// Non-zero, so it is stored in the component rather than left to zeroed memory.
static BLOB: [u8; BLOB_BYTES] = [0x5a; BLOB_BYTES];

pub struct BigData;

impl Rule for BigData {
    fn info() -> RuleInfo {
        RuleInfo::new("big-data", "0.0.1")
    }

    fn init(_: &Context) -> Result<Self, RuleError> {
        Ok(BigData)
    }

    fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
        let blob = black_box(&BLOB);
        event
            .ids
            .iter()
            .map(|id| {
                let at: usize = id
                    .parse()
                    .map_err(|_| RuleError::InvalidEvent(format!("id `{id}` is not an offset")))?;
                let byte = blob.get(at).ok_or_else(|| {
                    RuleError::InvalidEvent(format!("offset {at} is past the data"))
                })?;
                Ok(Target::tag(format!("byte:{at}={byte}")))
            })
            .collect()
    }
}

tagbust_guest::export_rule!(BigData);
