//! The host's counters through the `metrics` facade: a service installs the exporter it
//! likes (the daemon: Prometheus) and calls [`Tagbust::record_metrics`] before rendering.
//! Without a recorder installed, recording costs next to nothing.
//!
//! Labels stay bounded by default: by rule, failure code, operation kind and strategy, never
//! by tenant (10,000 tenants must not mean 10,000 series); per-tenant counts are the
//! service's choice, at its intake.

use std::sync::atomic::Ordering;

use super::{Tagbust, lock};
use crate::backend::Backend;

impl<B: Backend> Tagbust<B> {
    /// Records every counter of [`Tagbust::stats`] (as absolute values) and the gauges
    /// (pending operations, open transactions, degraded).
    pub fn record_metrics(&self) {
        let s = self.stats();
        let counters: [(&'static str, u64); 24] = [
            ("tagbust_events_total", s.events),
            ("tagbust_events_rejected_total", s.events_rejected),
            (
                "tagbust_events_refused_backpressure_total",
                s.events_refused_backpressure,
            ),
            (
                "tagbust_events_unknown_tenant_total",
                s.events_unknown_tenant,
            ),
            ("tagbust_events_rate_limited_total", s.events_rate_limited),
            (
                "tagbust_events_failed_by_rule_total",
                s.events_failed_by_rule,
            ),
            ("tagbust_rule_fallbacks_total", s.rule_fallbacks),
            ("tagbust_rule_skips_total", s.rule_skips),
            (
                "tagbust_confinement_violations_total",
                s.confinement_violations,
            ),
            ("tagbust_cooldown_waits_total", s.cooldown_waits),
            ("tagbust_reloads_total", s.reloads),
            ("tagbust_reloads_failed_total", s.reloads_failed),
            ("tagbust_cascaded_tags_total", s.cascaded_tags),
            ("tagbust_keys_removed_total", s.keys_removed),
            ("tagbust_batched_targets_total", s.batched_targets),
            ("tagbust_batched_ops_applied_total", s.batched_ops_applied),
            ("tagbust_flushes_total", s.flushes),
            (
                "tagbust_transactions_committed_total",
                s.transactions_committed,
            ),
            (
                "tagbust_transactions_rolled_back_total",
                s.transactions_rolled_back,
            ),
            (
                "tagbust_transactions_timed_out_total",
                s.transactions_timed_out,
            ),
            ("tagbust_backend_errors_total", s.backend_errors),
            (
                "tagbust_ops_unapplied_at_shutdown_total",
                s.ops_unapplied_at_shutdown,
            ),
            ("tagbust_cache_hits_total", s.cache_hits),
            ("tagbust_cache_misses_total", s.cache_misses),
        ];
        for (name, value) in counters {
            metrics::counter!(name).absolute(value);
        }
        for (rule, r) in &s.rules {
            metrics::counter!("tagbust_rule_calls_total", "rule" => rule.clone()).absolute(r.calls);
            metrics::counter!("tagbust_rule_events_total", "rule" => rule.clone())
                .absolute(r.events);
            for (code, n) in &r.failures {
                metrics::counter!(
                    "tagbust_rule_failures_total",
                    "rule" => rule.clone(),
                    "code" => code.clone()
                )
                .absolute(*n);
            }
        }
        for (kind, n) in &s.ops_applied {
            metrics::counter!("tagbust_ops_applied_total", "kind" => kind.clone()).absolute(*n);
        }
        for (kind_strategy, n) in &s.targets {
            metrics::counter!("tagbust_targets_total", "target" => kind_strategy.clone())
                .absolute(*n);
        }
        let pending = lock(&self.inner.batcher).len();
        metrics::gauge!("tagbust_pending_operations").set(pending as f64);
        metrics::gauge!("tagbust_transactions_open").set(s.transactions_open as f64);
        let degraded = self.inner.degraded.load(Ordering::Relaxed);
        metrics::gauge!("tagbust_degraded").set(if degraded { 1.0 } else { 0.0 });
    }

    /// Operations waiting to be applied (the batch window, and any kept for retry).
    pub fn pending_operations(&self) -> usize {
        lock(&self.inner.batcher).len()
    }
}
