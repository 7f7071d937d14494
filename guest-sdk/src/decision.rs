//! What a rule returns for one event: targets to invalidate, deduplicated as they are added.

use std::collections::HashMap;

pub use tagbust_types::{Strategy, TargetKind};

/// One thing to invalidate. A target without a strategy gets the rule's default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    pub value: String,
    pub strategy: Option<Strategy>,
    pub cascade: bool,
}

impl Target {
    fn new(kind: TargetKind, value: impl Into<String>) -> Self {
        Target {
            kind,
            value: value.into(),
            strategy: None,
            cascade: false,
        }
    }

    /// A cache tag.
    pub fn tag(value: impl Into<String>) -> Self {
        Target::new(TargetKind::Tag, value)
    }

    /// An exact cache key.
    pub fn key(value: impl Into<String>) -> Self {
        Target::new(TargetKind::Key, value)
    }

    /// A glob over cache keys (`*`, `?`, `[abc]`).
    pub fn pattern(value: impl Into<String>) -> Self {
        Target::new(TargetKind::Pattern, value)
    }

    /// Sets the strategy explicitly.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Also invalidates what depends on this target through the tenant's relationships.
    pub fn cascade(mut self) -> Self {
        self.cascade = true;
        self
    }
}

/// The targets a rule returns for one event, in the order first added, without duplicates.
///
/// Adding a target that is already present merges the two: the sooner strategy wins and the
/// cascade flags are or-ed, so a rule never has to track what it already emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    targets: Vec<Target>,
    /// Built only once a decision grows past `INDEX_FROM`; small decisions scan linearly.
    index: Option<HashMap<(TargetKind, String), usize>>,
}

/// Below this many targets a linear scan beats hashing.
const INDEX_FROM: usize = 16;

impl Decision {
    /// An empty decision: nothing to invalidate.
    pub fn new() -> Self {
        Decision::default()
    }

    /// Adds a target, merging it with an equal one already present.
    pub fn add(&mut self, target: Target) -> &mut Self {
        match self.position(target.kind, &target.value) {
            Some(i) => {
                let existing = &mut self.targets[i];
                existing.cascade |= target.cascade;
                existing.strategy = match (existing.strategy, target.strategy) {
                    (Some(a), Some(b)) if b.urgency() < a.urgency() => Some(b),
                    (Some(a), _) => Some(a),
                    (None, b) => b,
                };
            }
            None => {
                if let Some(index) = &mut self.index {
                    index.insert((target.kind, target.value.clone()), self.targets.len());
                }
                self.targets.push(target);
                if self.index.is_none() && self.targets.len() > INDEX_FROM {
                    self.build_index();
                }
            }
        }
        self
    }

    /// Adds a target and returns the decision, for chaining.
    pub fn with(mut self, target: Target) -> Self {
        self.add(target);
        self
    }

    /// Adds a tag with the rule's default strategy.
    pub fn tag(self, value: impl Into<String>) -> Self {
        self.with(Target::tag(value))
    }

    /// Adds a key with the rule's default strategy.
    pub fn key(self, value: impl Into<String>) -> Self {
        self.with(Target::key(value))
    }

    /// Adds a glob pattern with the rule's default strategy.
    pub fn pattern(self, value: impl Into<String>) -> Self {
        self.with(Target::pattern(value))
    }

    /// The targets, in the order first added.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Takes the targets out.
    pub fn into_targets(self) -> Vec<Target> {
        self.targets
    }

    /// Number of distinct targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there is nothing to invalidate.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    fn position(&self, kind: TargetKind, value: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(&(kind, value.to_owned())).copied(),
            None => self
                .targets
                .iter()
                .position(|t| t.kind == kind && t.value == value),
        }
    }

    fn build_index(&mut self) {
        let index = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.kind, t.value.clone()), i))
            .collect();
        self.index = Some(index);
    }
}

impl Extend<Target> for Decision {
    fn extend<I: IntoIterator<Item = Target>>(&mut self, iter: I) {
        for target in iter {
            self.add(target);
        }
    }
}

impl FromIterator<Target> for Decision {
    fn from_iter<I: IntoIterator<Item = Target>>(iter: I) -> Self {
        let mut decision = Decision::new();
        decision.extend(iter);
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_merge_to_the_sooner_strategy_and_or_cascade() {
        let d = Decision::new()
            .with(Target::tag("a").strategy(Strategy::Batched))
            .key("k")
            .with(Target::tag("a").strategy(Strategy::Immediate).cascade())
            .tag("a");
        assert_eq!(d.len(), 2);
        assert_eq!(d.targets()[0].strategy, Some(Strategy::Immediate));
        assert!(d.targets()[0].cascade);
        assert_eq!(d.targets()[1].kind, TargetKind::Key);
    }

    #[test]
    fn same_value_of_another_kind_is_distinct() {
        let d = Decision::new().tag("x").key("x").pattern("x");
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn large_decisions_dedupe_through_the_index() {
        let mut d = Decision::new();
        for round in 0..3 {
            for i in 0..100 {
                d.add(Target::tag(format!("t{i}")));
            }
            assert_eq!(d.len(), 100, "round {round}");
        }
        assert_eq!(d.targets()[57].value, "t57");
        assert!(d.index.is_some());
    }
}
