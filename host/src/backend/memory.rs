//! The embedded default backend: a tagged cache in this process's memory.
//!
//! Per tenant: entries, a tag → keys index, tag versions (for `lazy`), key dependencies
//! (this key is derived from that one), and fill leases. Nothing leaks: removed and expired
//! entries leave every index at once, lazily-invalidated ones when read or swept, and a tag's
//! version is forgotten once no entry carries the tag.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::tenant_cache::{Entry, Lease, TenantCache, index_add, record};
use super::{Backend, BackendError, FillLease, FillOutcome, NewEntry, Op, OpKind, OpOutcome};

/// How long a fill lease stays valid: a load slower than this is refused (it may have missed
/// an invalidation the lease table no longer remembers). Default 30 s.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// An in-memory tagged cache. Cheap operations under one lock; share it behind an `Arc`.
pub struct MemoryBackend {
    state: Mutex<State>,
    lease_ttl: Duration,
}

#[derive(Default)]
struct State {
    tenants: HashMap<String, TenantCache>,
    next_lease: u64,
    /// (expiry, tenant, key); stale items (the entry changed or left) are skipped when popped.
    expiries: BinaryHeap<Reverse<(Instant, String, String)>>,
    /// Tags bumped lazily whose stale entries the sweeper still has to remove.
    stale_tags: VecDeque<(String, String)>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::with_lease_ttl(DEFAULT_LEASE_TTL)
    }

    pub fn with_lease_ttl(lease_ttl: Duration) -> MemoryBackend {
        MemoryBackend {
            state: Mutex::new(State::default()),
            lease_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation leaves the maps consistent between statements that could panic (none
        // of which depend on input), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of live entries of `tenant` (expired or stale ones not yet swept included).
    pub fn len(&self, tenant: &str) -> usize {
        self.lock()
            .tenants
            .get(tenant)
            .map_or(0, |t| t.entries.len())
    }

    /// True when `tenant` has no entries.
    pub fn is_empty(&self, tenant: &str) -> bool {
        self.len(tenant) == 0
    }

    /// Sizes of every index, for tests that check nothing leaks.
    pub fn index_sizes(&self) -> IndexSizes {
        let state = self.lock();
        let mut s = IndexSizes::default();
        for t in state.tenants.values() {
            s.entries += t.entries.len();
            s.tags += t.tag_index.len();
            s.tag_memberships += t.tag_index.values().map(HashSet::len).sum::<usize>();
            s.tag_versions += t.tag_versions.len();
            s.dependents += t.dependents.len();
            s.leases += t.leases.len();
        }
        s.pending_expiries = state.expiries.len();
        s
    }

    fn store(&self, state: &mut State, entry: NewEntry) {
        let now = Instant::now();
        let expires_at = entry.ttl.map(|ttl| now + ttl);
        let tenant = state.tenants.entry(entry.tenant.clone()).or_default();
        tenant.drop_entry(&entry.key);
        let tags: Vec<(String, u64)> = entry
            .tags
            .iter()
            .map(|t| (t.clone(), tenant.version(t)))
            .collect();
        let mut inherited = Vec::new();
        for dep in &entry.depends_on {
            if let Some(parent) = tenant.entries.get(dep) {
                inherited.extend(parent.tags.iter().cloned());
                inherited.extend(parent.inherited.iter().cloned());
            }
            index_add(&mut tenant.dependents, dep, &entry.key);
        }
        for (tag, _) in &tags {
            index_add(&mut tenant.tag_index, tag, &entry.key);
        }
        for (tag, _) in &inherited {
            index_add(&mut tenant.inherited_index, tag, &entry.key);
        }
        tenant.entries.insert(
            entry.key.clone(),
            Entry {
                value: entry.value,
                tags,
                inherited,
                expires_at,
                depends_on: entry.depends_on,
            },
        );
        if let Some(at) = expires_at {
            state.expiries.push(Reverse((at, entry.tenant, entry.key)));
        }
    }
}

/// Index sizes of a [`MemoryBackend`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexSizes {
    pub entries: usize,
    pub tags: usize,
    pub tag_memberships: usize,
    pub tag_versions: usize,
    pub dependents: usize,
    pub leases: usize,
    pub pending_expiries: usize,
}

impl Backend for MemoryBackend {
    async fn apply(&self, ops: &[Op]) -> Result<Vec<OpOutcome>, BackendError> {
        let mut state = self.lock();
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let mut out = OpOutcome::default();
            if op.kind == OpKind::Tenant {
                if let Some(tenant) = state.tenants.remove(&*op.tenant) {
                    for key in tenant.entries.keys() {
                        record(&mut out, key);
                    }
                }
                outcomes.push(out);
                continue;
            }
            let Some(tenant) = state.tenants.get_mut(&*op.tenant) else {
                outcomes.push(out);
                continue;
            };
            match op.kind {
                OpKind::Tag => tenant.invalidate_tag(&op.value, &mut out),
                OpKind::Key => tenant.invalidate_key(&op.value, &mut out),
                OpKind::Pattern => tenant.invalidate_pattern(&op.value, &mut out),
                OpKind::TagVersion => {
                    tenant.bump_tag(&op.value, &mut out);
                    state
                        .stale_tags
                        .push_back((op.tenant.to_string(), op.value.clone()));
                }
                OpKind::Tenant => {}
            }
            outcomes.push(out);
        }
        Ok(outcomes)
    }

    async fn set(&self, entry: NewEntry) -> Result<(), BackendError> {
        let mut state = self.lock();
        self.store(&mut state, entry);
        Ok(())
    }

    async fn set_many(&self, entries: Vec<NewEntry>) -> Result<(), BackendError> {
        let mut state = self.lock();
        for entry in entries {
            self.store(&mut state, entry);
        }
        Ok(())
    }

    async fn get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let mut state = self.lock();
        let Some(cache) = state.tenants.get_mut(tenant) else {
            return Ok(None);
        };
        let Some(entry) = cache.entries.get(key) else {
            return Ok(None);
        };
        let expired = entry.expires_at.is_some_and(|at| at <= Instant::now());
        if expired || cache.is_stale(entry) {
            cache.drop_entry(key);
            return Ok(None);
        }
        Ok(Some(entry.value.clone()))
    }

    async fn begin_fill(
        &self,
        tenant: &str,
        key: &str,
        tags: &[String],
    ) -> Result<FillLease, BackendError> {
        let mut state = self.lock();
        state.next_lease += 1;
        let id = state.next_lease;
        let cache = state.tenants.entry(tenant.to_owned()).or_default();
        cache.leases.insert(
            id,
            Lease {
                key: key.to_owned(),
                tags: tags.to_vec(),
                void: false,
                expires_at: Instant::now() + self.lease_ttl,
            },
        );
        cache
            .leases_by_key
            .entry(key.to_owned())
            .or_default()
            .insert(id);
        Ok(FillLease {
            id,
            tenant: tenant.to_owned(),
            key: key.to_owned(),
            tags: tags.to_vec(),
            token: Vec::new(),
        })
    }

    async fn complete_fill(
        &self,
        lease: FillLease,
        entry: NewEntry,
    ) -> Result<FillOutcome, BackendError> {
        lease.check(&entry)?;
        let mut state = self.lock();
        // A tenant cleared since the lease was taken has no lease table: refused.
        let held = state
            .tenants
            .get_mut(&lease.tenant)
            .and_then(|cache| cache.take_lease(lease.id));
        let valid = held.is_some_and(|l| !l.void && l.expires_at > Instant::now());
        if !valid {
            return Ok(FillOutcome::Refused);
        }
        self.store(&mut state, entry);
        Ok(FillOutcome::Stored)
    }

    async fn sweep(&self, budget: usize) -> Result<usize, BackendError> {
        let mut state = self.lock();
        let now = Instant::now();
        let mut removed = 0;
        while removed < budget {
            let due = matches!(state.expiries.peek(), Some(Reverse((at, _, _))) if *at <= now);
            if !due {
                break;
            }
            let Some(Reverse((at, tenant, key))) = state.expiries.pop() else {
                break;
            };
            if let Some(cache) = state.tenants.get_mut(&tenant)
                && cache
                    .entries
                    .get(&key)
                    .is_some_and(|e| e.expires_at == Some(at))
            {
                cache.drop_entry(&key);
                removed += 1;
            }
        }
        while removed < budget {
            let Some((tenant, tag)) = state.stale_tags.pop_front() else {
                break;
            };
            let Some(cache) = state.tenants.get_mut(&tenant) else {
                continue;
            };
            let carrying = cache.keys_with_tag(&tag);
            let stale: Vec<String> = carrying
                .iter()
                .filter(|k| cache.entries.get(*k).is_some_and(|e| cache.is_stale(e)))
                .take(budget - removed)
                .cloned()
                .collect();
            for key in &stale {
                cache.drop_entry(key);
            }
            removed += stale.len();
            let left = carrying
                .iter()
                .any(|k| cache.entries.get(k).is_some_and(|e| cache.is_stale(e)));
            if left {
                state.stale_tags.push_front((tenant, tag));
            } else {
                cache.forget_version_if_unused(&tag);
            }
        }
        for cache in state.tenants.values_mut() {
            let expired: Vec<u64> = cache
                .leases
                .iter()
                .filter(|(_, l)| l.expires_at <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                cache.take_lease(id);
            }
        }
        state.tenants.retain(|_, c| {
            !(c.entries.is_empty() && c.leases.is_empty() && c.dependents.is_empty())
        });
        Ok(removed)
    }
}
