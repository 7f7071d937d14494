//! What the host would do, without doing it: every operation with its origin and when it
//! would be applied. [`preview`] turns an evaluation's plans into operations (`tagbust eval
//! --explain`); [`dry_run`] takes a submission's whole path short of the backend — routing,
//! evaluation, confinement, failure policy, cascade — for `tagbust test` and `tagbust diff`.

use std::sync::Arc;

use serde::Serialize;

use super::evaluate::{PolicyCounts, enforce};
use super::operations::{EventOrigin, EventRef, Origin, route};
use super::options::Rejection;
use crate::backend::Op;
use crate::model::{Strategy, WriteEvent};
use crate::tenant::ruleset::{RunReport, TenantGroup, group_by_tenant};
use crate::tenant::{Evaluation, Relationships, RuleOutcome, Tenants};

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
        let origin = EventRef::new(EventOrigin::new(i as u64, event));
        for r in route(origin, report.plan.clone(), relationships).routed {
            out.push(PreviewOp {
                event: i,
                when: when(event.transaction.as_deref(), r.strategy),
                origin: Arc::new(r.origin.for_op(&r.op)),
                op: r.op,
            });
        }
    }
    out
}

fn when(transaction: Option<&str>, strategy: Strategy) -> When {
    match (transaction, strategy) {
        (Some(tx), _) => When::AtCommit(tx.to_owned()),
        (None, Strategy::Batched) => When::BatchWindow,
        (None, _) => When::Now,
    }
}

/// What a submission of these events would do, short of the backend.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// One per event, in input order.
    pub events: Vec<DryRunEvent>,
    /// One per rule call.
    pub runs: Vec<RunReport>,
}

/// One event's dry run.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunEvent {
    /// What each triggered rule said, in apply order.
    pub outcomes: Vec<RuleOutcome>,
    /// The operations the host would apply, in order: the confined plan, the failure
    /// policy's fallbacks, and the cascades. Empty when the event is rejected.
    pub ops: Vec<PreviewOp>,
    /// Set when a rule with the `fail` policy failed: the host would refuse the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejection>,
    /// Targets dropped because they reached outside the tenant.
    pub confinement_violations: u64,
}

/// Runs `events` through the path [`crate::Tagbust::submit`] takes after admission — each
/// tenant's rules, confinement, failure policy, cascade through the tenant's relationships —
/// and returns what would be applied, without a backend. Events of a tenant `tenants` does
/// not know run with an empty rule set (the host would refuse them at admission).
pub fn dry_run(tenants: &Tenants, events: Vec<WriteEvent>) -> DryRun {
    let mut out: Vec<Option<DryRunEvent>> = vec![None; events.len()];
    let mut runs = Vec::new();
    for (tenant, TenantGroup { indices, events }) in group_by_tenant(events) {
        let setup = tenants.get(&tenant).cloned().unwrap_or_default();
        let origins: Vec<(EventRef, Option<String>)> = indices
            .iter()
            .zip(&events)
            .map(|(&i, e)| {
                let origin = EventRef::new(EventOrigin::new(i as u64, e));
                (origin, e.transaction.clone())
            })
            .collect();
        let evaluation = setup.rules.evaluate_owned(events);
        runs.extend(evaluation.runs);
        for ((&i, mut report), (origin, tx)) in indices.iter().zip(evaluation.events).zip(origins) {
            let mut counts = PolicyCounts::default();
            let (rejected, whole) = enforce(tenants, &setup, &mut report, i, &mut counts);
            let mut routed = Vec::new();
            if rejected.is_none() {
                routed = route(origin.clone(), report.plan, &setup.relationships).routed;
                routed.extend(whole.map(|rule| rule.tenant_op(&origin)));
            }
            let ops = routed
                .into_iter()
                .map(|r| PreviewOp {
                    event: i,
                    when: when(tx.as_deref(), r.strategy),
                    origin: Arc::new(r.origin.for_op(&r.op)),
                    op: r.op,
                })
                .collect();
            out[i] = Some(DryRunEvent {
                outcomes: report.outcomes,
                ops,
                rejected,
                confinement_violations: counts.confined,
            });
        }
    }
    DryRun {
        // Every index belongs to exactly one tenant group, so every slot is filled.
        events: out.into_iter().flatten().collect(),
        runs,
    }
}
