//! A submission from admission to dispatch: evaluate on the blocking pool, then send each
//! operation on by its strategy.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::ack::{Applied, Ticket};
#[cfg(doc)]
use super::coalesce::group;
use super::coalesce::{Grouped, Pending};
use super::evaluate;
use super::operations::Routed;
use super::split::Split;
use super::{HostError, SubmitReport, Tagbust, lock};
use crate::backend::Backend;
use crate::model::WriteEvent;

impl<B: Backend> Tagbust<B> {
    /// Evaluates `events`, applies what is due now, queues what is batched, holds what
    /// belongs to an open transaction.
    ///
    /// `Err` means the submission was not accepted and nothing of it will happen: an invalid
    /// event (with its index and field), an unknown tenant, a rate limit, backpressure, or a
    /// host that is shut down. Once accepted, the result is `Ok` with what happened, including
    /// operations deferred because the backend is down (kept and retried) and events a rule's
    /// `fail` policy rejected.
    pub async fn submit(&self, events: Vec<WriteEvent>) -> Result<SubmitReport, HostError> {
        self.submit_with(events, None).await
    }

    /// [`Tagbust::submit`], plus a future that resolves once every invalidation of the
    /// submission has been applied to the backend: immediate ones, batched ones after their
    /// window, held ones after their transaction commits (a rollback resolves them too:
    /// nothing was to be applied). It resolves with [`super::NotApplied`] if the host stops with
    /// some still pending. A source that must lose nothing (a stream, a replication slot)
    /// acknowledges upstream only when it resolves: at-least-once, end to end.
    pub async fn submit_tracked(
        &self,
        events: Vec<WriteEvent>,
    ) -> Result<(SubmitReport, Applied), HostError> {
        let (ticket, applied) = Ticket::new();
        let report = self.submit_with(events, Some(ticket)).await?;
        Ok((report, applied))
    }

    async fn submit_with(
        &self,
        events: Vec<WriteEvent>,
        ticket: Option<Arc<Ticket>>,
    ) -> Result<SubmitReport, HostError> {
        let inner = &self.inner;
        // Counted as in flight before admission checks for shutdown: `shutdown` waits for
        // every submission that got past that check, so none enqueues after its last flush.
        let _in_flight = inner.tracker.token();
        let tenants = self.tenants();
        self.admit(&tenants, &events)?;
        self.cool_down(&events).await;
        let n = events.len();
        let first_seq = inner.seq.fetch_add(n as u64, Ordering::Relaxed);
        let stats = inner.stats.clone();
        let span = tracing::debug_span!("tagbust.submit", events = n);
        let for_ops = ticket.clone();
        let mut evaluated = tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            crate::sandbox::blocking::on_blocking_thread(|| {
                evaluate::evaluate_and_route(&tenants, &stats, events, first_seq, for_ops.as_ref())
            })
        })
        .await
        .map_err(|e| HostError::Evaluation {
            source: Arc::new(e),
        })?;
        let split = std::mem::take(&mut evaluated.split);

        self.owe(&evaluated.burned);
        let report = SubmitReport {
            events: n,
            rule_failures: evaluated.failures,
            ..SubmitReport::default()
        };
        Ok(self.dispatch(report, split, ticket).await)
    }

    /// Sends a submission's sorted operations on: held for their transaction, applied now
    /// (immediate, lazy), or queued for the batch window; rejected events are reported.
    /// `ticket` is the one evaluation gave the operations.
    pub(super) async fn dispatch(
        &self,
        mut report: SubmitReport,
        split: Split,
        ticket: Option<Arc<Ticket>>,
    ) -> SubmitReport {
        let inner = &self.inner;
        if let Some(ticket) = &ticket {
            ticket.add(split.targets as u64);
        }
        report.targets += split.targets;
        report.held += split.held_targets;
        report.rejected = split.rejected;
        report.batched = split.batched.len();
        for (tenant, tx, ops) in split.held {
            lock(&inner.txs).hold(&tenant, &tx, ops);
            inner.wake.notify_one();
        }
        // Every operation carries the ticket now: the submission's own unit is released.
        if let Some(ticket) = ticket {
            ticket.done(1);
        }
        let (applied, pending) = self
            .send_now_or_later(split.now, split.now_targets, split.batched)
            .await;
        report.applied = applied.applied;
        report.deferred = applied.deferred;
        report.keys_removed = applied.keys_removed;
        // While degraded the worker retries; the caller is not made to wait on a dead backend.
        if pending >= inner.options.batch_max_ops && !inner.degraded.load(Ordering::Relaxed) {
            // On failure the operations stay pending for the worker; the submission stands.
            let _ = self.flush().await;
        }
        report
    }
}

/// What happened to operations due now.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SentNow {
    pub applied: usize,
    pub deferred: usize,
    pub keys_removed: u64,
}

impl<B: Backend> Tagbust<B> {
    /// Queues `batched` for the window and applies `now`, or keeps `now` for retry while the
    /// backend is failing. Returns what happened to `now`, and how many operations are
    /// pending afterwards.
    /// `now` is grouped (see [`group`]) from `now_targets` routed operations.
    pub(super) async fn send_now_or_later(
        &self,
        now: Grouped,
        now_targets: usize,
        batched: Vec<Routed>,
    ) -> (SentNow, usize) {
        let mut sent = SentNow::default();
        let mut pending = self.enqueue(batched);
        if now.is_empty() {
            return (sent, pending);
        }
        if self.inner.degraded.load(Ordering::Relaxed) {
            sent.deferred = now_targets;
            pending = self.enqueue(now.into_iter().collect::<Vec<Pending>>());
            return (sent, pending);
        }
        match self.apply_grouped_now(now).await {
            Ok((applied, removed)) => {
                sent.applied = applied;
                sent.keys_removed = removed;
            }
            // The operations are back in the batcher; the worker retries them.
            Err(HostError::Backend { pending: kept, .. }) => {
                sent.deferred = kept;
                pending = lock(&self.inner.batcher).len();
            }
            Err(_) => {}
        }
        (sent, pending)
    }

    /// Queues operations (routed, or already grouped) for the batch window; returns how many
    /// are pending.
    pub(super) fn enqueue<T: Into<Pending>>(&self, batched: Vec<T>) -> usize {
        if batched.is_empty() {
            return lock(&self.inner.batcher).len();
        }
        let mut batcher = lock(&self.inner.batcher);
        let was_empty = batcher.len() == 0;
        let pending = batcher.add(batched);
        drop(batcher);
        if was_empty {
            self.inner.wake.notify_one();
        }
        pending
    }
}
