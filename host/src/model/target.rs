//! What rules return: targets to invalidate and how.

use serde::{Deserialize, Serialize};

pub use tagbust_types::{Strategy, TargetKind};

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
