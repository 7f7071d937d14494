//! Every sandbox limit, with its default and the reason for it, in one place.
//!
//! [`Limits`] apply per rule evaluation (one fresh `Store` per batch); [`EngineOptions`] are
//! fixed when the process-wide engine is built; the constants below are fixed caps on what a
//! rule can hand the host, each with its reason. Nothing else in the sandbox sets a number.

use std::time::Duration;

/// How often the epoch ticker thread advances the engine's epoch. Deadlines are counted in
/// these ticks, so a runaway rule is stopped within `deadline + 1 tick`. One millisecond keeps
/// that slack small while the ticker costs ~1,000 cheap wake-ups a second.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Longest rule-error message kept, in bytes; longer ones are cut (a rule cannot make every
/// log line and report carry megabytes).
pub const MAX_ERROR_MESSAGE: usize = 1024;
/// Longest log message, field key or field value kept, in bytes; longer ones are cut.
pub const MAX_LOG_TEXT: usize = 1024;
/// Fields kept per log record; the rest are dropped.
pub const MAX_LOG_FIELDS: usize = 16;
/// Longest panic message recovered from a guest's stderr, in bytes.
pub const MAX_PANIC_MESSAGE: usize = 512;
/// Most table elements a rule may have; Rust rules use a few dozen.
pub const MAX_TABLE_ELEMENTS: usize = 10_000;
/// `describe()` bounds: a rule name is 1–128 characters of `[A-Za-z0-9._-]` (it appears in
/// every stat, log line and explain record), a version 1–64 characters, at most 1,024
/// resources of 1–256 characters each, a description of at most 4 KiB.
pub const MAX_RULE_NAME: usize = 128;
/// See [`MAX_RULE_NAME`].
pub const MAX_RULE_VERSION: usize = 64;
/// See [`MAX_RULE_NAME`].
pub const MAX_RESOURCES: usize = 1024;
/// See [`MAX_RULE_NAME`].
pub const MAX_RESOURCE_NAME: usize = 256;
/// See [`MAX_RULE_NAME`].
pub const MAX_DESCRIPTION: usize = 4096;

/// Per-evaluation limits for a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget for one call into the rule (instantiation, `describe`, or one
    /// `evaluate` of a whole batch). Default 100 ms: a simple rule takes microseconds per
    /// event, so this only trips on loops, and it bounds how long one tenant can hold a core.
    pub deadline: Duration,
    /// Linear-memory cap per instance. Default 32 MiB: a Rust rule needs ~1–2 MiB plus the
    /// batch it is handed; the cap also bounds what the host can be made to lift on return.
    pub memory_bytes: usize,
    /// Deterministic instruction budget per call, when the engine was built with fuel
    /// ([`EngineOptions::fuel`]). Default `None`: epochs alone are cheaper (~10% vs ~25%).
    pub fuel: Option<u64>,
    /// Maximum targets one decision (one event) may return. Default 1,024: more than any
    /// sensible rule emits, small enough that one event cannot flood the backend.
    pub max_targets: usize,
    /// Maximum total bytes of target values in one decision. Default 64 KiB.
    pub max_target_bytes: usize,
    /// Bytes a rule may hand the host in one crossing: all of a batch's decisions when
    /// `evaluate` returns, or one log line. Wasmtime counts them while lifting, before the host
    /// allocates, so this bounds what a rule can make the host allocate; the per-decision caps
    /// above are checked after. Default 16 MiB (wasmtime's own default is 128 MiB), above what
    /// a batch of 256 events at the per-decision caps can legitimately return.
    pub max_output_bytes: usize,
    /// Log records a rule may write per evaluation; the rest are dropped and counted.
    /// Default 64.
    pub max_log_records: usize,
    /// Bytes of a rule's stderr kept to explain a panic. Default 4 KiB.
    pub stderr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(100),
            memory_bytes: 32 << 20,
            fuel: None,
            max_targets: 1024,
            max_target_bytes: 64 << 10,
            max_output_bytes: 16 << 20,
            max_log_records: 64,
            stderr_bytes: 4 << 10,
        }
    }
}

impl Limits {
    /// Sets the deadline from milliseconds given by a user (a manifest, a fixture); at least 1.
    pub fn set_deadline_ms(&mut self, ms: u64) -> Result<(), String> {
        if ms == 0 {
            return Err("must be at least 1".into());
        }
        self.deadline = Duration::from_millis(ms);
        Ok(())
    }

    /// Sets the memory cap from MiB given by a user; between 1 and `max_bytes` (the engine's
    /// [`EngineOptions::max_memory_bytes`]: a cap past it could never be granted).
    pub fn set_memory_mib(&mut self, mib: u64, max_bytes: usize) -> Result<(), String> {
        let bytes = usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        if mib == 0 || bytes > max_bytes {
            return Err(format!(
                "must be between 1 and {} (the engine's largest memory), got {mib}",
                max_bytes >> 20
            ));
        }
        self.memory_bytes = bytes;
        Ok(())
    }

    /// The deadline in epoch ticks, rounded up, plus one tick for the partly elapsed one.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos().max(1);
        let ticks = self.deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }
}

/// Process-wide engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Instrument code for fuel so [`Limits::fuel`] can be enforced. Default off: it costs
    /// every rule ~25% even when no budget is set.
    pub fuel: bool,
    /// Use wasmtime's pooling allocator (fast instantiation from pre-reserved slots). Default
    /// on when the address space allows it; see [`crate::engine`] for the fallback.
    pub pooling: bool,
    /// Instance slots in the pool: the most rule evaluations that can be live at once.
    /// Default 256 (each slot reserves address space, not memory).
    pub pool_instances: u32,
    /// Bytes of each pooled memory kept resident between instances and reset in place rather
    /// than returned to the kernel. Each batch runs in a fresh instance, and returning pages
    /// costs a page fault per touched page plus a TLB shootdown on every core; where the kernel
    /// has `PAGEMAP_SCAN` (Linux 6.7+) only the dirtied pages are reset. Default 4 MiB.
    pub keep_resident_bytes: usize,
    /// Largest linear memory any rule may be granted; per-rule caps ([`Limits::memory_bytes`])
    /// must not exceed it. Default 256 MiB.
    pub max_memory_bytes: usize,
    /// WebAssembly stack per call. Default 512 KiB (wasmtime's): deep recursion traps
    /// cleanly long before the host thread's stack is at risk.
    pub max_wasm_stack: usize,
    /// Largest component file the engine loads, checked before reading or compiling it, so
    /// a manifest cannot make the host read and compile without bound. Default 64 MiB: a Rust
    /// rule is 0.1–2 MB, a Python rule built with componentize-py about 19 MB.
    pub max_component_bytes: usize,
    /// The defaults new rule sets get.
    pub default_limits: Limits,
    /// A directory for precompiled components (created `0700`; see
    /// [`crate::sandbox::artifacts`]), so a restart or reload does not compile again.
    /// Default `None` for the library (nothing written to disk); the `tagbust` command uses
    /// `$XDG_CACHE_HOME/tagbust` (or `~/.cache/tagbust`) unless told otherwise.
    pub artifact_dir: Option<std::path::PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fuel: false,
            pooling: true,
            pool_instances: 256,
            keep_resident_bytes: 4 << 20,
            max_memory_bytes: 256 << 20,
            max_wasm_stack: 512 << 10,
            max_component_bytes: 64 << 20,
            default_limits: Limits::default(),
            artifact_dir: None,
        }
    }
}
