//! The ground floor: plain types every layer shares, and reading them from JSON. Nothing here
//! knows about wasm, tenants, the pipeline or a backend.
//!
//! - [`event`]: write events ([`WriteEvent`], [`Operation`], [`FieldChange`]).
//! - [`ingest`]: decoding events from JSON with field-precise errors, and their size caps.
//! - [`target`]: what a rule asks to invalidate ([`Target`], [`TargetKind`], [`Strategy`]).
//! - [`rule_info`]: how a rule introduces itself ([`RuleInfo`]).
//! - [`failure`]: why a rule produced no decision ([`RuleFailure`]).
//! - [`glob`]: key patterns with Redis `MATCH` semantics.
//! - [`text`]: cutting text at a character boundary.

pub mod event;
pub mod failure;
pub mod glob;
pub mod ingest;
pub mod rule_info;
pub mod target;
pub mod text;

pub use event::{FieldChange, Operation, WriteEvent};
pub use failure::{EvalError, RuleErrorKind, RuleFailure};
pub use ingest::{EventLimits, IngestError, parse_events};
pub use rule_info::{RuleInfo, RuleRef};
pub use target::{Strategy, Target, TargetKind};
