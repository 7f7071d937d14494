//! The process-wide WebAssembly engine: configuration, the epoch ticker, the host linker, and
//! the compile cache.
//!
//! One [`Engine`] per process. Components are compiled once per content hash, however many
//! tenants load the same bytes (and, with an artifact directory, once per machine: see
//! [`super::artifacts`]), and every call runs in a fresh `Store`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::sandbox::artifacts::{self, ArtifactCache, ArtifactCounts};
use crate::sandbox::bindings::{v0_1, v0_2};
use crate::sandbox::error::{EngineError, LoadError};
use crate::sandbox::limits::{EPOCH_TICK, EngineOptions};
use crate::sandbox::store::StoreState;

/// The shared engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    wasm: wasmtime::Engine,
    linker: Linker<StoreState>,
    options: EngineOptions,
    pooling: bool,
    /// Compiled components by sha256 of their bytes.
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    /// Precompiled components on disk ([`EngineOptions::artifact_dir`]).
    artifacts: Option<ArtifactCache>,
}

impl Engine {
    /// Builds the engine with these options and starts its epoch ticker.
    ///
    /// Pooling reserves address space for every slot up front; on a machine where that
    /// reservation fails (small virtual address spaces, tight `ulimit -v`) the engine falls
    /// back to on-demand allocation, which is slower to instantiate but otherwise identical.
    pub fn new(options: EngineOptions) -> Result<Engine, EngineError> {
        let (wasm, pooling) = if options.pooling {
            match wasmtime::Engine::new(&config(&options, true)) {
                Ok(engine) => (engine, true),
                Err(e) => {
                    tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand");
                    (build(&options, false)?, false)
                }
            }
        } else {
            (build(&options, false)?, false)
        };
        let mut linker = Linker::new(&wasm);
        super::wasi::link(&mut linker).map_err(|e| EngineError::Link(e.to_string()))?;
        // Both contracts' imports: a component links only the versions it imports.
        v0_1::RuleComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Link(e.to_string()))?;
        v0_2::RuleComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Link(e.to_string()))?;
        let artifacts = match &options.artifact_dir {
            Some(dir) => Some(ArtifactCache::open(dir, &wasm)?),
            None => None,
        };
        spawn_ticker(&wasm)?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                wasm,
                linker,
                options,
                pooling,
                compiled: Mutex::new(HashMap::new()),
                artifacts,
            }),
        })
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// True when instances come from the pooling allocator.
    pub fn is_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Number of distinct components compiled so far.
    pub fn compiled_count(&self) -> usize {
        self.lock_cache().len()
    }

    /// What the on-disk artifact cache did, when the engine has one.
    pub fn artifact_counts(&self) -> Option<ArtifactCounts> {
        self.inner.artifacts.as_ref().map(ArtifactCache::counts)
    }

    /// Where the artifact of the component with this sha256 is (or would be) stored.
    pub fn artifact_path(&self, sha256: &[u8; 32]) -> Option<std::path::PathBuf> {
        self.inner.artifacts.as_ref().map(|a| a.path_of(sha256))
    }

    pub(crate) fn wasm(&self) -> &wasmtime::Engine {
        &self.inner.wasm
    }

    pub(crate) fn linker(&self) -> &Linker<StoreState> {
        &self.inner.linker
    }

    /// Compiles `bytes` (or returns the cached compilation of identical bytes).
    pub(crate) fn compile(
        &self,
        file: &str,
        bytes: &[u8],
    ) -> Result<([u8; 32], Component), LoadError> {
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(component) = self.lock_cache().get(&hash) {
            return Ok((hash, component.clone()));
        }
        // Compile (or read the artifact) outside the lock: other loads should proceed.
        let component = match &self.inner.artifacts {
            Some(cache) => cache.load_or_compile(&self.inner.wasm, file, &hash, bytes)?,
            None => artifacts::compile(&self.inner.wasm, file, bytes)?,
        };
        let component = self.lock_cache().entry(hash).or_insert(component).clone();
        Ok((hash, component))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Component>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts),
        // so a poisoned lock is still safe to use.
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn build(options: &EngineOptions, pooling: bool) -> Result<wasmtime::Engine, EngineError> {
    wasmtime::Engine::new(&config(options, pooling)).map_err(|e| EngineError::Config(e.to_string()))
}

fn config(options: &EngineOptions, pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Deadlines trap through epochs: cheap (~10%), and a guest cannot skip the check.
    config.epoch_interruption(true);
    config.consume_fuel(options.fuel);
    config.max_wasm_stack(options.max_wasm_stack);
    if pooling {
        let n = options.pool_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            // A Rust wasip2 component holds the main module plus a few shim modules.
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .max_memory_size(options.max_memory_bytes)
            .linear_memory_keep_resident(options.keep_resident_bytes)
            .table_keep_resident(options.keep_resident_bytes.min(64 << 10))
            .pagemap_scan(wasmtime::Enabled::Auto)
            .decommit_batch_size(16);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances the epoch every [`EPOCH_TICK`] on a dedicated thread, so a saturated async
/// executor can never stop deadlines. The thread holds only a weak handle and exits once the
/// engine is dropped.
fn spawn_ticker(engine: &wasmtime::Engine) -> Result<(), EngineError> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("tagbust-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .map(|_| ())
        .map_err(|e| EngineError::Config(format!("cannot start the epoch ticker: {e}")))
}
