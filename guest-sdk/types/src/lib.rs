//! The boundary types the rule SDK (`tagbust-guest`) and the host (`tagbust`) share, defined
//! once so they cannot drift apart: what a write did ([`Operation`], [`FieldChange`]), what a
//! target names ([`TargetKind`]), when it is applied ([`Strategy`], with the one "sooner wins"
//! order), and how a rule introduces itself ([`RuleInfo`]);
//! [`packed`] is contract 0.2's batch encoding, written and read by both.
//!
//! Plain Rust with no dependencies; the `serde` feature adds the JSON shapes the host reads
//! and writes.

mod info;
mod operation;
pub mod packed;
mod scope;
mod strategy;

pub use info::RuleInfo;
pub use operation::{FieldChange, Operation};
pub use scope::{SCOPE_KEY, SCOPE_WHOLE_RESOURCE, SOURCE_KEY, is_whole_resource};
pub use strategy::{Strategy, TargetKind};
