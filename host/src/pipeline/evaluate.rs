//! The CPU-bound stage of a submission, run on the blocking pool: evaluate each tenant's
//! events with its rules, confine and plan, apply failure policies, route, and count.

use std::sync::Arc;

use super::ack::Ticket;
use super::confine;
use super::operations::{EventOrigin, EventRef, Origin, RouteOutput, Routed};
use super::options::Rejection;
use super::split::{Sorter, Split};
use super::stats::{Counters, Stats};
use crate::backend::{Op, OpKind};
use crate::model::RuleRef;
use crate::model::event::WriteEvent;
use crate::model::target::{Strategy, TargetKind};
use crate::sandbox::imports::LogLevel;
use crate::tenant::plan::{Outcome, PlannedTarget};
use crate::tenant::policy::{FailurePolicy, FallbackScope};
use crate::tenant::ruleset::{BoundRule, EventReport, TenantGroup, group_by_tenant};
use crate::tenant::tenants::{TenantSetup, Tenants};

pub(super) struct Evaluated {
    /// Every event's operations, sorted by where they go.
    pub split: Split,
    /// Rule outcomes that failed.
    pub failures: usize,
    /// Time each tenant's failed rule calls took (timeouts, memory bombs, traps): what the
    /// tenant owes in cool-down before its next evaluation.
    pub burned: Vec<(String, std::time::Duration)>,
}

/// Evaluates each tenant's events with its rules, plans, routes, sorts (giving every
/// operation the submission's `ticket`), and counts.
pub(super) fn evaluate_and_route(
    tenants: &Tenants,
    stats: &Stats,
    events: Vec<WriteEvent>,
    first_seq: u64,
    ticket: Option<&Arc<Ticket>>,
) -> Evaluated {
    let n = events.len();
    // What an origin keeps of its event besides what the evaluation reports (resource and
    // operation, moved from the report later), taken before the events move into the rules.
    let mut kept: Vec<EventExtras> = events
        .iter()
        .map(|e| EventExtras {
            transaction: e.transaction.clone(),
            source: e.context.get(tagbust_types::SOURCE_KEY).cloned(),
        })
        .collect();
    let mut sorter = Sorter::new(3 * n, ticket);
    let mut routed = RouteOutput::default();
    let mut failures = 0;
    let mut burned = Vec::new();
    // Events go to their tenant's rule set by value; `indices` maps back to input order.
    for (tenant, TenantGroup { indices, events }) in group_by_tenant(events) {
        // The caller refused unknown tenants before evaluation; a setup removed since then
        // leaves its events with an empty one (nothing to evaluate, nothing lost silently:
        // they are counted as events).
        let setup = tenants.get(&tenant).cloned().unwrap_or_default();
        let setup = &*setup;
        let mut evaluation = setup.rules.evaluate_for_plan(events);
        let failed_time: std::time::Duration = evaluation
            .runs
            .iter()
            .filter(|r| r.failed > 0)
            .map(|r| r.elapsed)
            .sum();
        if !failed_time.is_zero() {
            burned.push((tenant.clone(), failed_time));
        }
        let mut policy = PolicyCounts::default();
        let enforced: Vec<(Option<Rejection>, Option<FallbackRule>)> = indices
            .iter()
            .zip(evaluation.events.iter_mut())
            .map(|(&i, report)| enforce(tenants, setup, report, i, &mut policy))
            .collect();
        // Count before the plans are moved into routing.
        stats.update(|s| {
            s.events += indices.len() as u64;
            for run in &evaluation.runs {
                metrics::histogram!("tagbust_rule_call_seconds", "rule" => run.rule.clone())
                    .record(run.elapsed.as_secs_f64());
                let r = s.rules.entry(run.rule.clone()).or_default();
                r.calls += 1;
                r.events += run.events as u64;
                for log in &run.logs {
                    match log.level {
                        LogLevel::Warn => r.warnings += 1,
                        LogLevel::Error => r.errors += 1,
                        _ => {}
                    }
                }
                r.logs_dropped += run.logs_dropped;
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
            policy.add_to(s);
        });
        let (cascaded, truncated) = (routed.cascaded, routed.truncated);
        // Every event of the group shares one copy of the tenant id.
        let tenant_id: Arc<str> = Arc::from(tenant.as_str());
        // The group's accepted events, allocated as one block.
        let accepted = enforced.iter().filter(|(r, _)| r.is_none()).count();
        let mut origins = Vec::with_capacity(accepted);
        for ((&i, report), (rejected, _)) in
            indices.iter().zip(&mut evaluation.events).zip(&enforced)
        {
            if rejected.is_some() {
                continue;
            }
            let EventExtras {
                transaction,
                source,
            } = std::mem::take(&mut kept[i]);
            origins.push(EventOrigin {
                seq: first_seq + i as u64,
                tenant: tenant_id.clone(),
                resource: std::mem::take(&mut report.resource),
                operation: report.operation,
                transaction,
                source,
            });
        }
        let mut origins = EventRef::block(origins);
        for (report, (rejected, whole)) in evaluation.events.into_iter().zip(enforced) {
            if let Some(rejection) = rejected {
                sorter.reject(rejection);
                continue;
            }
            // One origin per accepted event, made above in this order: never short.
            let Some(origin) = origins.next() else {
                break;
            };
            if let Some(tx) = origin.transaction.clone() {
                let mut held = Vec::new();
                routed.add_into(
                    origin.clone(),
                    report.plan,
                    &setup.relationships,
                    &mut |r| held.push(r),
                );
                if let Some(rule) = whole {
                    held.push(rule.tenant_op(&origin));
                }
                sorter.hold(tenant.clone(), tx, held);
                continue;
            }
            let fallback = whole.map(|rule| rule.tenant_op(&origin));
            routed.add_into(origin, report.plan, &setup.relationships, &mut |r| {
                sorter.route(r)
            });
            if let Some(op) = fallback {
                sorter.route(op);
            }
        }
        stats.update(|s| {
            s.cascaded_tags += routed.cascaded - cascaded;
            s.cascades_truncated += routed.truncated - truncated;
        });
    }
    Evaluated {
        split: sorter.finish(),
        failures,
        burned,
    }
}

/// What an event's origin needs that its evaluation report does not carry.
#[derive(Default)]
struct EventExtras {
    transaction: Option<String>,
    source: Option<String>,
}

/// Policy outcomes of one tenant group, added to the stats under one lock.
#[derive(Default)]
pub(super) struct PolicyCounts {
    fallbacks: u64,
    skips: u64,
    rejected: u64,
    pub confined: u64,
}

impl PolicyCounts {
    fn add_to(&self, s: &mut Counters) {
        s.rule_fallbacks += self.fallbacks;
        s.rule_skips += self.skips;
        s.events_failed_by_rule += self.rejected;
        s.confinement_violations += self.confined;
    }
}

fn bound_rule<'s>(setup: &'s TenantSetup, rule: &RuleRef) -> Option<&'s BoundRule> {
    setup.rules.rules().iter().find(|b| b.rule.id() == rule)
}

/// A failed rule whose fallback invalidates the whole tenant.
#[derive(Clone)]
pub(super) struct FallbackRule {
    rule: RuleRef,
}

impl FallbackRule {
    pub(super) fn tenant_op(self, event: &EventRef) -> Routed {
        Routed {
            op: Op {
                tenant: event.tenant.clone(),
                kind: OpKind::Tenant,
                value: String::new(),
            },
            strategy: Strategy::Immediate,
            origin: Origin {
                event: event.clone(),
                rule: self.rule,
                fallback: true,
                target_kind: TargetKind::Pattern,
                target: "*".into(),
                strategy: Strategy::Immediate,
                cascaded_from: None,
            },
            ticket: None,
        }
    }
}

/// Confines one event's plan to its tenant and applies the failure policy of every rule that
/// failed on it (or whose targets were confined). Returns the rejection when a `fail` rule
/// failed, and the rule whose fallback is the whole tenant, if any; a `fallback` rule with
/// the resource scope adds its tag to the plan here.
pub(super) fn enforce(
    tenants: &Tenants,
    setup: &TenantSetup,
    report: &mut EventReport,
    index: usize,
    counts: &mut PolicyCounts,
) -> (Option<Rejection>, Option<FallbackRule>) {
    let tenant = report.tenant.as_str();
    // (rule, why) of every failure on this event.
    let mut failed: Vec<(RuleRef, String)> = report
        .outcomes
        .iter()
        .filter_map(|o| match &o.result {
            Outcome::Error { failure, .. } => Some((o.rule.clone(), failure.code().to_owned())),
            Outcome::Ok { .. } => None,
        })
        .collect();
    // Nearly every plan is confined already: one pass that only checks, and the pass that
    // removes (checking again) only for a plan that needs it.
    let confined = |p: &PlannedTarget| confine::check(tenant, tenants, p.kind, &p.value).is_ok();
    if !report.plan.iter().all(confined) {
        report.plan.retain(|p| {
            let Err(violation) = confine::check(tenant, tenants, p.kind, &p.value) else {
                return true;
            };
            counts.confined += 1;
            tracing::warn!(
                tenant,
                rule = %p.rule,
                target = %p.value,
                %violation,
                "target outside the tenant's namespace rejected"
            );
            if !failed.iter().any(|(r, _)| *r == p.rule) {
                failed.push((p.rule.clone(), format!("confinement: {violation}")));
            }
            false
        });
    }
    let (mut rejection, mut whole_tenant) = (None, None);
    for (rule, why) in failed {
        let Some(bound) = bound_rule(setup, &rule) else {
            continue;
        };
        match bound.on_failure {
            FailurePolicy::Fallback => {
                counts.fallbacks += 1;
                if bound.fallback == FallbackScope::Tenant {
                    whole_tenant = Some(FallbackRule { rule: rule.clone() });
                } else {
                    report.plan.push(PlannedTarget {
                        kind: TargetKind::Tag,
                        value: report.resource.clone(),
                        strategy: Strategy::Immediate,
                        cascade: false,
                        priority: bound.priority,
                        rule: rule.clone(),
                        fallback: true,
                    });
                }
            }
            FailurePolicy::Skip => {
                counts.skips += 1;
                tracing::warn!(tenant, rule = %rule, failure = %why, "rule failed; skipped by its policy");
            }
            FailurePolicy::Fail => {
                if rejection.is_none() {
                    counts.rejected += 1;
                    rejection = Some(Rejection {
                        index,
                        tenant: tenant.to_owned(),
                        rule: rule.name().to_owned(),
                        failure: why,
                    });
                }
            }
        }
    }
    (rejection, whole_tenant)
}
