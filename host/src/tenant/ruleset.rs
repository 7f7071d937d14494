//! A tenant's rules with their configuration, routing each event to the rules that trigger on
//! it, evaluating, and planning.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::model::event::WriteEvent;
use crate::sandbox::batch::Batch;
use crate::sandbox::imports::{GuestLog, RuleConfig};
use crate::sandbox::limits::Limits;
use crate::sandbox::rule::Rule;
use crate::tenant::plan::{Outcome, PlannedTarget, RuleOutcome, plan, plan_taking};
use crate::tenant::policy::{FailurePolicy, FallbackScope};

/// A rule bound to one tenant's configuration, priority and limits.
#[derive(Clone)]
pub struct BoundRule {
    pub rule: Rule,
    pub config: RuleConfig,
    /// The rule's own priority unless overridden.
    pub priority: i32,
    pub limits: Limits,
    /// What the host does when this rule fails on an event. Default: fallback.
    pub on_failure: FailurePolicy,
    /// What a fallback invalidates. Default: the resource-level tag.
    pub fallback: FallbackScope,
}

impl BoundRule {
    /// The rule with its own priority, no configuration and the engine's default limits.
    pub fn new(rule: Rule) -> BoundRule {
        let priority = rule.info().priority;
        let limits = rule.inner.engine.options().default_limits.clone();
        BoundRule {
            rule,
            config: RuleConfig::default(),
            priority,
            limits,
            on_failure: FailurePolicy::default(),
            fallback: FallbackScope::default(),
        }
    }

    pub fn with_policy(mut self, on_failure: FailurePolicy, fallback: FallbackScope) -> BoundRule {
        self.on_failure = on_failure;
        self.fallback = fallback;
        self
    }

    pub fn with_config(mut self, config: RuleConfig) -> BoundRule {
        self.config = config;
        self
    }
}

/// Rules in apply order: priority descending, then name, then version.
#[derive(Clone, Default)]
pub struct RuleSet {
    rules: Vec<BoundRule>,
}

/// Everything the rules said about one event, and the merged plan.
#[derive(Debug, Clone, Serialize)]
pub struct EventReport {
    pub tenant: String,
    pub resource: String,
    pub operation: crate::model::event::Operation,
    /// Only the rules that trigger on the event, in apply order.
    pub outcomes: Vec<RuleOutcome>,
    pub plan: Vec<PlannedTarget>,
}

/// One rule's call on one tenant's batch.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub tenant: String,
    pub rule: String,
    pub events: usize,
    pub failed: usize,
    #[serde(serialize_with = "micros")]
    pub elapsed: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<GuestLog>,
    #[serde(skip_serializing_if = "is_zero")]
    pub logs_dropped: u64,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The result of [`RuleSet::evaluate`].
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// One report per input event, in input order.
    pub events: Vec<EventReport>,
    /// One entry per rule call.
    pub runs: Vec<RunReport>,
}

impl RuleSet {
    pub fn new(mut rules: Vec<BoundRule>) -> RuleSet {
        rules.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.rule.name().cmp(b.rule.name()))
                .then_with(|| a.rule.info().version.cmp(&b.rule.info().version))
        });
        RuleSet { rules }
    }

    pub fn rules(&self) -> &[BoundRule] {
        &self.rules
    }

    /// Evaluates `events` (any mix of tenants): each tenant's events form one batch per rule,
    /// holding only the events the rule triggers on.
    ///
    /// Takes owned events or references (`&[WriteEvent]` or `&[&WriteEvent]`); see
    /// [`RuleSet::evaluate_owned`] to hand the events over and save copying them.
    pub fn evaluate<E: Borrow<WriteEvent>>(&self, events: &[E]) -> Evaluation {
        let events: Vec<&WriteEvent> = events.iter().map(Borrow::borrow).collect();
        let heads = events.iter().map(|e| Head::of(e)).collect();
        let mut by_tenant: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            by_tenant.entry(e.tenant.as_str()).or_default().push(i);
        }
        let batches = by_tenant
            .into_iter()
            .filter_map(|(tenant, indices)| {
                // Grouped by tenant, so this cannot mix tenants.
                let batch = Batch::new(tenant, indices.iter().map(|&i| events[i])).ok()?;
                Some((batch, indices))
            })
            .collect();
        self.run(batches, heads, Targets::Kept)
    }

    /// Like [`RuleSet::evaluate`], but moves the events' strings into the rules' batches
    /// instead of copying them.
    pub fn evaluate_owned(&self, events: Vec<WriteEvent>) -> Evaluation {
        self.evaluate_moving(events, Targets::Kept)
    }

    /// [`RuleSet::evaluate_owned`] as the pipeline evaluates: each target moves into its
    /// event's plan instead of being copied, so the rules' `Ok` outcomes are left without
    /// targets (the pipeline reads outcomes only for their failures; preview and the CLI show
    /// them). Public for the pipeline bench, whose "evaluation alone" must do the host's
    /// evaluation work and no more; not part of the supported API.
    #[doc(hidden)]
    pub fn evaluate_for_plan(&self, events: Vec<WriteEvent>) -> Evaluation {
        self.evaluate_moving(events, Targets::Moved)
    }

    fn evaluate_moving(&self, events: Vec<WriteEvent>, targets: Targets) -> Evaluation {
        let heads = events.iter().map(Head::of).collect();
        let batches = group_by_tenant(events)
            .into_iter()
            .map(|(tenant, g)| (Batch::from_owned(&tenant, g.events), g.indices))
            .collect();
        self.run(batches, heads, targets)
    }

    /// Runs every rule over each tenant's batch; `indices[j]` is the input position of the
    /// batch's event `j`.
    fn run(
        &self,
        batches: Vec<(Batch, Vec<usize>)>,
        heads: Vec<Head>,
        targets: Targets,
    ) -> Evaluation {
        let mut outcomes: Vec<Vec<RuleOutcome>> = vec![Vec::new(); heads.len()];
        let mut runs = Vec::new();
        for (batch, indices) in batches {
            for bound in &self.rules {
                let info = bound.rule.info();
                let matching: Vec<usize> = (0..batch.len())
                    .filter(|&j| {
                        let (resource, op) = batch.key(j);
                        info.triggers_on(resource, op)
                    })
                    .collect();
                if matching.is_empty() {
                    continue;
                }
                let sub;
                let run_batch = if matching.len() == batch.len() {
                    &batch
                } else {
                    sub = batch.subset(&matching);
                    &sub
                };
                let run = bound.rule.evaluate(run_batch, &bound.config, &bound.limits);
                let counts = run.counts();
                for (&j, result) in matching.iter().zip(run.outcomes) {
                    outcomes[indices[j]].push(RuleOutcome {
                        rule: bound.rule.inner.id.clone(),
                        priority: bound.priority,
                        result: Outcome::from_result(result),
                    });
                }
                runs.push(RunReport {
                    tenant: batch.tenant().to_owned(),
                    rule: info.name.clone(),
                    events: matching.len(),
                    failed: counts.failed,
                    elapsed: run.elapsed,
                    logs: run.logs,
                    logs_dropped: run.logs_dropped,
                });
            }
        }
        let events = heads
            .into_iter()
            .zip(outcomes)
            .map(|(head, mut outcomes)| EventReport {
                tenant: head.tenant,
                resource: head.resource,
                operation: head.operation,
                plan: match targets {
                    Targets::Kept => plan(&outcomes),
                    Targets::Moved => plan_taking(&mut outcomes),
                },
                outcomes,
            })
            .collect();
        Evaluation { events, runs }
    }
}

/// Whether an evaluation's outcomes keep their targets, or the plan takes them.
#[derive(Clone, Copy)]
enum Targets {
    Kept,
    Moved,
}

/// One tenant's events, moved out of a mixed list, with their positions in it.
pub(crate) struct TenantGroup {
    pub indices: Vec<usize>,
    pub events: Vec<WriteEvent>,
}

/// Splits `events` by tenant without copying them, in tenant order.
pub(crate) fn group_by_tenant(events: Vec<WriteEvent>) -> BTreeMap<String, TenantGroup> {
    let mut groups: BTreeMap<String, TenantGroup> = BTreeMap::new();
    // The usual submission comes from one tenant: it is its own group, moved whole (moving
    // each event into a growing list costs more than the check).
    if let Some(first) = events.first()
        && events.iter().all(|e| e.tenant == first.tenant)
    {
        let tenant = first.tenant.clone();
        let indices = (0..events.len()).collect();
        groups.insert(tenant, TenantGroup { indices, events });
        return groups;
    }
    for (i, e) in events.into_iter().enumerate() {
        let group = match groups.get_mut(e.tenant.as_str()) {
            Some(group) => group,
            None => groups.entry(e.tenant.clone()).or_insert(TenantGroup {
                indices: Vec::new(),
                events: Vec::new(),
            }),
        };
        group.indices.push(i);
        group.events.push(e);
    }
    groups
}

/// What a report keeps of its event.
struct Head {
    tenant: String,
    resource: String,
    operation: crate::model::event::Operation,
}

impl Head {
    fn of(e: &WriteEvent) -> Head {
        Head {
            tenant: e.tenant.clone(),
            resource: e.resource.clone(),
            operation: e.operation,
        }
    }
}
