//! Running untrusted rule components: wasmtime and everything that touches it.
//!
//! Loading reads the bytes first ([`header`]), compiles once per sha256 ([`engine`]), links
//! once ([`rule`]: an `InstancePre` per rule) and calls `describe()`; evaluation ([`call`])
//! gives every batch a fresh `Store` ([`store`]) under [`limits`], converts values across the
//! boundary ([`wit`]) and turns every fault into a typed failure ([`classify`]).
//!
//! - [`limits`]: every sandbox limit and cap, with its default and reason.
//! - [`engine`]: the process-wide engine, epoch ticker, linker, compile cache.
//! - [`artifacts`]: precompiled components on disk, only ever loaded when this host wrote them.
//! - `bindings`: the generated contracts, one `bindgen!` per version (0.1, 0.2).
//! - `versions`: a linked rule of either version; [`wit`] adapts 0.1's typed values,
//!   [`v0_2`] contract 0.2's packed batch encoding.
//! - [`imports`]: the host side of each imported interface, one file each.
//! - [`store`]: a fresh `Store` per call, with WASI denying everything; `wasi`: WASI linked
//!   with every waiting function bounded by the call's deadline.
//! - [`header`]: magic, layer, SDK stamp, exported contract version (bytes only).
//! - [`rule`]: loading a rule; [`inspect`]: the report `tagbust inspect` prints.
//! - [`batch`]: events of one tenant converted once to their WIT form.
//! - [`call`]: evaluating a batch; [`blocking`]: where a call may block; [`classify`]: faults
//!   to [`crate::model::RuleFailure`].
//! - [`error`]: why loading or building the engine failed.

pub mod artifacts;
pub mod batch;
mod bindings;
pub(crate) mod blocking;
pub mod call;
mod classify;
pub mod engine;
pub mod error;
pub mod header;
pub mod imports;
pub mod inspect;
pub mod limits;
pub mod rule;
mod store;
pub mod v0_2;
mod versions;
mod wasi;
pub(crate) mod wit;

pub use artifacts::ArtifactCounts;
pub use batch::{Batch, MixedTenants};
pub use bindings::SUPPORTED_CONTRACTS;
pub use call::RuleRun;
pub use engine::Engine;
pub use error::{EngineError, LoadError};
pub use header::SdkStamp;
pub use imports::{GuestLog, LogLevel, RuleConfig};
pub use inspect::Inspection;
pub use limits::{EngineOptions, Limits};
pub use rule::Rule;
