//! What feeds a running host besides direct calls. Every source acknowledges upstream (a
//! stream entry, a replication position) only after every invalidation it produced has been
//! applied ([`crate::Tagbust::submit_tracked`]): at-least-once, end to end.
//!
//! - [`streams`]: Redis Streams through a consumer group, the daemon's scale-out intake.
//! - [`postgres`]: PostgreSQL logical replication (`pgoutput`): every committed row change.

pub mod postgres;
pub mod streams;

pub use streams::{DeadLetterReason, SourceError, StreamConfig, StreamStats, StreamStatsSnapshot};
