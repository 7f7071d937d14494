//! Running a rule over a batch: a fresh `Store`, a fresh instance from the `InstancePre`, one
//! call, and every failure turned into a typed [`RuleFailure`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::failure::RuleFailure;
use crate::model::target::Target;
use crate::sandbox::batch::Batch;
use crate::sandbox::blocking::where_blocking_is_allowed;
use crate::sandbox::classify::classify;
use crate::sandbox::imports::{GuestLog, RuleConfig};
use crate::sandbox::limits::Limits;
use crate::sandbox::rule::Rule;
use crate::sandbox::store::new_store;

/// What one rule said about one batch.
#[derive(Debug, Clone)]
pub struct RuleRun {
    /// One result per event of the batch, in order.
    pub outcomes: Vec<Result<Vec<Target>, RuleFailure>>,
    /// What the rule logged during the call.
    pub logs: Vec<GuestLog>,
    /// Log records past the cap, dropped.
    pub logs_dropped: u64,
    /// Wall time of instantiation plus the call.
    pub elapsed: Duration,
    /// Fuel consumed, when the engine meters fuel.
    pub fuel_used: Option<u64>,
    /// Most bytes of linear memory the instance held (all its memories): what the rule
    /// needs under [`Limits::memory_bytes`] for this batch.
    pub memory_bytes: usize,
}

/// Summary for spans and stats.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RunCounts {
    pub ok: usize,
    pub failed: usize,
    pub targets: usize,
}

impl RuleRun {
    pub fn counts(&self) -> RunCounts {
        let mut c = RunCounts::default();
        for o in &self.outcomes {
            match o {
                Ok(t) => {
                    c.ok += 1;
                    c.targets += t.len();
                }
                Err(_) => c.failed += 1,
            }
        }
        c
    }
}

impl Rule {
    /// Evaluates `batch` with the tenant's `config` under `limits`.
    ///
    /// Never panics and never fails as a whole: a trap, timeout or memory blow-up becomes the
    /// same [`RuleFailure`] on every event of the batch; a rule error or an oversized decision
    /// fails only its event.
    ///
    /// Safe to call from anywhere, async code included: see [`where_blocking_is_allowed`].
    pub fn evaluate(&self, batch: &Batch, config: &RuleConfig, limits: &Limits) -> RuleRun {
        where_blocking_is_allowed(|| self.evaluate_here(batch, config, limits))
    }

    fn evaluate_here(&self, batch: &Batch, config: &RuleConfig, limits: &Limits) -> RuleRun {
        let inner = &*self.inner;
        let span = tracing::debug_span!(
            "tagbust.evaluate",
            tenant = batch.tenant(),
            rule = &*inner.name,
            batch.size = batch.len(),
            targets = tracing::field::Empty,
            failed = tracing::field::Empty,
        );
        let _enter = span.enter();
        let start = Instant::now();
        let fuel_enabled = inner.engine.options().fuel;
        let mut store = new_store(
            inner.engine.wasm(),
            fuel_enabled,
            batch.tenant_arc(),
            inner.name.clone(),
            config.clone(),
            limits,
        );
        store.set_epoch_deadline(limits.deadline_ticks());
        let outcomes = match inner.pre.evaluate(&mut store, batch, limits) {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(failure)) => vec![Err(failure); batch.len()],
            Err(e) => {
                let failure = classify(&store, e, limits);
                tracing::warn!(
                    tenant = batch.tenant(),
                    rule = &*inner.name,
                    error = failure.code(),
                    "rule failed: {failure}"
                );
                vec![Err(failure); batch.len()]
            }
        };
        let fuel_used = if fuel_enabled {
            let budget = limits.fuel.unwrap_or(u64::MAX);
            store
                .get_fuel()
                .ok()
                .map(|left| budget.saturating_sub(left))
        } else {
            None
        };
        let memory_bytes = store.data().limiter.peak;
        let guest = &mut store.data_mut().guest;
        let run = RuleRun {
            outcomes,
            logs: std::mem::take(&mut guest.logs),
            logs_dropped: guest.logs_dropped,
            elapsed: start.elapsed(),
            fuel_used,
            memory_bytes,
        };
        let counts = run.counts();
        span.record("targets", counts.targets);
        span.record("failed", counts.failed);
        run
    }
}

impl Rule {
    /// Creates a fresh instance under `limits` and drops it, without calling the rule: checks
    /// that the rule can be instantiated (its memory and tables fit), and measures the cost.
    pub fn check_instantiate(&self, limits: &Limits) -> Result<(), RuleFailure> {
        let inner = &*self.inner;
        let mut store = new_store(
            inner.engine.wasm(),
            inner.engine.options().fuel,
            Arc::from(""),
            inner.name.clone(),
            RuleConfig::default(),
            limits,
        );
        store.set_epoch_deadline(limits.deadline_ticks());
        match inner.pre.instantiate(&mut store) {
            Ok(()) => Ok(()),
            Err(e) => Err(classify(&store, e, limits)),
        }
    }
}
