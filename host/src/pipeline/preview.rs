//! What the host would do with an evaluation, without doing it: every operation with its
//! origin and when it would be applied. `tagbust eval --explain` prints this.

use std::sync::Arc;

use serde::Serialize;

use super::operations::{EventOrigin, Origin, route};
use crate::backend::Op;
use crate::model::{Strategy, WriteEvent};
use crate::tenant::{Evaluation, Relationships};

/// When an operation would be applied. Serialized as its text (`now`, `batch window`,
/// `at commit of tx-9`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// During the submission (immediate, lazy).
    Now,
    /// At the end of the batch window.
    BatchWindow,
    /// When the named transaction commits.
    AtCommit(String),
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            When::Now => f.write_str("now"),
            When::BatchWindow => f.write_str("batch window"),
            When::AtCommit(tx) => write!(f, "at commit of {tx}"),
        }
    }
}

impl Serialize for When {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One operation the host would apply, and why.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewOp {
    /// Index of the event in the evaluated slice.
    pub event: usize,
    #[serde(flatten)]
    pub origin: Arc<Origin>,
    pub op: Op,
    pub when: When,
}

/// Turns every event's plan into operations as the host would (cascades through
/// `relationships`, strategies to operation kinds), without applying anything.
pub fn preview(
    events: &[WriteEvent],
    evaluation: &Evaluation,
    relationships: &Relationships,
) -> Vec<PreviewOp> {
    let mut out = Vec::new();
    for (i, (event, report)) in events.iter().zip(&evaluation.events).enumerate() {
        let origin = Arc::new(EventOrigin::new(i as u64, event));
        for r in route(origin, report.plan.clone(), relationships).routed {
            let when = match (&event.transaction, r.strategy) {
                (Some(tx), _) => When::AtCommit(tx.clone()),
                (None, Strategy::Batched) => When::BatchWindow,
                (None, _) => When::Now,
            };
            out.push(PreviewOp {
                event: i,
                origin: r.origin,
                op: r.op,
                when,
            });
        }
    }
    out
}
