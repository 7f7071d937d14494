//! How a rule introduces itself (its `describe()`).

use crate::{Operation, Strategy};

/// How a rule introduces itself. The SDK builds it; the host reads it back from
/// `describe()` and validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RuleInfo {
    pub name: String,
    pub version: String,
    /// Higher applies first; ties are broken by name.
    pub priority: i32,
    /// Resources the rule triggers on; empty (or `*`) means every resource.
    pub resources: Vec<String>,
    /// Operations the rule triggers on; empty means every operation.
    pub operations: Vec<Operation>,
    /// The strategy of targets that name none.
    pub default_strategy: Strategy,
    pub description: String,
}

impl RuleInfo {
    /// A rule that triggers on everything, priority 0, immediate by default.
    pub fn new(name: &str, version: &str) -> Self {
        RuleInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            priority: 0,
            resources: Vec::new(),
            operations: Vec::new(),
            default_strategy: Strategy::Immediate,
            description: String::new(),
        }
    }

    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn resources<I: IntoIterator<Item = S>, S: Into<String>>(mut self, resources: I) -> Self {
        self.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    pub fn operations<I: IntoIterator<Item = Operation>>(mut self, operations: I) -> Self {
        self.operations = operations.into_iter().collect();
        self
    }

    pub fn default_strategy(mut self, strategy: Strategy) -> Self {
        self.default_strategy = strategy;
        self
    }

    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// True when a write of `operation` to `resource` should reach this rule.
    pub fn triggers_on(&self, resource: &str, operation: Operation) -> bool {
        let resource_ok =
            self.resources.is_empty() || self.resources.iter().any(|r| r == "*" || r == resource);
        let operation_ok = self.operations.is_empty() || self.operations.contains(&operation);
        resource_ok && operation_ok
    }
}
