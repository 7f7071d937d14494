//! Applying operations to the backend: grouping identical ones, handing them over as one
//! slice, recording explain and stats, and keeping them for retry when the backend fails.

use std::sync::atomic::Ordering;

use tracing::Instrument;

use super::coalesce::{Grouped, group};
use super::operations::Routed;
use super::{FlushReport, HostError, Tagbust, lock};
use crate::backend::Backend;
use crate::model::target::Strategy;

fn strategy_label(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Immediate => "immediate",
        Strategy::Batched => "batched",
        Strategy::Lazy => "lazy",
    }
}

impl<B: Backend> Tagbust<B> {
    /// Applies operations now, labelled by strategy (or `label` when given).
    pub(super) async fn apply_now(
        &self,
        routed: Vec<Routed>,
        label: Option<&'static str>,
    ) -> Result<(usize, u64), HostError> {
        let grouped = group(routed);
        let count = grouped.len();
        let removed = self
            .apply_grouped(grouped, 0, |s| label.unwrap_or(strategy_label(s)))
            .await?;
        Ok((count, removed))
    }

    /// Applies operations grouped already, labelled by strategy.
    pub(super) async fn apply_grouped_now(
        &self,
        grouped: Grouped,
    ) -> Result<(usize, u64), HostError> {
        let count = grouped.len();
        let removed = self.apply_grouped(grouped, 0, strategy_label).await?;
        Ok((count, removed))
    }

    /// Applies grouped operations, each labelled by its strategy; on failure puts them in the
    /// batcher for retry.
    pub(super) async fn apply_grouped(
        &self,
        grouped: Grouped,
        batched_targets: u64,
        label: impl Fn(Strategy) -> &'static str,
    ) -> Result<u64, HostError> {
        let inner = &self.inner;
        let Grouped { ops, metas } = grouped;
        let span = tracing::debug_span!(
            "tagbust.apply",
            ops = ops.len(),
            keys_removed = tracing::field::Empty
        );
        match inner.backend.apply(&ops).instrument(span.clone()).await {
            Ok(outcomes) => {
                if inner.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("backend answers again; applying normally");
                }
                let removed: u64 = outcomes.iter().map(|o| o.removed).sum();
                span.record("keys_removed", removed);
                inner.stats.update(|s| {
                    for op in &ops {
                        s.op(op.kind);
                    }
                    s.keys_removed += removed;
                });
                inner.explain.record(ops, metas, outcomes, label);
                Ok(removed)
            }
            Err(source) => {
                let pending = ops.len();
                inner.degraded.store(true, Ordering::Relaxed);
                inner.stats.update(|s| s.backend_errors += 1);
                tracing::warn!(error = %source, pending, "backend apply failed; operations kept for retry");
                let grouped = Grouped { ops, metas };
                lock(&inner.batcher).restore(grouped, batched_targets);
                inner.wake.notify_one();
                Err(HostError::Backend { pending, source })
            }
        }
    }

    /// Applies every pending operation now (batched ones, and any kept for retry).
    ///
    /// When it returns `Ok`, everything pending when it was called is applied, including a
    /// batch the worker was applying at that moment (it waits for it). On a backend failure
    /// the operations stay pending and the worker retries them.
    pub async fn flush(&self) -> Result<FlushReport, HostError> {
        let _flushing = self.inner.flushing.lock().await;
        let (pending, targets) = lock(&self.inner.batcher).take();
        if pending.is_empty() {
            return Ok(FlushReport::default());
        }
        let ops = pending.len() as u64;
        let removed = self
            .apply_grouped(pending, targets, |s| match s {
                Strategy::Batched => "batched",
                _ => "deferred",
            })
            .instrument(tracing::debug_span!("tagbust.flush", ops))
            .await?;
        self.inner.stats.update(|s| {
            s.flushes += 1;
            s.batched_targets += targets;
            s.batched_ops_applied += ops;
        });
        Ok(FlushReport {
            operations: ops,
            keys_removed: removed,
        })
    }
}
