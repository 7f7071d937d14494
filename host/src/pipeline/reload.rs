//! Replacing tenants' setups while the host runs: whole sets, one tenant, or a manifest
//! reloaded from disk. Batches already evaluating finish with the setup they started with.

use std::path::Path;
use std::sync::Arc;

use super::{Tagbust, lock};
use crate::backend::Backend;
use crate::sandbox::{Engine, EngineOptions};
use crate::tenant::manifest::{self, ManifestError};
use crate::tenant::tenants::TenantInForce;
use crate::tenant::{TenantSetup, Tenants};

/// What a [`Tagbust::reload`] swapped in, and what it replaced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reloaded {
    pub tenant: String,
    pub now: TenantInForce,
    pub previous: Option<TenantInForce>,
}

impl<B: Backend> Tagbust<B> {
    /// Replaces the tenant setups; batches already evaluating finish with the old ones.
    pub fn set_tenants(&self, tenants: Tenants) {
        *self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(tenants);
    }

    /// Replaces (or adds) one tenant's setup atomically; batches already evaluating finish
    /// with the old one.
    pub fn set_tenant(&self, tenant: &str, setup: TenantSetup) {
        let mut guard = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut next = Tenants::clone(&guard);
        next.set(tenant, Arc::new(setup));
        *guard = Arc::new(next);
    }

    /// Hot reload: loads the tenant manifest at `path` and swaps its tenant's setup in.
    ///
    /// The rules compile on the blocking pool, with the host's engine (see
    /// [`super::Builder::engine`]), while the old version keeps serving (identical component
    /// bytes are not compiled again); on success the new setup replaces the old one
    /// atomically, and batches in flight finish on the old one. A broken manifest or component
    /// is refused with the file and field to blame, and the old version stays live. The
    /// versions and sha256 in force show in [`Tagbust::stats`] (`tenants`) and in every
    /// explain record (`rule_version`, `rule_sha256`).
    pub async fn reload(&self, path: &Path) -> Result<Reloaded, ManifestError> {
        let refused = |message: String| ManifestError {
            file: path.display().to_string(),
            field: String::new(),
            message,
        };
        let loaded = match self.engine() {
            Ok(engine) => {
                let owned = path.to_path_buf();
                tokio::task::spawn_blocking(move || {
                    crate::sandbox::blocking::on_blocking_thread(|| manifest::load(&engine, &owned))
                })
                .await
                .map_err(|e| refused(format!("loading was interrupted: {e}")))
                .and_then(|r| r)
            }
            Err(e) => Err(refused(format!("cannot build the engine: {e}"))),
        };
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                self.inner.stats.update(|s| s.reloads_failed += 1);
                tracing::warn!(error = %e, "manifest reload refused; the old version stays live");
                return Err(e);
            }
        };
        let previous = self
            .tenants()
            .get_own(&loaded.tenant)
            .map(|setup| setup.in_force());
        let now = loaded.setup.in_force();
        self.set_tenant(&loaded.tenant, loaded.setup);
        self.inner.stats.update(|s| s.reloads += 1);
        tracing::info!(tenant = %loaded.tenant, manifest = %path.display(), "tenant reloaded");
        Ok(Reloaded {
            tenant: loaded.tenant,
            now,
            previous,
        })
    }

    /// The host's engine, made with the defaults on first use when the builder got none.
    fn engine(&self) -> Result<Engine, crate::sandbox::EngineError> {
        let mut slot = lock(&self.inner.engine);
        if let Some(engine) = &*slot {
            return Ok(engine.clone());
        }
        let engine = Engine::new(EngineOptions::default())?;
        *slot = Some(engine.clone());
        Ok(engine)
    }
}
