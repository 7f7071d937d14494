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
//! Data flows one way: ingest → route to rules → evaluate → plan → operations (cascade,
//! strategy) → batch or hold for the transaction → apply to a backend. Modules depend one way,
//! down this list; nothing imports a layer above it.
//!
//! - [`sources`]: what feeds a running host besides direct calls: Redis Streams (the
//!   daemon's scale-out intake), acknowledging upstream only after apply.
//! - [`pipeline`]: the embedded host ([`Tagbust`]): admission, submit, batch window,
//!   transactions, confinement, apply, flush, shutdown, stats, explain; and [`Cache`], the
//!   client services read and (guardedly) fill through.
//! - [`backend`]: the backend contract, [`MemoryBackend`] (the embedded default) and
//!   [`backend::RedisBackend`] (a server or a Cluster). Depends on [`model`] only.
//! - [`tenant`]: rule sets, planning, failure policy, relationships, tenants, manifests.
//! - [`sandbox`]: wasmtime: engine, limits, bindings, stores, imports, loading, calling.
//! - [`model`]: the plain types every layer shares (events, targets, rule info, failures).
//!
//! The `tagbust` command line is a separate binary target behind the `cli` feature, so the
//! library does not pull in clap, anyhow or tracing-subscriber.

pub mod backend;
pub mod model;
pub mod pipeline;
pub mod sandbox;
pub mod sources;
pub mod tenant;

pub use backend::{
    Backend, BackendError, FillLease, FillOutcome, MemoryBackend, NewEntry, Op, OpKind, OpOutcome,
};
pub use model::{
    EvalError, EventLimits, FieldChange, IngestError, Operation, RuleErrorKind, RuleFailure,
    RuleInfo, RuleRef, Strategy, Target, TargetKind, WriteEvent, parse_events,
};
pub use pipeline::cache::{Cache, FillError, FillSpec};
pub use pipeline::explain::ExplainRecord;
pub use pipeline::stats::StatsSnapshot;
pub use pipeline::{HostError, HostOptions, Rejection, Reloaded, SubmitReport, Tagbust};
pub use sandbox::{
    ArtifactCounts, Batch, Engine, EngineError, EngineOptions, GuestLog, Inspection, Limits,
    LoadError, LogLevel, MixedTenants, Rule, RuleConfig, RuleRun, SUPPORTED_CONTRACTS, SdkStamp,
};
pub use tenant::{
    BoundRule, Evaluation, EventReport, FailurePolicy, FallbackScope, ManifestError, Outcome,
    PlannedTarget, Relationships, RuleOutcome, RuleSet, TenantSetup, Tenants,
};
