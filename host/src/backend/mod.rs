//! The cache backend contract: what the pipeline applies, and what services use to fill caches.
//!
//! Every operation names its tenant, and a backend keeps tenants' keyspaces apart, so a rule of
//! one tenant cannot reach another's data whatever it returns. The in-memory backend
//! ([`MemoryBackend`]) is the embedded default; the Redis backend implements the same trait.

pub mod memory;
pub mod redis;
mod tenant_cache;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use memory::MemoryBackend;
pub use redis::{RedisBackend, RedisOptions, Topology};

/// What one invalidation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Remove every entry labelled with the tag.
    Tag,
    /// Remove one entry.
    Key,
    /// Remove every entry whose key matches the glob.
    Pattern,
    /// Bump the tag's version: entries labelled with it read as misses from now on (O(1)).
    TagVersion,
    /// Remove every entry of the tenant.
    Tenant,
}

/// One invalidation for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Op {
    pub tenant: Arc<str>,
    pub kind: OpKind,
    /// The tag, key or pattern (empty for `Tenant`).
    pub value: String,
}

/// Most removed keys a backend lists per operation (the count is always exact).
pub const MAX_LISTED_KEYS: usize = 64;

/// What one operation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OpOutcome {
    /// Entries removed, including key dependents removed transitively.
    pub removed: u64,
    /// The first [`MAX_LISTED_KEYS`] removed keys, for explain output.
    pub keys: Vec<String>,
    /// Keys a pattern scan looked at (backends that scan; 0 otherwise).
    #[serde(skip_serializing_if = "is_zero")]
    pub scanned: u64,
    /// Why the backend did not (fully) apply the operation, e.g. a pattern matching
    /// everything, or a scan stopped by its cost guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An entry to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub tenant: String,
    pub key: String,
    pub value: Vec<u8>,
    pub tags: Vec<String>,
    /// Time to live; `None` keeps the entry until it is invalidated. A TTL is the backstop
    /// that bounds the damage of any invalidation lost elsewhere: set one.
    pub ttl: Option<Duration>,
    /// Keys this entry is derived from: invalidating any of them removes this one too,
    /// transitively.
    pub depends_on: Vec<String>,
}

/// A promise to fill one key, taken *before* loading from the source of truth.
///
/// Any invalidation that could affect the key (the key itself, one of its tags, a matching
/// pattern, the tenant) voids the lease, and a void lease cannot store: the stale-set race
/// (reader loads the old row, writer commits and invalidates, reader stores the old row) is
/// impossible through [`Backend::complete_fill`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillLease {
    pub id: u64,
    pub tenant: String,
    pub key: String,
    pub tags: Vec<String>,
    /// Backend-specific state the lease was taken with (the Redis backend keeps the key's
    /// generation, the tenant's epoch and the tags' versions here).
    pub token: Vec<String>,
}

impl FillLease {
    /// A lease fills exactly the entry it was taken for: same tenant, key and tags (the tags
    /// are what the lease watches for invalidations).
    pub fn check(&self, entry: &NewEntry) -> Result<(), BackendError> {
        if entry.tenant == self.tenant && entry.key == self.key && entry.tags == self.tags {
            return Ok(());
        }
        Err(BackendError::Refused(format!(
            "lease for {}/{} cannot fill {}/{} (tenant, key and tags must match)",
            self.tenant, self.key, entry.tenant, entry.key
        )))
    }
}

/// What became of a guarded fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FillOutcome {
    Stored,
    /// An invalidation happened during the load (or the lease expired): nothing was stored.
    Refused,
}

/// Why a backend operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("backend refused the operation: {0}")]
    Refused(String),
}

/// A cache the pipeline applies invalidations to and services fill.
///
/// Implementations must make `apply` idempotent (re-applying a batch after an unknown outcome
/// only over-invalidates) and must keep tenants apart.
pub trait Backend: Send + Sync + 'static {
    /// Applies `ops` in order; one outcome per op.
    fn apply(
        &self,
        ops: &[Op],
    ) -> impl Future<Output = Result<Vec<OpOutcome>, BackendError>> + Send;

    /// Stores an entry unconditionally (prefer the guarded fill when the value was loaded
    /// from a database).
    fn set(&self, entry: NewEntry) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Stores many entries unconditionally, as `set` would one by one; a backend that can
    /// write them in fewer round trips does (Redis: a few script calls per thousand). Not
    /// atomic as a whole: on an error some entries may be stored, and sending the batch again
    /// is safe.
    fn set_many(
        &self,
        entries: Vec<NewEntry>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Reads an entry; expired and lazily-invalidated entries are misses.
    fn get(
        &self,
        tenant: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, BackendError>> + Send;

    /// Takes a fill lease for `key` with the tags the entry will carry.
    fn begin_fill(
        &self,
        tenant: &str,
        key: &str,
        tags: &[String],
    ) -> impl Future<Output = Result<FillLease, BackendError>> + Send;

    /// Stores `entry` if the lease is still valid; the entry's tenant and key must be the
    /// lease's.
    fn complete_fill(
        &self,
        lease: FillLease,
        entry: NewEntry,
    ) -> impl Future<Output = Result<FillOutcome, BackendError>> + Send;

    /// Removes expired and lazily-invalidated entries, at most `budget` of them; returns how
    /// many it removed. Called periodically by the host so indexes never leak.
    fn sweep(&self, budget: usize) -> impl Future<Output = Result<usize, BackendError>> + Send;
}
