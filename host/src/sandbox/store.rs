//! Per-evaluation state: what one short-lived `Store` owns.
//!
//! A `Store` is an arena that frees its instances only when dropped, so the host builds a fresh
//! one for every batch (and for `describe`) and throws it away afterwards, trap or not.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::sandbox::imports::{GuestLog, RuleConfig};
use crate::sandbox::limits::{Limits, MAX_TABLE_ELEMENTS};

/// What a rule may see of its caller, and what it logged.
pub(crate) struct GuestContext {
    pub tenant: Arc<str>,
    pub rule: Arc<str>,
    pub config: RuleConfig,
    pub logs: Vec<GuestLog>,
    pub max_logs: usize,
    pub logs_dropped: u64,
}

/// Denies memory growth past the cap by trapping, and remembers that it did so the failure
/// can be reported as a memory limit rather than a generic trap.
pub(crate) struct MemoryLimiter {
    cap: usize,
    pub denied: bool,
    /// Bytes of linear memory the instance holds now, over all its memories, and the most it
    /// held: what a rule needs, measured (`RuleRun::memory_bytes`).
    total: usize,
    pub peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.cap);
        }
        // Called for each memory's initial size at instantiation too (current = 0).
        self.total = self.total.saturating_add(desired.saturating_sub(current));
        self.peak = self.peak.max(self.total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// A deadline too far to add to an instant stands for "a year from now".
const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// The data of one evaluation's `Store`.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub guest: GuestContext,
    /// The rule's stderr, kept to explain a panic.
    pub stderr: MemoryOutputPipe,
    /// When the store was made: the origin of the rule's monotonic clock.
    pub created: Instant,
    /// When this call's deadline passes: host calls that could wait stop here (see
    /// [`super::wasi`]), as epochs stop the rule's own code.
    pub deadline: Instant,
}

impl StoreState {
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Builds a fresh store for one call into a rule.
///
/// WASI is linked (Rust's standard library imports it) but grants nothing: no files, no
/// environment, no arguments, no network or name lookup, stdin closed, stdout discarded.
/// Stderr goes to a small bounded buffer.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    fuel_enabled: bool,
    tenant: Arc<str>,
    rule: Arc<str>,
    config: RuleConfig,
    limits: &Limits,
) -> Store<StoreState> {
    let now = Instant::now();
    let stderr = MemoryOutputPipe::new(limits.stderr_bytes);
    let wasi = WasiCtxBuilder::new()
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let state = StoreState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            cap: limits.memory_bytes,
            denied: false,
            total: 0,
            peak: 0,
        },
        guest: GuestContext {
            tenant,
            rule,
            config,
            logs: Vec::new(),
            max_logs: limits.max_log_records,
            logs_dropped: 0,
        },
        stderr,
        created: now,
        deadline: now.checked_add(limits.deadline).unwrap_or(now + FAR_FUTURE),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_hostcall_fuel(limits.max_output_bytes);
    store.epoch_deadline_trap();
    if fuel_enabled {
        // Without a budget the rule still needs fuel to run at all.
        let fuel = limits.fuel.unwrap_or(u64::MAX);
        if let Err(e) = store.set_fuel(fuel) {
            // Only fails on an engine without fuel, which `fuel_enabled` rules out.
            tracing::error!(error = %e, "cannot set fuel on a fuel-enabled engine");
        }
    }
    store
}
