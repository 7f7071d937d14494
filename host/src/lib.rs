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
//! Data flows one way: ingest → route → evaluate → plan → cascade and strategy → batch or hold
//! for the transaction → apply to a backend.
//!
//! - [`event`], [`ingest`]: write events and reading them from JSON with field-precise errors.
//! - [`limits`]: every sandbox limit and its default, in one place.
//! - [`engine`]: the process-wide wasmtime engine, epoch ticker, linker, compile cache.
//! - [`inspect`]: reading a component's SDK stamp and contract version before running it.
//! - [`rule`]: loading a rule (`InstancePre`, `describe`).
//! - [`batch`], [`evaluate`]: one fresh `Store` per batch; failures become [`RuleFailure`].
//! - [`ruleset`], [`plan`]: routing events to rules; merging, ordering and deduping targets.
//! - `bindings`, [`imports`]: the generated contract, and one file per imported interface.
//! - [`relations`]: relationships between tag kinds and cascade expansion.
//! - [`tenants`], [`manifest`]: each tenant's rules, relationships and limits, loaded from a
//!   TOML manifest per tenant; [`policy`]: what happens when a rule fails.
//! - `pipeline::confine`: keeping every target a rule returns inside its tenant.
//! - [`pipeline`]: the embedded host ([`Tagbust`]): submit, batch window, transactions,
//!   flush, shutdown, stats, explain; `pipeline::route` turns plans into backend operations.
//! - [`backend`]: the backend contract and [`MemoryBackend`], the embedded default.
//! - [`cache`]: the client services use to read and (guardedly) fill the cache.
//! - [`glob`]: key patterns with Redis `MATCH` semantics.
//! - [`error`]: the typed errors of the library boundary.

pub mod backend;
pub mod batch;
mod bindings;
pub mod cache;
mod convert;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod event;
pub mod glob;
pub mod imports;
pub mod ingest;
pub mod inspect;
pub mod limits;
pub mod manifest;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod relations;
pub mod rule;
pub mod ruleset;
mod store;
pub mod target;
pub mod tenants;

pub use backend::{
    Backend, BackendError, FillLease, FillOutcome, MemoryBackend, NewEntry, Op, OpKind, OpOutcome,
};
pub use batch::{Batch, MixedTenants};
pub use cache::{Cache, FillError, FillSpec};
pub use engine::Engine;
pub use error::{EngineError, EvalError, LoadError, RuleErrorKind, RuleFailure};
pub use evaluate::RuleRun;
pub use event::{FieldChange, Operation, WriteEvent};
pub use imports::{GuestLog, LogLevel, RuleConfig};
pub use ingest::{EventLimits, IngestError, parse_events};
pub use inspect::{Inspection, SdkStamp};
pub use limits::{EngineOptions, Limits};
pub use manifest::ManifestError;
pub use pipeline::explain::ExplainRecord;
pub use pipeline::stats::StatsSnapshot;
pub use pipeline::{HostError, HostOptions, Rejection, Reloaded, SubmitReport, Tagbust};
pub use plan::{Outcome, PlannedTarget, RuleOutcome};
pub use policy::{FailurePolicy, FallbackScope};
pub use relations::Relationships;
pub use rule::{Rule, RuleInfo};
pub use ruleset::{BoundRule, Evaluation, EventReport, RuleSet};
pub use target::{Strategy, Target, TargetKind};
pub use tenants::{TenantSetup, Tenants};

/// Contract versions (`major.minor`) this host accepts.
pub use bindings::SUPPORTED_CONTRACTS;
