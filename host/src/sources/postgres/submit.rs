//! A committed transaction into the host: its events submitted as one tracked submission
//! (backpressure and rate limits waited out, events refused for good dropped and counted),
//! its acknowledgement queued behind every earlier commit.

use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient};

use super::session::{Ended, Open, Source};
use super::stats::{now_us, pg_to_unix_us};
use crate::backend::Backend;
use crate::model::WriteEvent;
use crate::pipeline::{Applied, HostError};

impl<B: Backend> Source<B> {
    /// Submits a committed transaction's events and queues its acknowledgement. `Some`
    /// when the session must end first (the host shut down).
    pub(super) async fn commit(
        &mut self,
        client: &ReplicationClient,
        o: Open,
        lsn: Lsn,
        end: Lsn,
        commit_time: i64,
    ) -> Option<Ended> {
        let s = &self.stats;
        s.add(&s.transactions, 1);
        s.add(&s.rows, o.tx.rows);
        s.add(&s.rows_skipped, o.tx.skipped);
        s.add(&s.truncates, o.tx.truncates);
        s.raise(&s.received_lsn, end.as_u64());
        if end.as_u64() <= self.max_end {
            s.add(&s.transactions_replayed, 1);
        }
        self.max_end = self.max_end.max(end.as_u64());
        let commit_us = pg_to_unix_us(commit_time);
        let source = format!("postgres lsn={lsn} xid={}", o.xid);
        let events = o.tx.finish(source, commit_us / 1000, &self.limits);
        let applied = if events.is_empty() {
            None
        } else {
            match self.submit(events).await {
                Ok(applied) => applied,
                Err(ended) => return Some(ended),
            }
        };
        self.acks
            .push(end.as_u64(), commit_us.min(now_us()), applied);
        self.confirm(client);
        None
    }

    /// Submits, waiting out backpressure and rate limits; drops (and counts) events the
    /// host refuses for good. `Ok(None)` when nothing was left to submit.
    async fn submit(&self, mut events: Vec<WriteEvent>) -> Result<Option<Applied>, Ended> {
        let mut wait = Duration::from_millis(10);
        loop {
            if events.is_empty() {
                return Ok(None);
            }
            let n = events.len() as u64;
            match self.host.submit_tracked(events.clone()).await {
                Ok((_, applied)) => {
                    self.stats.add(&self.stats.events_submitted, n);
                    return Ok(Some(applied));
                }
                Err(HostError::ShutDown) => return Err(Ended::Shutdown),
                Err(
                    e @ (HostError::InvalidEvent { index, .. }
                    | HostError::UnknownTenant { index, .. }),
                ) => {
                    self.stats.add(&self.stats.events_refused, 1);
                    tracing::warn!(error = %e, "postgres source: an event was refused and skipped");
                    if index < events.len() {
                        events.remove(index);
                    } else {
                        return Ok(None);
                    }
                }
                Err(e) => {
                    self.stats.add(&self.stats.retries, 1);
                    tracing::debug!(error = %e, "postgres source: submission retried");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return Err(Ended::Shutdown),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}
