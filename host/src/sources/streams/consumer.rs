//! The read loop: own pending entries first, then new ones; claims and gauges between
//! reads; consecutive entries submitted together, in stream order.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::acker::Acker;
use super::config::{SourceError, StreamConfig};
use super::entry::{Entry, Intake, Parsed, decode};
use super::link::{self, Link};
use super::stats::{DeadLetterReason, StreamStats};
use crate::backend::Backend;
use crate::model::EventLimits;
use crate::pipeline::Tagbust;

/// Whether to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Go,
    Stop,
}

pub(crate) struct Consumer<B: Backend> {
    pub host: Tagbust<B>,
    pub cfg: Arc<StreamConfig>,
    pub stats: Arc<StreamStats>,
    pub shutdown: CancellationToken,
    pub limits: EventLimits,
    pub reader: Link,
    pub control: Link,
    pub acker: Acker,
    /// Reading this consumer's own pending entries, after this id; `None`: new entries.
    pub own: Option<String>,
    pub next_chores: Instant,
    pub wait: Duration,
}

impl<B: Backend> Consumer<B> {
    pub async fn run(mut self) -> Result<(), SourceError> {
        let result = match self.ensure_group().await {
            Ok(Flow::Go) => self.read_loop().await,
            Ok(Flow::Stop) => Ok(()),
            Err(e) => Err(e),
        };
        self.finish().await;
        result
    }

    async fn read_loop(&mut self) -> Result<(), SourceError> {
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            // Own pending entries first: a restarted consumer re-reads its own before it
            // claims anything (which would count them as claimed, from itself).
            if self.own.is_none() && Instant::now() >= self.next_chores {
                if self.chores().await == Flow::Stop {
                    return Ok(());
                }
                self.next_chores =
                    Instant::now() + (self.cfg.claim_idle / 4).clamp(MIN_CHORES, MAX_CHORES);
            }
            let (id, block) = match &self.own {
                Some(after) => (after.clone(), None),
                None => (">".to_owned(), Some(self.cfg.block)),
            };
            let cfg = &self.cfg;
            let read = tokio::select! {
                read = self.reader.run(async |c| link::read(c, cfg, &id, block).await) => read,
                () = self.shutdown.cancelled() => return Ok(()),
            };
            let entries = match read {
                Ok(entries) => entries,
                Err(e) => {
                    self.redis_error("XREADGROUP", &e);
                    // The group is gone (the stream was deleted, or Redis lost its data).
                    if e.code() == Some("NOGROUP") && self.ensure_group().await? == Flow::Stop {
                        return Ok(());
                    }
                    // Entries delivered with a reply that never came are pending on us now.
                    self.own = Some("0".into());
                    if self.pause().await == Flow::Stop {
                        return Ok(());
                    }
                    continue;
                }
            };
            self.wait = self.cfg.backoff;
            let redelivered = self.own.is_some();
            if redelivered {
                match entries.last() {
                    Some(last) => self.own = Some(last.id.clone()),
                    None => {
                        self.own = None;
                        continue;
                    }
                }
            }
            if self.handle(entries, redelivered).await == Flow::Stop {
                return Ok(());
            }
        }
    }

    /// Creates the group if missing; waits out a Redis that is down.
    async fn ensure_group(&mut self) -> Result<Flow, SourceError> {
        loop {
            let cfg = &self.cfg;
            match self
                .control
                .run(async |c| link::create_group(c, cfg).await)
                .await
            {
                Ok(()) => return Ok(Flow::Go),
                Err(e) if transient(&e) => {
                    self.redis_error("XGROUP CREATE", &e);
                    if self.pause().await == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
                Err(source) => {
                    return Err(SourceError::Group {
                        stream: self.cfg.stream.clone(),
                        group: self.cfg.group.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Between reads: keep this consumer's in-flight entries fresh, claim idle ones of
    /// others, read the group's gauges. Failures are counted; the next read backs off.
    async fn chores(&mut self) -> Flow {
        let cfg = self.cfg.clone();
        let stale = self.acker.in_flight.stale(cfg.claim_idle / 4);
        for ids in stale.chunks(1024) {
            if let Err(e) = self
                .control
                .run(async |c| link::touch(c, &cfg, ids).await)
                .await
            {
                self.redis_error("XCLAIM JUSTID", &e);
                return Flow::Go;
            }
        }
        let mut cursor = "0-0".to_owned();
        for _ in 0..MAX_CLAIM_PAGES {
            let page = self
                .control
                .run(async |c| link::autoclaim(c, &cfg, &cursor).await);
            let (next, claimed, deleted) = match page.await {
                Ok(page) => page,
                Err(e) => {
                    self.redis_error("XAUTOCLAIM", &e);
                    return Flow::Go;
                }
            };
            if !deleted.is_empty() {
                tracing::warn!(
                    stream = %cfg.stream, group = %cfg.group, entries = ?deleted,
                    "pending entries were trimmed away before they were acknowledged"
                );
                StreamStats::add(&self.stats.entries_deleted, deleted.len() as u64);
            }
            let claimed: Vec<Entry> = claimed
                .into_iter()
                .filter(|e| !self.acker.in_flight.contains(&e.id))
                .collect();
            StreamStats::add(&self.stats.entries_claimed, claimed.len() as u64);
            if !claimed.is_empty() && self.handle(claimed, true).await == Flow::Stop {
                return Flow::Stop;
            }
            if next == "0-0" {
                break;
            }
            cursor = next;
        }
        match self
            .control
            .run(async |c| link::group_gauges(c, &cfg).await)
            .await
        {
            Ok(Some((pending, lag))) => {
                StreamStats::set(&self.stats.pending, pending);
                StreamStats::set(&self.stats.lag, lag.unwrap_or(0));
            }
            Ok(None) => {}
            Err(e) => self.redis_error("XINFO GROUPS", &e),
        }
        Flow::Go
    }

    /// Sends `entries` on, in order: consecutive plain entries as one submission; a
    /// transaction's entry, and `commit`/`rollback`, on their own; dead letters filed.
    async fn handle(&mut self, entries: Vec<Entry>, redelivered: bool) -> Flow {
        let stats = self.stats.clone();
        StreamStats::add(&stats.entries_read, entries.len() as u64);
        let entries: Vec<Entry> = if redelivered {
            // Re-reading own pending entries lists those still in flight too.
            let fresh: Vec<Entry> = entries
                .into_iter()
                .filter(|e| !self.acker.in_flight.contains(&e.id))
                .collect();
            StreamStats::add(&stats.entries_redelivered, fresh.len() as u64);
            fresh
        } else {
            entries
        };
        let counts = if redelivered {
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            let cfg = &self.cfg;
            match self
                .control
                .run(async |c| link::deliveries(c, cfg, &ids).await)
                .await
            {
                Ok(counts) => counts,
                Err(e) => {
                    self.redis_error("XPENDING", &e);
                    return self.pause().await;
                }
            }
        } else {
            Default::default()
        };
        let mut group: Vec<Parsed> = Vec::new();
        for entry in entries {
            let label = format!("stream `{}` entry {}", self.cfg.stream, entry.id);
            let delivered = counts.get(&entry.id).copied().unwrap_or(1);
            let intake = if delivered > self.cfg.max_deliveries && entry.fields.is_some() {
                Intake::Dead {
                    reason: DeadLetterReason::MaxDeliveries,
                    error: format!(
                        "{label}: delivered {delivered} times, more than max_deliveries ({})",
                        self.cfg.max_deliveries
                    ),
                }
            } else {
                decode(&entry, &label, &self.limits, self.cfg.max_entry_bytes)
            };
            let flow = match intake {
                Intake::Deleted => {
                    StreamStats::add(&stats.entries_deleted, 1);
                    self.ack_now(entry.id).await
                }
                Intake::Dead { reason, error } => {
                    let (payload, size) =
                        super::entry::payload(&entry, self.cfg.dead_letter_payload_bytes);
                    self.bury(&entry.id, reason, &error, delivered, payload, size)
                        .await
                }
                Intake::Events {
                    events,
                    raw,
                    own,
                    commit,
                } => {
                    let parsed = Parsed::new(entry.id, label, raw, events, commit);
                    if own {
                        let flow = self.submit(std::mem::take(&mut group)).await;
                        if flow == Flow::Stop {
                            return flow;
                        }
                        self.submit(vec![parsed]).await
                    } else {
                        group.push(parsed);
                        Flow::Go
                    }
                }
                Intake::Close { commit, tenant, tx } => {
                    let flow = self.submit(std::mem::take(&mut group)).await;
                    if flow == Flow::Stop {
                        return flow;
                    }
                    self.close(entry.id, commit, &tenant, &tx).await
                }
            };
            if flow == Flow::Stop {
                return flow;
            }
        }
        self.submit(group).await
    }

    pub(crate) fn redis_error(&self, what: &str, e: &redis::RedisError) {
        StreamStats::add(&self.stats.redis_errors, 1);
        tracing::warn!(
            stream = %self.cfg.stream, group = %self.cfg.group, consumer = %self.cfg.consumer,
            "{what} failed (retrying in {:?}): {e}", self.wait
        );
    }

    /// Waits the current backoff (doubling it for next time); `Stop` on shutdown.
    pub(crate) async fn pause(&mut self) -> Flow {
        let wait = self.wait;
        self.wait = (self.wait * 2).min(self.cfg.max_backoff);
        tokio::select! {
            () = tokio::time::sleep(wait) => Flow::Go,
            () = self.shutdown.cancelled() => Flow::Stop,
        }
    }

    /// After intake stops: apply what the batch window holds, then give in-flight entries
    /// `drain_timeout` to be acknowledged. What is left stays pending.
    async fn finish(self) {
        // A host already shut down has applied (or handed back) everything itself.
        let _ = self.host.flush().await;
        let left = self.acker.drain(self.cfg.drain_timeout).await;
        StreamStats::set(&self.stats.in_flight, left as u64);
        if left > 0 {
            tracing::warn!(
                stream = %self.cfg.stream, group = %self.cfg.group, entries = left,
                "stopped with entries not yet applied: they stay pending and are delivered again"
            );
        }
    }
}

/// How often chores run at most and at least (they run between reads, so a read's `block`
/// can delay them).
const MIN_CHORES: Duration = Duration::from_millis(10);
const MAX_CHORES: Duration = Duration::from_secs(1);
/// `XAUTOCLAIM` pages per round of chores, so claiming cannot starve new entries.
const MAX_CLAIM_PAGES: usize = 8;

/// A failure that waiting can fix (Redis down, restarting, loading its data).
fn transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(e.code(), Some("LOADING" | "TRYAGAIN" | "MASTERDOWN"))
}
