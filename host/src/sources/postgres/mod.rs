//! PostgreSQL commit-log intake: logical replication with the built-in `pgoutput` plugin,
//! every committed row change of the published tables turned into write events, after
//! commit, in commit order, whatever code path wrote it.
//!
//! - **Transport**: the `pgwire-replication` crate (connection, authentication, the
//!   replication stream, standby status updates; it decodes Begin, Commit and logical
//!   Message). The other pgoutput messages are decoded here ([`decode`]), protocol version 1:
//!   no streaming of transactions in progress, so the server sends a transaction only once
//!   it has committed (a large one is spilled to disk on the server meanwhile), and nothing
//!   uncommitted is ever applied.
//! - **Events**: rows of one table, operation and tenant in one transaction are one event,
//!   bulk (`bulk_delete`, …) when they are more than one row, split only at the host's id cap
//!   ([`assemble`]). `TRUNCATE` is a `bulk_delete` naming no ids, with the context marker
//!   `tagbust.scope = resource` (see `tagbust_types::is_whole_resource`). A row with no id
//!   value becomes the same whole-resource event. The commit's LSN and xid travel as context
//!   `tagbust.source` (shown by explain); `tagbust` logical messages of the transaction
//!   (`pg_logical_emit_message(true, 'tagbust', json)`) are the events' context.
//! - **Acknowledgement**: each commit is one tracked submission
//!   ([`crate::Tagbust::submit_tracked`]); the slot's confirmed position advances to the end
//!   of the last commit before which everything is applied ([`acker`]). With nothing in
//!   flight, keepalives are confirmed so an idle database keeps no WAL for the slot. A crash
//!   redelivers from the confirmed position: at-least-once.
//! - **Connection**: lost connections are retried with backoff and resume from the confirmed
//!   position; setup problems (`wal_level`, a missing publication or slot, a missing
//!   privilege) stop the source with an error naming them ([`setup`]).
//!
//! Files: `config`, `decode`, `mapping` (relations to tables), `assemble` (a transaction's
//! events), `acker` (the low-water mark), `setup` (checks and creation), `session` (the read
//! loop), `submit` (a commit into the host), `stats`.

mod acker;
mod assemble;
mod config;
mod decode;
mod mapping;
mod session;
mod setup;
mod stats;
mod submit;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::pipeline::Tagbust;

pub use assemble::SOURCE_KEY;
pub use config::{PgConfig, PgError, TableConfig, TenantFrom};
pub use decode::{Change, Column, DecodeError, Relation, Value, decode};
pub use stats::{PgStats, PgStatsSnapshot};

/// Streams `config`'s slot into `host` until `shutdown` is cancelled or the host shuts down,
/// then waits up to `config.drain_timeout` for submitted transactions to be applied and
/// confirms them.
///
/// Returns `Err` only for what waiting cannot fix: a setting, the server's `wal_level`, a
/// missing publication or slot (without `create`), a missing privilege. A server that is
/// down or a dropped connection is waited out.
///
/// On shutdown, cancel `shutdown` first, then shut the host down (which applies what is
/// pending and so resolves the transactions waiting on it), then await this.
pub async fn run<B: Backend>(
    host: Tagbust<B>,
    config: PgConfig,
    shutdown: CancellationToken,
    stats: Arc<PgStats>,
) -> Result<(), PgError> {
    config.check()?;
    let source = session::Source {
        limits: host.options().event_limits.clone(),
        host,
        cfg: Arc::new(config),
        stats,
        shutdown,
        acks: acker::Acks::new(0),
        max_end: 0,
    };
    source.run().await
}
