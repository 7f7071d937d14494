//! Running a rule over a batch: a fresh `Store`, a fresh instance from the `InstancePre`, one
//! call, and every failure turned into a typed [`RuleFailure`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::{Store, Trap};

use crate::batch::Batch;
use crate::convert::decision_from_wit;
use crate::error::RuleFailure;
use crate::imports::{GuestLog, RuleConfig};
use crate::limits::Limits;
use crate::rule::Rule;
use crate::store::{StoreState, new_store};
use crate::target::Target;

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
        let result = inner.pre.instantiate(&mut store).and_then(|instance| {
            instance
                .tagbust_rules_rule()
                .call_evaluate(&mut store, batch.wit_events())
        });
        let outcomes = match result {
            Ok(decisions) if decisions.len() == batch.len() => decisions
                .into_iter()
                .map(|d| decision_from_wit(d, limits.max_targets, limits.max_target_bytes))
                .collect(),
            Ok(decisions) => {
                let failure = RuleFailure::InvalidOutput {
                    detail: format!(
                        "returned {} decisions for {} events",
                        decisions.len(),
                        batch.len()
                    ),
                };
                vec![Err(failure); batch.len()]
            }
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
        let guest = &mut store.data_mut().guest;
        let run = RuleRun {
            outcomes,
            logs: std::mem::take(&mut guest.logs),
            logs_dropped: guest.logs_dropped,
            elapsed: start.elapsed(),
            fuel_used,
        };
        let counts = run.counts();
        span.record("targets", counts.targets);
        span.record("failed", counts.failed);
        run
    }
}

/// Runs `f` where a rule's call may block on tokio. A guest writing to stderr (every Rust
/// panic does) goes through WASI's synchronous streams, which `block_on` the ambient tokio
/// runtime: fine outside a runtime and on the blocking pool, a panic on an async worker thread.
/// So: outside a runtime, run as is; on a multi-threaded runtime, through `block_in_place`
/// (which runs as is off the workers); on a current-thread runtime, on a scoped thread of its
/// own, outside the runtime's context.
pub(crate) fn where_blocking_is_allowed<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if MAY_BLOCK.get() {
        return f();
    }
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|scope| match scope.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

thread_local! {
    /// Set while the host evaluates on its own blocking-pool thread, where blocking is fine
    /// whatever the runtime: the guard above then costs nothing (on a current-thread runtime
    /// it would otherwise start a thread per call).
    static MAY_BLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on a thread known to allow blocking (a `spawn_blocking` closure).
pub(crate) fn on_blocking_thread<R>(f: impl FnOnce() -> R) -> R {
    let before = MAY_BLOCK.replace(true);
    let r = f();
    MAY_BLOCK.set(before);
    r
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
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&store, e, limits)),
        }
    }
}

/// Maps a failed call to the reason a person can act on.
pub(crate) fn classify(
    store: &Store<StoreState>,
    error: wasmtime::Error,
    limits: &Limits,
) -> RuleFailure {
    if store.data().limiter.denied {
        return RuleFailure::MemoryExceeded {
            limit_bytes: limits.memory_bytes as u64,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RuleFailure::Timeout {
            deadline_ms: u64::try_from(limits.deadline.as_millis()).unwrap_or(u64::MAX),
        },
        Some(Trap::StackOverflow) => RuleFailure::StackOverflow,
        Some(Trap::MemoryOutOfBounds) => RuleFailure::OutOfBounds,
        Some(Trap::OutOfFuel) => RuleFailure::FuelExhausted {
            fuel: limits.fuel.unwrap_or(0),
        },
        Some(Trap::UnreachableCodeReached) => RuleFailure::Panic {
            message: panic_message(&store.data().stderr.contents()),
        },
        Some(trap) => RuleFailure::Trap {
            message: trap.to_string(),
        },
        None => {
            let message = format!("{error:#}");
            // wasmtime's error type for this is private; its message is pinned with the version.
            if message.contains("fuel allocated for hostcalls has been exhausted") {
                RuleFailure::TransferTooLarge {
                    limit_bytes: limits.max_output_bytes as u64,
                }
            } else {
                RuleFailure::Trap { message }
            }
        }
    }
}

/// The useful part of what a panicking Rust guest printed: the message, without the
/// backtrace hint.
fn panic_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with"))
        .collect();
    if lines.is_empty() {
        return "unreachable instruction executed".to_owned();
    }
    let mut message = lines.join(" ");
    if message.len() > 512 {
        let mut cut = 512;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_message_keeps_the_message_and_drops_the_hint() {
        let raw = b"\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(raw),
            "thread '<unnamed>' panicked at src/lib.rs:3:5: boom"
        );
        assert_eq!(panic_message(b""), "unreachable instruction executed");
    }
}
