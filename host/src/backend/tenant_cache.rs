//! One tenant's part of the in-memory cache: entries and every index over them, kept
//! consistent by the few methods here.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::time::Instant;

use super::{MAX_LISTED_KEYS, OpOutcome};
use crate::model::glob;

/// Adds `key` to the set under `tag`.
pub(super) fn index_add(index: &mut HashMap<String, HashSet<String>>, tag: &str, key: &str) {
    index
        .entry(tag.to_owned())
        .or_default()
        .insert(key.to_owned());
}

/// Removes `key` from the set under `tag`; true when the set is gone.
fn index_remove(index: &mut HashMap<String, HashSet<String>>, tag: &str, key: &str) -> bool {
    let Some(keys) = index.get_mut(tag) else {
        return false;
    };
    keys.remove(key);
    if keys.is_empty() {
        index.remove(tag);
        return true;
    }
    false
}

#[derive(Default)]
pub(super) struct TenantCache {
    pub(super) entries: HashMap<String, Entry>,
    pub(super) tag_index: HashMap<String, HashSet<String>>,
    /// tag → keys that inherit it from an entry they derive from (not invalidated by the tag
    /// eagerly, only through its version).
    pub(super) inherited_index: HashMap<String, HashSet<String>>,
    pub(super) tag_versions: HashMap<String, u64>,
    /// key → keys derived from it.
    pub(super) dependents: HashMap<String, HashSet<String>>,
    pub(super) leases: HashMap<u64, Lease>,
    pub(super) leases_by_key: HashMap<String, HashSet<u64>>,
}

pub(super) struct Entry {
    pub(super) value: Vec<u8>,
    /// Own tags (indexed) with the tag version when stored.
    pub(super) tags: Vec<(String, u64)>,
    /// Tags of the entries this one derives from, with their versions: a lazy bump of one of
    /// them makes this entry stale too, without touching it.
    pub(super) inherited: Vec<(String, u64)>,
    pub(super) expires_at: Option<Instant>,
    pub(super) depends_on: Vec<String>,
}

pub(super) struct Lease {
    pub(super) key: String,
    pub(super) tags: Vec<String>,
    pub(super) void: bool,
    pub(super) expires_at: Instant,
}

/// Records a removed key in an outcome (listing the first few).
pub(super) fn record(out: &mut OpOutcome, key: &str) {
    out.removed += 1;
    if out.keys.len() < MAX_LISTED_KEYS {
        out.keys.push(key.to_owned());
    }
}

impl TenantCache {
    pub(super) fn version(&self, tag: &str) -> u64 {
        self.tag_versions.get(tag).copied().unwrap_or(0)
    }

    pub(super) fn is_stale(&self, entry: &Entry) -> bool {
        entry
            .tags
            .iter()
            .chain(&entry.inherited)
            .any(|(tag, v)| self.version(tag) > *v)
    }

    /// Removes an entry from every index; no cascade (expiry and staleness are not changes of
    /// the source data).
    pub(super) fn drop_entry(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        for (tag, _) in &entry.tags {
            if index_remove(&mut self.tag_index, tag, key) {
                self.forget_version_if_unused(tag);
            }
        }
        for (tag, _) in &entry.inherited {
            if index_remove(&mut self.inherited_index, tag, key) {
                self.forget_version_if_unused(tag);
            }
        }
        for dep in &entry.depends_on {
            index_remove(&mut self.dependents, dep, key);
        }
        Some(entry)
    }

    /// Keys that carry `tag`, their own or inherited.
    pub(super) fn keys_with_tag(&self, tag: &str) -> Vec<String> {
        self.tag_index
            .get(tag)
            .into_iter()
            .chain(self.inherited_index.get(tag))
            .flatten()
            .cloned()
            .collect()
    }

    pub(super) fn forget_version_if_unused(&mut self, tag: &str) {
        let leased = self
            .leases
            .values()
            .any(|l| l.tags.iter().any(|t| t == tag));
        if !leased && !self.tag_index.contains_key(tag) && !self.inherited_index.contains_key(tag) {
            self.tag_versions.remove(tag);
        }
    }

    /// Removes a lease from both lease maps.
    pub(super) fn take_lease(&mut self, id: u64) -> Option<Lease> {
        let lease = self.leases.remove(&id)?;
        if let Some(ids) = self.leases_by_key.get_mut(&lease.key) {
            ids.remove(&id);
            if ids.is_empty() {
                self.leases_by_key.remove(&lease.key);
            }
        }
        Some(lease)
    }

    pub(super) fn void_leases_for_key(&mut self, key: &str) {
        if let Some(ids) = self.leases_by_key.get(key) {
            for id in ids {
                if let Some(lease) = self.leases.get_mut(id) {
                    lease.void = true;
                }
            }
        }
    }

    pub(super) fn void_leases(&mut self, hit: impl Fn(&Lease) -> bool) {
        for lease in self.leases.values_mut() {
            if hit(lease) {
                lease.void = true;
            }
        }
    }

    /// Invalidates `key` and, transitively, every key derived from it.
    pub(super) fn invalidate_key(&mut self, key: &str, out: &mut OpOutcome) {
        if !self.dependents.contains_key(key) {
            // The common case: nothing derives from the key, so no traversal is needed.
            self.void_leases_for_key(key);
            if self.drop_entry(key).is_some() {
                record(out, key);
            }
            return;
        }
        let mut queue = VecDeque::from([key.to_owned()]);
        let mut seen = HashSet::new();
        while let Some(k) = queue.pop_front() {
            if !seen.insert(k.clone()) {
                continue;
            }
            self.void_leases_for_key(&k);
            if self.drop_entry(&k).is_some() {
                record(out, &k);
            }
            if let Some(derived) = self.dependents.remove(&k) {
                queue.extend(derived);
            }
        }
    }

    pub(super) fn invalidate_tag(&mut self, tag: &str, out: &mut OpOutcome) {
        self.void_leases(|l| l.tags.iter().any(|t| t == tag));
        let keys: Vec<String> = self
            .tag_index
            .get(tag)
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            self.invalidate_key(&key, out);
        }
    }

    pub(super) fn invalidate_pattern(&mut self, pattern: &str, out: &mut OpOutcome) {
        if glob::is_literal(pattern) {
            return self.invalidate_key(pattern, out);
        }
        self.void_leases(|l| glob::matches(pattern, &l.key));
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| glob::matches(pattern, k))
            .cloned()
            .collect();
        for key in keys {
            self.invalidate_key(&key, out);
        }
    }

    /// O(1) in the number of entries: only the version moves; the entries that carry the tag
    /// read as misses from now on and are removed when read or swept.
    pub(super) fn bump_tag(&mut self, tag: &str, out: &mut OpOutcome) {
        self.void_leases(|l| l.tags.iter().any(|t| t == tag));
        if let Some(keys) = self.tag_index.get(tag) {
            out.removed += keys.len() as u64;
            out.keys.extend(keys.iter().take(MAX_LISTED_KEYS).cloned());
        }
        *self.tag_versions.entry(tag.to_owned()).or_insert(0) += 1;
    }
}
