//! # tagbust: cache invalidation as sandboxed rules
//!
//! Services write to their database; tagbust decides which cached data must die. The decision
//! is made by **rules**: WebAssembly components (built with the `tagbust-guest` SDK against the
//! `tagbust:rules` WIT contract) that map each write event to cache tags, keys and key patterns.
//! This crate is the host: it loads rules, runs them under hard limits, and merges what they say
//! into an ordered plan.
//!
//! ```no_run
//! use tagbust::{BoundRule, Engine, EngineOptions, RuleSet, WriteEvent, Operation};
//!
//! let engine = Engine::new(EngineOptions::default())?;
//! let rule = engine.load_file("published_feeds.wasm".as_ref())?;
//! let rules = RuleSet::new(vec![BoundRule::new(rule)]);
//! let mut event = WriteEvent::new("acme", "posts", Operation::Update);
//! event.ids.push("7".into());
//! for planned in &rules.evaluate(&[event]).events[0].plan {
//!     println!("{} {} ({})", planned.kind, planned.value, planned.rule);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Layout
//!
//! Data flows one way: ingest → route → evaluate → plan.
//!
//! - [`event`], [`ingest`]: write events and reading them from JSON with field-precise errors.
//! - [`limits`]: every sandbox limit and its default, in one place.
//! - [`engine`]: the process-wide wasmtime engine, epoch ticker, linker, compile cache.
//! - [`inspect`]: reading a component's SDK stamp and contract version before running it.
//! - [`rule`]: loading a rule (`InstancePre`, `describe`).
//! - [`batch`], [`evaluate`]: one fresh `Store` per batch; failures become [`RuleFailure`].
//! - [`ruleset`], [`plan`]: routing events to rules; merging, ordering and deduping targets.
//! - `bindings`, [`imports`]: the generated contract, and one file per imported interface.
//! - [`error`]: the typed errors of the library boundary.

pub mod batch;
mod bindings;
mod convert;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod event;
pub mod imports;
pub mod ingest;
pub mod inspect;
pub mod limits;
pub mod plan;
pub mod rule;
pub mod ruleset;
mod store;
pub mod target;

pub use batch::{Batch, MixedTenants};
pub use engine::Engine;
pub use error::{EngineError, EvalError, LoadError, RuleErrorKind, RuleFailure};
pub use evaluate::RuleRun;
pub use event::{FieldChange, Operation, WriteEvent};
pub use imports::{GuestLog, LogLevel, RuleConfig};
pub use ingest::{EventLimits, IngestError, parse_events};
pub use inspect::SdkStamp;
pub use limits::{EngineOptions, Limits};
pub use plan::{Outcome, PlannedTarget, RuleOutcome};
pub use rule::{Rule, RuleInfo};
pub use ruleset::{BoundRule, Evaluation, EventReport, RuleSet};
pub use target::{Strategy, Target, TargetKind};

/// Contract versions (`major.minor`) this host accepts.
pub use bindings::SUPPORTED_CONTRACTS;
