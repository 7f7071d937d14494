//! Redis Streams intake: write events as stream entries, read through a consumer group,
//! each entry acknowledged (`XACK`) only once every invalidation it produced is applied.
//!
//! An entry carries one of:
//!
//! - `event`: JSON, one event object or an array (the event format of `tagbust eval`,
//!   decoded with the host's [`crate::EventLimits`]); optionally with `commit` =
//!   `tenant/transaction`, committed right after the events are submitted (a whole
//!   transaction in one entry: the partitioning ARCHITECTURE.md recommends);
//! - `commit` or `rollback` = `tenant/transaction` alone, closing a transaction whose events
//!   came in earlier entries of the same stream.
//!
//! What happens to an entry:
//!
//! - On start the consumer re-reads its own pending entries (`0`), then reads new ones
//!   (`>`), never with `NOACK`. Consecutive plain entries go to the host as one submission,
//!   in stream order; an entry with transactional events, and a `commit`/`rollback`, go alone
//!   so that an open transaction holds back only its own entries.
//! - Acknowledgement waits for [`crate::Tagbust::submit_tracked`]'s future: immediate
//!   invalidations at once, batched ones after the window, a transaction's after its
//!   commit. Reading goes on meanwhile, up to `max_in_flight` entries. A host that stops
//!   with work pending ([`crate::pipeline::NotApplied`]) leaves its entries pending.
//! - Entries idle longer than `claim_idle` on another consumer are claimed (`XAUTOCLAIM`);
//!   this consumer's own in-flight entries are kept fresh so nobody claims live work.
//! - Invalid entries (bad JSON, a field error, an unknown tenant, past `max_entry_bytes`,
//!   no usable field) and entries delivered more than `max_deliveries` times go to the
//!   dead-letter stream with the error and are acknowledged. A rate limit or backpressure
//!   is not the entry's fault: the consumer waits and tries again.
//! - Redis down: every command backs off and reconnects; nothing read is acknowledged
//!   before it is applied, so entries stay pending until it is back.
//!
//! Files: `config` (settings, errors), `entry` (replies and decoding), `link` (connections
//! and commands), `consumer` (the read loop), `submit` (entries into the host), `acker`
//! (acknowledging after apply), `stats`.

mod acker;
mod config;
mod consumer;
mod entry;
mod link;
mod stats;
mod submit;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::pipeline::Tagbust;

pub use config::{SourceError, StreamConfig};
pub use stats::{DeadLetterReason, StreamStats, StreamStatsSnapshot};

/// Reads `config.stream` into `host` until `shutdown` is cancelled or the host shuts down,
/// then applies what the batch window holds and waits up to `config.drain_timeout` for
/// in-flight entries to be acknowledged.
///
/// Returns `Err` only for what waiting cannot fix: a setting that cannot work, a URL that
/// does not parse, a key that is not a stream. A Redis that is down is waited out.
///
/// On shutdown, cancel `shutdown` first, then shut the host down (its shutdown applies
/// open transactions, which resolves the entries waiting on them), then await this.
pub async fn run<B: Backend>(
    host: Tagbust<B>,
    config: StreamConfig,
    shutdown: CancellationToken,
    stats: Arc<StreamStats>,
) -> Result<(), SourceError> {
    config.check()?;
    let client = redis::Client::open(config.url.as_str()).map_err(|source| SourceError::Url {
        stream: config.stream.clone(),
        group: config.group.clone(),
        source,
    })?;
    let cfg = Arc::new(config);
    let wait = Duration::from_secs(5);
    let consumer = consumer::Consumer {
        limits: host.options().event_limits.clone(),
        host,
        reader: link::Link::new(client.clone(), cfg.block + wait),
        control: link::Link::new(client.clone(), wait),
        acker: acker::Acker::spawn(link::Link::new(client, wait), cfg.clone(), stats.clone()),
        own: Some("0".to_owned()),
        next_chores: tokio::time::Instant::now(),
        wait: cfg.backoff,
        cfg,
        stats,
        shutdown,
    };
    consumer.run().await
}
