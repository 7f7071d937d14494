//! The CPU-bound stage of a submission, run on the blocking pool: evaluate each tenant's
//! events with its rules, plan, route, and count.

use std::sync::Arc;

use super::route::{EventOrigin, Routed, route};
use super::stats::Stats;
use crate::event::WriteEvent;
use crate::plan::Outcome;
use crate::ruleset::{TenantGroup, group_by_tenant};
use crate::tenants::Tenants;

/// One event's routed operations, and the (tenant, transaction) that holds them, if any.
#[derive(Default, Clone)]
pub(super) struct EventRouting {
    pub tx: Option<(String, String)>,
    pub routed: Vec<Routed>,
}

pub(super) struct Evaluated {
    /// One per submitted event, in order.
    pub events: Vec<EventRouting>,
    /// Rule outcomes that failed.
    pub failures: usize,
}

/// Evaluates each tenant's events with its rules, plans, routes, and counts.
pub(super) fn evaluate_and_route(
    tenants: &Tenants,
    stats: &Stats,
    events: Vec<WriteEvent>,
    first_seq: u64,
) -> Evaluated {
    let n = events.len();
    let origins: Vec<Arc<EventOrigin>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Arc::new(EventOrigin::new(first_seq + i as u64, e)))
        .collect();
    let mut out: Vec<EventRouting> = vec![EventRouting::default(); n];
    let mut failures = 0;
    // Events go to their tenant's rule set by value; `indices` maps back to input order.
    for (tenant, TenantGroup { indices, events }) in group_by_tenant(events) {
        let setup = tenants.get(&tenant);
        let evaluation = setup.rules.evaluate_owned(events);
        // Count before the plans are moved into routing.
        stats.update(|s| {
            s.events += indices.len() as u64;
            for run in &evaluation.runs {
                let r = s.rules.entry(run.rule.clone()).or_default();
                r.calls += 1;
                r.events += run.events as u64;
            }
            for report in &evaluation.events {
                for o in &report.outcomes {
                    if let Outcome::Error { failure, .. } = &o.result {
                        failures += 1;
                        let r = s.rules.entry(o.rule.to_string()).or_default();
                        *r.failures.entry(failure.code().to_owned()).or_default() += 1;
                    }
                }
                for p in &report.plan {
                    s.target(p.kind, p.strategy);
                }
            }
        });
        let (mut cascaded, mut truncated) = (0, 0);
        for (&i, report) in indices.iter().zip(evaluation.events) {
            let origin = origins[i].clone();
            let tx = origin
                .transaction
                .as_ref()
                .map(|t| (tenant.clone(), t.clone()));
            let routed = route(origin, report.plan, &setup.relationships);
            cascaded += routed.cascaded;
            truncated += routed.truncated;
            out[i] = EventRouting {
                tx,
                routed: routed.routed,
            };
        }
        stats.update(|s| {
            s.cascaded_tags += cascaded;
            s.cascades_truncated += truncated;
        });
    }
    Evaluated {
        events: out,
        failures,
    }
}
