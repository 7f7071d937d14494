//! The host's background task (flushes the batch window when it ends, applies transactions
//! left open past their timeout, sweeps the backend so its indexes never leak), and shutdown.

use std::sync::Arc;

use tokio::time::{Instant, sleep_until};

use super::options::{ShutdownError, Unapplied};
use super::{HostError, Inner, ShutdownReport, Tagbust, lock};
use crate::backend::Backend;

pub(super) async fn run<B: Backend>(inner: Arc<Inner<B>>) {
    // The worker's own handle holds no drop guard: dropping every user handle stops it.
    let host = Tagbust {
        inner: inner.clone(),
        _stop: std::sync::Arc::new(tokio_util::sync::CancellationToken::new().drop_guard()),
    };
    let options = &inner.options;
    let mut next_sweep = Instant::now() + options.sweep_interval;
    loop {
        let batch_due = lock(&inner.batcher)
            .first_at
            .map(|t| t + options.batch_window);
        let tx_due = lock(&inner.txs)
            .oldest()
            .map(|t| t + options.transaction_timeout);
        let next = [batch_due, tx_due, Some(next_sweep)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_sweep);
        tokio::select! {
            _ = inner.shutdown.cancelled() => break,
            _ = inner.wake.notified() => continue,
            _ = sleep_until(next) => {}
        }
        let now = Instant::now();
        if batch_due.is_some_and(|t| t <= now) {
            // On failure the operations are back in the batcher and retried next window.
            let _ = host.flush().await;
        }
        if tx_due.is_some_and(|t| t <= now) {
            host.expire_transactions().await;
        }
        if next_sweep <= now {
            // The sweep doubles as the health check of an idle host: a failing backend marks
            // it degraded (readiness reports it); an answering one with nothing left to
            // retry clears it.
            match inner.backend.sweep(options.sweep_budget).await {
                Ok(n) => {
                    inner.stats.update(|s| s.swept += n as u64);
                    if lock(&inner.batcher).len() == 0 {
                        inner
                            .degraded
                            .store(false, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    inner
                        .degraded
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, "backend sweep failed");
                }
            }
            next_sweep = now + options.sweep_interval;
        }
    }
}

impl<B: Backend> Tagbust<B> {
    /// Stops the worker, then applies everything pending: open transactions
    /// (conservatively) and the batch window, in one flush. Later submissions are refused.
    ///
    /// When the backend fails, nothing is silently gone: every operation it could not take
    /// comes back in [`ShutdownError::unapplied`], logged at ERROR with its tenant and
    /// transactions and counted (`ops_unapplied_at_shutdown`); tracked submissions waiting
    /// on them resolve with `NotApplied`. What survives a crash is another matter: nothing
    /// pending in memory does (see the README).
    pub async fn shutdown(&self) -> Result<ShutdownReport, ShutdownError> {
        let inner = &self.inner;
        // Refuse new work, then wait for the worker and every submission, commit and manual
        // invalidation already past its shutdown check (each holds a tracker token).
        inner.shutdown.cancel();
        inner.tracker.close();
        inner.tracker.wait().await;
        let open = lock(&inner.txs).drain();
        let transactions_applied = open.len();
        for ((tenant, tx), held) in open {
            tracing::warn!(
                tenant,
                transaction = tx,
                "open at shutdown; applying its invalidations"
            );
            inner.stats.update(|s| s.transactions_timed_out += 1);
            self.enqueue(held.routed);
        }
        let mut report = ShutdownReport {
            transactions_applied,
            ..ShutdownReport::default()
        };
        match self.flush().await {
            Ok(flushed) => {
                report.operations = flushed.operations;
                report.keys_removed = flushed.keys_removed;
                Ok(report)
            }
            Err(HostError::Backend { source, .. }) => {
                let unapplied = self.hand_back();
                Err(ShutdownError {
                    report,
                    unapplied,
                    source,
                })
            }
            // `flush` fails only on the backend.
            Err(other) => {
                tracing::error!(error = %other, "unexpected failure flushing at shutdown");
                Ok(report)
            }
        }
    }

    /// Takes every pending operation out of the host for the caller, logging each at ERROR.
    fn hand_back(&self) -> Vec<Unapplied> {
        let (pending, _) = lock(&self.inner.batcher).take();
        let unapplied: Vec<Unapplied> = pending
            .into_iter()
            .map(|p| {
                let mut transactions: Vec<String> = p
                    .meta
                    .origins
                    .iter()
                    .filter_map(|o| o.event.transaction.clone())
                    .collect();
                transactions.sort();
                transactions.dedup();
                let events = p.meta.origins.iter().map(|o| o.event.seq).collect();
                tracing::error!(
                    tenant = %p.op.tenant,
                    kind = ?p.op.kind,
                    value = %p.op.value,
                    transactions = ?transactions,
                    "not applied at shutdown: the backend is down; handed back to the caller"
                );
                Unapplied {
                    op: p.op,
                    strategy: p.meta.strategy,
                    transactions,
                    events,
                    merged: p.meta.merged,
                }
            })
            .collect();
        let n = unapplied.len() as u64;
        self.inner
            .stats
            .update(|s| s.ops_unapplied_at_shutdown += n);
        unapplied
    }
}
