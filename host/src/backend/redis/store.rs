//! Writing entries: the host encodes them (see entry.lua) and `store.lua` stores them with
//! Redis's time; `set_many` as pipelined calls, each bounded by
//! [`RedisOptions::entries_per_call`](super::RedisOptions::entries_per_call).

use std::collections::HashMap;

use futures_util::future::try_join_all;

use super::{RedisBackend, now_ms};
use crate::backend::{BackendError, NewEntry};

/// Script calls per pipeline: several pipelines go out at once on the multiplexed connection,
/// so the host encodes one while Redis runs another.
const CALLS_PER_PIPELINE: usize = 8;

/// What writing an entry, a tag or a dependency costs Redis against unlinking one entry:
/// a write call takes `entries_per_call / WRITE_COST` of them.
const WRITE_COST: usize = 4;

/// Score of a member without expiry (2^53 - 1).
const FOREVER: u64 = 9_007_199_254_740_991;

/// Where script arguments go: a prepared invocation or a raw `EVALSHA` in a pipeline.
pub(super) trait Args {
    fn push(&mut self, arg: &[u8]);
}

impl Args for redis::ScriptInvocation<'_> {
    fn push(&mut self, arg: &[u8]) {
        self.arg(arg);
    }
}

impl Args for redis::Pipeline {
    fn push(&mut self, arg: &[u8]) {
        self.arg(arg);
    }
}

fn ttl_ms(entry: &NewEntry) -> u64 {
    entry.ttl.map_or(0, |t| {
        u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

/// An entry's fields, `|` and value: everything but the store time (see entry.lua).
fn encode(entry: &NewEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.value.len() + 16 * entry.tags.len() + 1);
    let mut field = |kind: &str, name: &str| {
        out.extend_from_slice(format!("{kind}:{}:", name.len()).as_bytes());
        out.extend_from_slice(name.as_bytes());
    };
    for tag in &entry.tags {
        field("t", tag);
    }
    for dep in &entry.depends_on {
        field("d", dep);
    }
    out.push(b'|');
    out.extend_from_slice(&entry.value);
    out
}

/// The arguments of `store_many()` in store.lua for `entries` (all of the tenant of `prefix`).
pub(super) fn store_args(call: &mut impl Args, prefix: &str, now: u64, entries: &[&NewEntry]) {
    call.push(prefix.as_bytes());
    call.push(now.to_string().as_bytes());
    call.push(entries.len().to_string().as_bytes());
    // Each distinct index with the longest TTL of its members here (0 = one has none).
    let mut indexes: Vec<(String, u64)> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for &entry in entries {
        let ttl = ttl_ms(entry);
        let score = if ttl == 0 {
            FOREVER
        } else {
            now.saturating_add(ttl).min(FOREVER - 1)
        };
        call.push(entry.key.as_bytes());
        call.push(&encode(entry));
        call.push(ttl.to_string().as_bytes());
        call.push(score.to_string().as_bytes());
        call.push(entry.tags.len().to_string().as_bytes());
        for tag in &entry.tags {
            let index = format!("{prefix}t:{tag}");
            call.push(index.as_bytes());
            match seen.get(tag.as_str()) {
                Some(&at) => {
                    let longest = &mut indexes[at].1;
                    if *longest != 0 && (ttl == 0 || ttl > *longest) {
                        *longest = ttl;
                    }
                }
                None => {
                    seen.insert(tag, indexes.len());
                    indexes.push((index, ttl));
                }
            }
        }
        call.push(entry.depends_on.len().to_string().as_bytes());
        for dep in &entry.depends_on {
            call.push(dep.as_bytes());
        }
    }
    call.push(indexes.len().to_string().as_bytes());
    for (index, ttl) in &indexes {
        call.push(index.as_bytes());
        call.push(ttl.to_string().as_bytes());
    }
}

/// What an entry costs in a call's budget: itself, its tags and its dependencies.
fn weight(entry: &NewEntry) -> usize {
    1 + entry.tags.len() + entry.depends_on.len()
}

impl RedisBackend {
    /// Stores `entries`: ordered by tenant (stably, so two writes of one key keep their
    /// order), each tenant's run cut into calls of at most `entries_per_call / WRITE_COST`
    /// (weighed by [`weight`]), calls grouped into pipelines sent concurrently. The order
    /// matters to grouped single `set`s (group.rs), whose rounds arrive interleaved.
    pub(super) async fn store_many(&self, entries: &[NewEntry]) -> Result<(), BackendError> {
        let now = now_ms();
        let budget = (self.options.entries_per_call / WRITE_COST).max(1);
        let mut order: Vec<&NewEntry> = entries.iter().collect();
        // A stable sort; on entries of one tenant (the common case) one pass.
        order.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        let mut calls: Vec<&[&NewEntry]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let tenant = &order[start].tenant;
            let mut end = start;
            let mut used = 0;
            while end < order.len() && &order[end].tenant == tenant {
                let w = weight(order[end]);
                if end > start && used + w > budget {
                    break;
                }
                used += w;
                end += 1;
            }
            calls.push(&order[start..end]);
            start = end;
        }
        let sha = self.scripts.set.get_hash();
        // Each pipeline is encoded when its future is first polled and sent right away, so
        // Redis runs one while the host encodes the next.
        let sends = calls.chunks(CALLS_PER_PIPELINE).map(|group| async move {
            let mut pipe = redis::pipe();
            for call in group {
                let Some(first) = call.first() else { continue };
                let prefix = self.prefix(&first.tenant);
                pipe.cmd("EVALSHA")
                    .arg(sha)
                    .arg(1)
                    .arg(format!("{prefix}e:{}", first.key));
                store_args(&mut pipe, &prefix, now, call);
            }
            let mut conn = self.conn.clone();
            self.send_script(&mut conn, &pipe, &self.scripts.set).await
        });
        try_join_all(sends).await?;
        Ok(())
    }
}
