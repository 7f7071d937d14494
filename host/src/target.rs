//! What rules return: targets to invalidate and how.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Every cache entry labelled with the tag.
    Tag,
    /// One cache entry.
    Key,
    /// Every cache entry whose key matches the glob.
    Pattern,
}

/// When and how an invalidation is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Immediate,
    Batched,
    Lazy,
}

impl Strategy {
    /// Lower is sooner; when two rules ask for the same target the sooner strategy wins.
    pub fn urgency(self) -> u8 {
        match self {
            Strategy::Immediate => 0,
            Strategy::Lazy => 1,
            Strategy::Batched => 2,
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

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Tag => "tag",
            TargetKind::Key => "key",
            TargetKind::Pattern => "pattern",
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

/// One thing a rule asked to invalidate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub kind: TargetKind,
    pub value: String,
    pub strategy: Strategy,
    pub cascade: bool,
}

impl Target {
    fn new(kind: TargetKind, value: impl Into<String>) -> Target {
        Target {
            kind,
            value: value.into(),
            strategy: Strategy::Immediate,
            cascade: false,
        }
    }

    /// A tag, invalidated immediately without cascade (change with the builders below).
    pub fn tag(value: impl Into<String>) -> Target {
        Target::new(TargetKind::Tag, value)
    }

    pub fn key(value: impl Into<String>) -> Target {
        Target::new(TargetKind::Key, value)
    }

    pub fn pattern(value: impl Into<String>) -> Target {
        Target::new(TargetKind::Pattern, value)
    }

    pub fn with_strategy(mut self, strategy: Strategy) -> Target {
        self.strategy = strategy;
        self
    }

    pub fn cascading(mut self) -> Target {
        self.cascade = true;
        self
    }
}
