//! What a target names and when it is applied.

use std::fmt;

/// What a target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum TargetKind {
    /// Every cache entry labelled with this tag.
    Tag,
    /// One cache entry, by key.
    Key,
    /// Every cache entry whose key matches this glob (`*`, `?`, `[abc]`).
    Pattern,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Tag => "tag",
            TargetKind::Key => "key",
            TargetKind::Pattern => "pattern",
        }
    }
}

/// When and how an invalidation is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Strategy {
    /// Applied as soon as the event is processed.
    Immediate,
    /// Coalesced inside the host's batching window.
    Batched,
    /// A tag version bump: stale entries read as misses.
    Lazy,
}

impl Strategy {
    /// How soon the strategy makes the data disappear: lower is sooner. When one target is
    /// asked for twice (by one rule, by two rules, or in one batch window), the sooner
    /// strategy wins, in the SDK and in the host alike.
    pub fn urgency(self) -> u8 {
        match self {
            Strategy::Immediate => 0,
            Strategy::Lazy => 1,
            Strategy::Batched => 2,
        }
    }

    /// The sooner of two strategies.
    #[inline]
    pub fn sooner(self, other: Strategy) -> Strategy {
        if other.urgency() < self.urgency() {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Immediate => "immediate",
            Strategy::Batched => "batched",
            Strategy::Lazy => "lazy",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Strategy::{self, Batched, Immediate, Lazy};

    #[test]
    fn sooner_wins_immediate_then_lazy_then_batched() {
        let all = [Immediate, Lazy, Batched];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                let expected = if i <= j { *a } else { *b };
                assert_eq!(a.sooner(*b), expected, "{a} vs {b}");
            }
        }
        assert_eq!(Strategy::Batched.sooner(Strategy::Lazy), Strategy::Lazy);
    }
}
