//! From a planned target to backend operations: strategy, cascade, tenant confinement.
//!
//! Confinement is structural: every operation carries the event's tenant, and backends keep
//! tenants' keyspaces apart, so nothing a rule returns can reach another tenant.

use std::sync::Arc;

use serde::Serialize;

use super::ack::Ticket;
use crate::backend::{Op, OpKind};
use crate::model::RuleRef;
use crate::model::event::{Operation, WriteEvent};
use crate::model::target::{Strategy, TargetKind};
use crate::tenant::plan::PlannedTarget;
use crate::tenant::relations::Relationships;

/// The event an operation came from; shared by every target the event produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventOrigin {
    /// Sequence number the host gave the event.
    #[serde(rename = "event")]
    pub seq: u64,
    pub tenant: Arc<str>,
    pub resource: String,
    pub operation: Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Where the event came from, when its source said (context `tagbust.source`: the
    /// PostgreSQL source's commit LSN and xid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl EventOrigin {
    pub fn new(seq: u64, event: &WriteEvent) -> EventOrigin {
        EventOrigin {
            seq,
            tenant: Arc::from(event.tenant.as_str()),
            resource: event.resource.clone(),
            operation: event.operation,
            transaction: event.transaction.clone(),
            source: event.context.get(tagbust_types::SOURCE_KEY).cloned(),
        }
    }
}

/// The event an operation came from, shared by every target the event produced. A
/// submission's events are allocated together, one block per tenant group, not one
/// allocation each (allocating and freeing one per event, on two threads, was a measured
/// share of the pipeline's cost); this names one of them, and reads as it.
#[derive(Clone)]
pub struct EventRef {
    events: Arc<Vec<EventOrigin>>,
    index: usize,
}

impl EventRef {
    /// An event on its own.
    pub fn new(origin: EventOrigin) -> EventRef {
        EventRef {
            events: Arc::new(vec![origin]),
            index: 0,
        }
    }

    /// One reference per event of `events`, in order.
    pub(crate) fn block(events: Vec<EventOrigin>) -> impl Iterator<Item = EventRef> {
        let n = events.len();
        let events = Arc::new(events);
        (0..n).map(move |index| EventRef {
            events: events.clone(),
            index,
        })
    }
}

impl std::ops::Deref for EventRef {
    type Target = EventOrigin;
    fn deref(&self) -> &EventOrigin {
        &self.events[self.index]
    }
}

impl std::fmt::Debug for EventRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl PartialEq for EventRef {
    fn eq(&self, other: &EventRef) -> bool {
        **self == **other
    }
}

impl Eq for EventRef {}

impl Serialize for EventRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

/// Where an operation came from: event → rule → target → strategy (→ cascade).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    #[serde(flatten)]
    pub event: EventRef,
    /// `rule`, `rule_version` and `rule_sha256` in JSON.
    #[serde(flatten, serialize_with = "RuleRef::as_target_fields")]
    pub rule: RuleRef,
    /// Added by the failure policy because the rule failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    pub target_kind: TargetKind,
    pub target: String,
    pub strategy: Strategy,
    /// For a cascaded tag: the tag it was reached from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascaded_from: Option<String>,
}

impl Origin {
    /// The origin as readers see it. A routed operation's origin leaves `target` empty when
    /// the target is the operation's own value (every target but a cascade's), so the string
    /// is held once, by the operation; this fills it in.
    pub(crate) fn for_op(mut self, op: &Op) -> Origin {
        if self.target.is_empty() && self.cascaded_from.is_none() {
            self.target.clone_from(&op.value);
        }
        self
    }
}

/// One operation to apply, with its strategy and origin.
///
/// The origin is held inline, not behind an `Arc`: every target of every event has one, and
/// allocating (then freeing, on the other thread) one per target was a measured share of the
/// pipeline's cost. Only explain's readers get them behind `Arc`s.
#[derive(Debug, Clone)]
pub struct Routed {
    pub op: Op,
    pub strategy: Strategy,
    pub origin: Origin,
    /// The submission's acknowledgement, when it is tracked.
    pub(crate) ticket: Option<Arc<Ticket>>,
}

/// What routing one event's plan produced.
#[derive(Debug, Default)]
pub struct RouteOutput {
    pub routed: Vec<Routed>,
    /// Tags added by cascades.
    pub cascaded: u64,
    /// Cascades stopped by the fan-out cap.
    pub truncated: u64,
}

/// The backend operation a target becomes under a strategy.
pub fn op_kind(kind: TargetKind, strategy: Strategy) -> OpKind {
    match (kind, strategy) {
        // `lazy` is a tag version bump; a single key delete is already O(1) and a pattern
        // has no version to bump, so both apply at once.
        (TargetKind::Tag, Strategy::Lazy) => OpKind::TagVersion,
        (TargetKind::Tag, _) => OpKind::Tag,
        (TargetKind::Key, _) => OpKind::Key,
        (TargetKind::Pattern, _) => OpKind::Pattern,
    }
}

/// Routes one event's plan.
pub fn route(
    event: EventRef,
    plan: Vec<PlannedTarget>,
    relationships: &Relationships,
) -> RouteOutput {
    let mut routed = Vec::with_capacity(plan.len());
    let mut out = RouteOutput::default();
    out.add_into(event, plan, relationships, &mut |r| routed.push(r));
    out.routed = routed;
    out
}

impl RouteOutput {
    /// Routes one event's plan, handing each operation to `sink` as it is made (a submission
    /// sorts them straight into where they go), counting cascades here.
    pub(crate) fn add_into(
        &mut self,
        event: EventRef,
        plan: Vec<PlannedTarget>,
        relationships: &Relationships,
        sink: &mut impl FnMut(Routed),
    ) {
        for p in plan {
            let expansion = (p.cascade && p.kind == TargetKind::Tag && !relationships.is_empty())
                .then(|| relationships.expand(&p.value));
            let mut origin = Origin {
                event: event.clone(),
                rule: p.rule,
                fallback: p.fallback,
                target_kind: p.kind,
                // The operation's own value (see `Origin::for_op`): one copy of the string.
                target: String::new(),
                strategy: p.strategy,
                cascaded_from: None,
            };
            let Some(expansion) = expansion else {
                sink(Routed {
                    op: Op {
                        tenant: event.tenant.clone(),
                        kind: op_kind(p.kind, p.strategy),
                        value: p.value,
                    },
                    strategy: p.strategy,
                    origin,
                    ticket: None,
                });
                continue;
            };
            let op = Op {
                tenant: event.tenant.clone(),
                kind: op_kind(p.kind, p.strategy),
                value: p.value.clone(),
            };
            origin.target = p.value;
            sink(Routed {
                op,
                strategy: p.strategy,
                origin: origin.clone(),
                ticket: None,
            });
            self.truncated += u64::from(expansion.truncated);
            for c in expansion.tags {
                self.cascaded += 1;
                sink(Routed {
                    op: Op {
                        tenant: event.tenant.clone(),
                        kind: op_kind(TargetKind::Tag, p.strategy),
                        value: c.tag,
                    },
                    strategy: p.strategy,
                    origin: Origin {
                        cascaded_from: Some(c.via),
                        ..origin.clone()
                    },
                    ticket: None,
                });
            }
        }
    }
}

#[cfg(test)]
impl Routed {
    /// A tag operation of tenant `t` from event `seq`, for tests.
    pub(crate) fn for_test(value: &str, strategy: Strategy, seq: u64) -> Routed {
        Routed {
            op: Op {
                tenant: Arc::from("t"),
                kind: OpKind::Tag,
                value: value.to_owned(),
            },
            strategy,
            ticket: None,
            origin: Origin {
                event: EventRef::new(EventOrigin {
                    seq,
                    tenant: Arc::from("t"),
                    resource: "r".to_owned(),
                    operation: Operation::Update,
                    transaction: None,
                    source: None,
                }),
                rule: RuleRef::new("rule", "1", "0"),
                fallback: false,
                target_kind: TargetKind::Tag,
                target: value.to_owned(),
                strategy,
                cascaded_from: None,
            },
        }
    }
}
