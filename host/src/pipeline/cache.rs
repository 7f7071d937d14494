//! The cache client services use: read, store, and fill without the stale-set race.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::backend::{Backend, BackendError, FillLease, FillOutcome, NewEntry};
use crate::model::ingest::check_tenant;
use crate::model::text::truncate;
use crate::pipeline::stats::Stats;

/// A handle on the host's backend that counts hits, misses and fills.
pub struct Cache<B: Backend> {
    backend: Arc<B>,
    stats: Arc<Stats>,
}

impl<B: Backend> Clone for Cache<B> {
    fn clone(&self) -> Self {
        Cache {
            backend: self.backend.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// What a guarded fill stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillSpec {
    pub tenant: String,
    pub key: String,
    pub tags: Vec<String>,
    pub ttl: Option<Duration>,
    pub depends_on: Vec<String>,
}

/// Why [`Cache::get_or_fill`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FillError<E> {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("loading the value failed: {0}")]
    Load(E),
}

/// A tenant id is part of every backend key (`tb:{tenant}:…`): one that is not
/// `[A-Za-z0-9._-]` could spell its way into another tenant's keys, so it is refused.
fn valid_tenant(tenant: &str) -> Result<(), BackendError> {
    check_tenant(tenant).map_err(|why| {
        let shown = truncate(tenant, 64);
        BackendError::Refused(format!("tenant {shown:?}: {why}"))
    })
}

impl<B: Backend> Cache<B> {
    pub(crate) fn new(backend: Arc<B>, stats: Arc<Stats>) -> Cache<B> {
        Cache { backend, stats }
    }

    /// Stores an entry unconditionally. For values loaded from a database use
    /// [`Cache::get_or_fill`], which cannot store a value an invalidation has overtaken.
    pub async fn set(&self, entry: NewEntry) -> Result<(), BackendError> {
        valid_tenant(&entry.tenant)?;
        self.backend.set(entry).await
    }

    /// Stores many entries unconditionally, in as few round trips as the backend allows
    /// (Redis: one pipeline of script calls, each a few hundred entries). Every tenant is
    /// checked before anything is stored. Not atomic as a whole: after an error some entries
    /// may be stored, and sending the same batch again is safe.
    pub async fn set_many(&self, entries: Vec<NewEntry>) -> Result<(), BackendError> {
        for entry in &entries {
            valid_tenant(&entry.tenant)?;
        }
        self.backend.set_many(entries).await
    }

    /// Reads an entry, counting hits and misses.
    pub async fn get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        valid_tenant(tenant)?;
        let value = self.backend.get(tenant, key).await?;
        let counter = if value.is_some() {
            &self.stats.cache_hits
        } else {
            &self.stats.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(value)
    }

    /// Takes a fill lease; see [`FillLease`].
    pub async fn begin_fill(
        &self,
        tenant: &str,
        key: &str,
        tags: &[String],
    ) -> Result<FillLease, BackendError> {
        valid_tenant(tenant)?;
        self.backend.begin_fill(tenant, key, tags).await
    }

    /// Stores `value` under the lease unless an invalidation overtook the load.
    pub async fn complete_fill(
        &self,
        lease: FillLease,
        spec: &FillSpec,
        value: Vec<u8>,
    ) -> Result<FillOutcome, BackendError> {
        let entry = NewEntry {
            tenant: spec.tenant.clone(),
            key: spec.key.clone(),
            value,
            tags: spec.tags.clone(),
            ttl: spec.ttl,
            depends_on: spec.depends_on.clone(),
        };
        let outcome = self.backend.complete_fill(lease, entry).await?;
        let counter = match outcome {
            FillOutcome::Stored => &self.stats.fills_stored,
            FillOutcome::Refused => &self.stats.fills_refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(outcome)
    }

    /// Read-through with the guard: a hit returns the cached value; a miss takes a lease,
    /// runs `load`, and stores the loaded value only if nothing invalidated the key (or its
    /// tags) meanwhile. The loaded value is returned either way: it is as fresh as the load.
    pub async fn get_or_fill<F, Fut, E>(
        &self,
        spec: &FillSpec,
        load: F,
    ) -> Result<Vec<u8>, FillError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        if let Some(value) = self.get(&spec.tenant, &spec.key).await? {
            return Ok(value);
        }
        let lease = self.begin_fill(&spec.tenant, &spec.key, &spec.tags).await?;
        let value = load().await.map_err(FillError::Load)?;
        self.complete_fill(lease, spec, value.clone()).await?;
        Ok(value)
    }
}
