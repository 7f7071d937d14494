//! What each tenant runs: its rules, how their answers merge, what happens when one fails,
//! how tags relate, and the manifests a platform loads them from.
//!
//! - [`ruleset`]: a tenant's rules; routing events to the rules that trigger on them.
//! - [`plan`]: merging, ordering (priority, then name) and deduping what rules return.
//! - [`policy`]: what happens when a rule fails.
//! - [`relations`]: relationships between tag kinds and cascade expansion.
//! - [`tenants`]: every tenant's setup, rate limits, what is in force.
//! - [`manifest`]: one TOML manifest per tenant, every error naming file and field.

pub mod manifest;
pub mod plan;
pub mod policy;
pub mod relations;
pub mod ruleset;
pub mod tenants;

pub use manifest::ManifestError;
pub use plan::{Outcome, PlannedTarget, RuleOutcome};
pub use policy::{FailurePolicy, FallbackScope};
pub use relations::Relationships;
pub use ruleset::{BoundRule, Evaluation, EventReport, RuleSet};
pub use tenants::{TenantSetup, Tenants};
