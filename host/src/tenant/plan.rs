//! The first planner: merge every matching rule's decision for an event, order by priority
//! (higher first, ties by rule name), and drop duplicates.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::RuleRef;
use crate::model::failure::RuleFailure;
use crate::model::target::{Strategy, Target, TargetKind};

/// What one rule said about one event.
#[derive(Debug, Clone, Serialize)]
pub struct RuleOutcome {
    /// Which build of which rule said this (`rule`, `version`, `sha256` in JSON).
    #[serde(flatten, serialize_with = "RuleRef::as_outcome_fields")]
    pub rule: RuleRef,
    pub priority: i32,
    #[serde(flatten)]
    pub result: Outcome,
}

/// A rule's answer for one event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok {
        targets: Vec<Target>,
    },
    Error {
        message: String,
        failure: RuleFailure,
    },
}

impl Outcome {
    pub fn from_result(result: Result<Vec<Target>, RuleFailure>) -> Outcome {
        match result {
            Ok(targets) => Outcome::Ok { targets },
            Err(failure) => Outcome::Error {
                message: failure.to_string(),
                failure,
            },
        }
    }
}

/// One invalidation, in apply order, with the rule that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedTarget {
    pub kind: TargetKind,
    pub value: String,
    pub strategy: Strategy,
    pub cascade: bool,
    pub priority: i32,
    /// The rule credited with it (`rule`, `rule_version`, `rule_sha256` in JSON).
    #[serde(flatten, serialize_with = "RuleRef::as_target_fields")]
    pub rule: RuleRef,
    /// Added by the host's failure policy because the rule failed, not asked for by it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
}

/// Merges `outcomes`, which must already be in rule order (priority descending, then name).
///
/// A target asked for by several rules appears once, at the position of the highest-priority
/// rule that asked for it and credited to that rule; it takes the soonest strategy any rule
/// asked for, and cascades if any rule asked it to.
pub fn plan(outcomes: &[RuleOutcome]) -> Vec<PlannedTarget> {
    merge(outcomes.iter().map(|o| (o, targets_of(o).iter().cloned())))
}

/// Like [`plan`], but moves each target out of `outcomes` into the plan instead of copying
/// its string: their `Ok` lists are left empty. For the pipeline, which reads outcomes only
/// for their failures.
pub(crate) fn plan_taking(outcomes: &mut [RuleOutcome]) -> Vec<PlannedTarget> {
    merge(outcomes.iter_mut().map(|o| {
        let targets = match &mut o.result {
            Outcome::Ok { targets } => std::mem::take(targets),
            Outcome::Error { .. } => Vec::new(),
        };
        let o: &RuleOutcome = o;
        (o, targets)
    }))
}

fn targets_of(outcome: &RuleOutcome) -> &[Target] {
    match &outcome.result {
        Outcome::Ok { targets } => targets,
        Outcome::Error { .. } => &[],
    }
}

fn merge<'a, T: IntoIterator<Item = Target>>(
    outcomes: impl Iterator<Item = (&'a RuleOutcome, T)>,
) -> Vec<PlannedTarget> {
    let mut planned: Vec<PlannedTarget> = Vec::new();
    // Plans are usually a handful of targets: scan linearly, index only past a few dozen.
    let mut seen: Option<HashMap<(TargetKind, String), usize>> = None;
    for (outcome, targets) in outcomes {
        for target in targets {
            let found = match &seen {
                Some(index) => index.get(&(target.kind, target.value.clone())).copied(),
                None => planned
                    .iter()
                    .position(|p| p.kind == target.kind && p.value == target.value),
            };
            match found {
                Some(i) => {
                    let p = &mut planned[i];
                    if target.strategy.urgency() < p.strategy.urgency() {
                        p.strategy = target.strategy;
                    }
                    p.cascade |= target.cascade;
                }
                None => {
                    if let Some(index) = &mut seen {
                        index.insert((target.kind, target.value.clone()), planned.len());
                    }
                    planned.push(PlannedTarget {
                        kind: target.kind,
                        value: target.value,
                        strategy: target.strategy,
                        cascade: target.cascade,
                        priority: outcome.priority,
                        rule: outcome.rule.clone(),
                        fallback: false,
                    });
                    if seen.is_none() && planned.len() > 32 {
                        seen = Some(
                            planned
                                .iter()
                                .enumerate()
                                .map(|(i, p)| ((p.kind, p.value.clone()), i))
                                .collect(),
                        );
                    }
                }
            }
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: TargetKind, v: &str, s: Strategy) -> Target {
        Target {
            kind,
            value: v.into(),
            strategy: s,
            cascade: false,
        }
    }

    fn ok(rule: &str, priority: i32, targets: Vec<Target>) -> RuleOutcome {
        RuleOutcome {
            rule: RuleRef::new(rule, "1", "00"),
            priority,
            result: Outcome::Ok { targets },
        }
    }

    #[test]
    fn merges_in_order_and_dedupes_across_rules() {
        let outcomes = vec![
            ok("high", 10, vec![t(TargetKind::Tag, "a", Strategy::Batched)]),
            RuleOutcome {
                rule: RuleRef::new("broken", "1", "00"),
                priority: 5,
                result: Outcome::from_result(Err(RuleFailure::StackOverflow)),
            },
            ok(
                "low",
                1,
                vec![
                    t(TargetKind::Key, "k", Strategy::Immediate),
                    Target {
                        cascade: true,
                        ..t(TargetKind::Tag, "a", Strategy::Immediate)
                    },
                ],
            ),
        ];
        let p = plan(&outcomes);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].value.as_str(), p[0].rule.name()), ("a", "high"));
        assert_eq!(p[0].strategy, Strategy::Immediate, "soonest strategy wins");
        assert!(p[0].cascade, "cascade is or-ed");
        assert_eq!((p[1].value.as_str(), p[1].rule.name()), ("k", "low"));
    }

    #[test]
    fn taking_plans_the_same_and_empties_the_outcomes() {
        let mut outcomes = vec![
            ok("high", 10, vec![t(TargetKind::Tag, "a", Strategy::Batched)]),
            ok(
                "low",
                1,
                vec![
                    t(TargetKind::Key, "k", Strategy::Immediate),
                    t(TargetKind::Tag, "a", Strategy::Immediate),
                ],
            ),
        ];
        let copied = plan(&outcomes);
        assert_eq!(plan_taking(&mut outcomes), copied);
        assert!(outcomes.iter().all(|o| targets_of(o).is_empty()));
    }
}
