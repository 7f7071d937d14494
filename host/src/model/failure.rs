//! Why a rule produced no decision for an event: the typed failure every layer reports.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a rule's own (WIT `rule-error`) failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleErrorKind {
    InvalidEvent,
    Config,
    Other,
}

/// Why one rule produced no decision for an event. Cloned onto every event of a batch when the
/// whole call failed (a trap, a timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum RuleFailure {
    /// The rule returned its own error for this event.
    #[error("rule error ({kind:?}): {message}")]
    Rule {
        kind: RuleErrorKind,
        message: String,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("deadline of {deadline_ms} ms exceeded")]
    Timeout { deadline_ms: u64 },
    /// The rule tried to grow its memory past the cap.
    #[error("memory limit of {limit_bytes} bytes exceeded")]
    MemoryExceeded { limit_bytes: u64 },
    /// The rule recursed past the WebAssembly stack limit.
    #[error("stack overflow")]
    StackOverflow,
    /// The rule touched memory outside its bounds. For Rust guests this is almost always a
    /// stack overflow from deep recursion: their shadow stack lives in linear memory.
    #[error(
        "out-of-bounds memory access (for Rust rules: usually a stack overflow from deep recursion)"
    )]
    OutOfBounds,
    /// The rule used up its fuel budget.
    #[error("fuel budget of {fuel} exhausted")]
    FuelExhausted { fuel: u64 },
    /// The rule panicked (Rust) or hit `unreachable`.
    #[error("rule panicked: {message}")]
    Panic { message: String },
    /// Any other trap, including malformed values crossing the boundary.
    #[error("rule trapped: {message}")]
    Trap { message: String },
    /// One decision broke a size cap.
    #[error("output too large: {what} {actual} exceeds the limit of {limit}")]
    OutputTooLarge {
        what: &'static str,
        actual: u64,
        limit: u64,
    },
    /// The rule tried to hand the host more bytes in one call than allowed; refused while
    /// lifting, before the host allocated them.
    #[error("rule tried to hand the host more than {limit_bytes} bytes in one call")]
    TransferTooLarge { limit_bytes: u64 },
    /// The rule's answer does not fit the contract (wrong count, empty target).
    #[error("invalid output: {detail}")]
    InvalidOutput { detail: String },
    /// A fresh instance could not be created.
    #[error("cannot instantiate: {message}")]
    Instantiate { message: String },
}

impl RuleFailure {
    /// Every value [`RuleFailure::code`] can return.
    pub const CODES: [&'static str; 12] = [
        "rule_error",
        "timeout",
        "memory_exceeded",
        "stack_overflow",
        "out_of_bounds",
        "fuel_exhausted",
        "panic",
        "trap",
        "output_too_large",
        "transfer_too_large",
        "invalid_output",
        "instantiate",
    ];

    /// A short stable name for stats and logs (`timeout`, `panic`, …).
    pub fn code(&self) -> &'static str {
        match self {
            RuleFailure::Rule { .. } => "rule_error",
            RuleFailure::Timeout { .. } => "timeout",
            RuleFailure::MemoryExceeded { .. } => "memory_exceeded",
            RuleFailure::StackOverflow => "stack_overflow",
            RuleFailure::OutOfBounds => "out_of_bounds",
            RuleFailure::FuelExhausted { .. } => "fuel_exhausted",
            RuleFailure::Panic { .. } => "panic",
            RuleFailure::Trap { .. } => "trap",
            RuleFailure::OutputTooLarge { .. } => "output_too_large",
            RuleFailure::TransferTooLarge { .. } => "transfer_too_large",
            RuleFailure::InvalidOutput { .. } => "invalid_output",
            RuleFailure::Instantiate { .. } => "instantiate",
        }
    }
}

/// A rule's failure with the tenant and rule it belongs to: what a caller logs or returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EvalError {
    pub tenant: String,
    pub rule: String,
    pub failure: RuleFailure,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule `{}` (tenant `{}`): {}",
            self.rule, self.tenant, self.failure
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed() {
        let text = |s: &str| s.to_owned();
        let all = [
            RuleFailure::Rule {
                kind: RuleErrorKind::Config,
                message: text("m"),
            },
            RuleFailure::Timeout { deadline_ms: 1 },
            RuleFailure::MemoryExceeded { limit_bytes: 1 },
            RuleFailure::StackOverflow,
            RuleFailure::OutOfBounds,
            RuleFailure::FuelExhausted { fuel: 1 },
            RuleFailure::Panic { message: text("m") },
            RuleFailure::Trap { message: text("m") },
            RuleFailure::OutputTooLarge {
                what: "targets",
                actual: 2,
                limit: 1,
            },
            RuleFailure::TransferTooLarge { limit_bytes: 1 },
            RuleFailure::InvalidOutput { detail: text("d") },
            RuleFailure::Instantiate { message: text("m") },
        ];
        let codes: Vec<&str> = all.iter().map(RuleFailure::code).collect();
        assert_eq!(codes, RuleFailure::CODES);
    }
}
