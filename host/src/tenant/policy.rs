//! What the host does when a rule fails on an event: it trapped, timed out, ran out of memory
//! or fuel, returned an error, returned invalid output, or tried to reach outside its tenant.
//!
//! A failed rule said nothing trustworthy about the event, so the safe answer is to invalidate
//! more, not less: the default policy over-invalidates.

use serde::{Deserialize, Serialize};

/// A rule's failure policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Apply a conservative superset of what the rule could have asked for (see
    /// [`FallbackScope`]), immediately. The default: a broken rule over-invalidates instead of
    /// leaving stale data.
    #[default]
    Fallback,
    /// Log at WARN and count; the event's other rules still apply.
    Skip,
    /// Reject the event: none of its invalidations are applied and the caller gets
    /// `HostError::Rejected` naming the event, the rule and the failure.
    Fail,
}

/// What `fallback` invalidates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackScope {
    /// The resource-level tag: the event's resource name (`posts` for a write to `posts`).
    /// The default; it relies on the convention that every cached entry derived from a
    /// resource carries that resource's name as a tag.
    #[default]
    Resource,
    /// Every entry of the tenant: always a superset, whatever the tagging convention, at the
    /// price of a cold cache (and, on Redis, a cost-guarded scan).
    Tenant,
}
