//! The Redis backend: the same contract as the in-memory one, applied to a real Redis.
//!
//! Data layout (every key of a tenant shares the hash tag `{tenant}`, so one Lua script only
//! ever touches one Cluster slot; the price is that one tenant's data lives on one node):
//!
//! | key                          | type   | what                                                |
//! |------------------------------|--------|-----------------------------------------------------|
//! | `P:{tenant}:e:<key>`         | string | entry: store time (µs), `;`, fields (`t` tag, `i` inherited tag and time, `d` derived-from), `|`, the value (see entry.lua); TTL = entry TTL |
//! | `P:{tenant}:t:<tag>`         | zset   | tag index: member = key, score = expiry (ms since epoch; 2^53-1 = none); TTL = longest member |
//! | `P:{tenant}:v:<tag>`         | string | tag version: time of its last invalidation (µs), for `lazy` and for voiding fills |
//! | `P:{tenant}:x:<ver>:<tag>`   | zset   | a big tag's index being drained after invalidation `<ver>`; TTL = the index's |
//! | `P:{tenant}:d:<key>`         | set    | keys derived from `<key>`                           |
//! | `P:{tenant}:g:<key>`         | string | key generation, INCR when a leased key is invalidated; TTL = lease TTL |
//! | `P:{tenant}:leases`          | zset   | keys with a fill lease outstanding, scored by lease expiry; TTL = lease TTL |
//! | `P:{tenant}:epoch`           | string | bumped by pattern and tenant invalidations          |
//! | `P:{tenant}:hasdeps`         | string | present while any entry of the tenant derives from another; TTL = longest such |
//!
//! `P` is the configurable prefix (default `tb`). A service in any language can read an entry
//! with `GET P:{tenant}:e:<key>` (the value follows the fields and `|`), after checking that
//! no `P:{tenant}:v:<tag>` of its `t`/`i` fields is later than the entry's (or field's) time.
//!
//! Faults: a batch is retried with doubling backoff on connection errors (operations are
//! idempotent); after the last attempt the error goes to the host, which keeps the operations
//! in its bounded retry queue.
//!
//! Redis Cluster ([`RedisBackend::connect_cluster`]): every script's keys share the tenant's
//! slot, so scripts and per-tenant pipelines route by key; a tenant's `SCAN` goes to the
//! primary owning its slot, the sweeper walks every primary in turn (see `conn.rs`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

use super::{Backend, BackendError, FillLease, FillOutcome, NewEntry, Op, OpKind, OpOutcome};
use conn::Conn;
pub use conn::Topology;

mod conn;
mod group;
mod invalidate;
mod store;
mod sweep;

const ENTRY: &str = include_str!("entry.lua");
const STORE: &str = include_str!("store.lua");
const FILL: &str = include_str!("fill.lua");
const GET: &str = include_str!("get.lua");
const INVALIDATE: &str = include_str!("invalidate.lua");
const BEGIN_FILL: &str = include_str!("begin_fill.lua");

/// Invalidations sent in one script call at most; how many it applies is bounded by
/// [`RedisOptions::entries_per_call`] (the rest are sent again).
const OPS_PER_CALL: usize = 256;

/// What to do when Redis may evict keys on its own (`maxmemory-policy allkeys-*`): it can evict
/// tag indexes, silently losing invalidations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionCheck {
    /// Log a warning and go on (default).
    Warn,
    /// Refuse to connect.
    Refuse,
}

/// Redis backend settings, each with its default.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key. Default `tb`.
    pub prefix: String,
    /// Keys a pattern (or tenant) invalidation may scan before it stops; the cost guard. A
    /// stopped scan is reported in the outcome (`scanned`, `refused`). Default 100,000.
    pub max_scan_keys: u64,
    /// `COUNT` hint per `SCAN` call. Default 1,000.
    pub scan_count: u64,
    /// Allow patterns that match every key of a tenant (`*`). Default no: use a tenant
    /// invalidation instead.
    pub allow_match_all: bool,
    /// How long a fill lease stays valid. Default 30 s.
    pub lease_ttl: Duration,
    /// Most keys one invalidation may remove through dependencies. Default 10,000.
    pub max_cascade_keys: u64,
    /// Connection and response timeout. Default 2 s.
    pub timeout: Duration,
    /// Attempts of a batch after a connection error (operations are idempotent, so
    /// re-sending a batch whose outcome is unknown only over-invalidates). Default 5.
    pub attempts: u32,
    /// Wait before the first retry; doubles each time. Default 20 ms.
    pub backoff: Duration,
    pub eviction: EvictionCheck,
    /// Entries one script call may remove: what bounds how long one call blocks Redis,
    /// whatever the size of a tag. A tag with more members is drained over several calls,
    /// its version moved first so that its entries read as misses at once. A write call
    /// (`set_many`) takes a quarter of it, counting each entry, tag and dependency (a
    /// written entry costs Redis about four times an unlinked one). Default 256: about
    /// 0.3 ms of Redis per call on the 2-core machine of the benchmarks.
    pub entries_per_call: usize,
    /// Removed keys listed per operation for explain, at most
    /// [`MAX_LISTED_KEYS`](crate::backend::MAX_LISTED_KEYS) (the count is exact either way).
    /// Listing costs Redis one `EXISTS` check per listed key, so that only keys that existed
    /// are listed: a fifth of Redis's time per invalidated key in the bench's workload (tags
    /// of 100 entries). Default 64; 0 lists none.
    pub listed_keys: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "tb".into(),
            max_scan_keys: 100_000,
            scan_count: 1000,
            allow_match_all: false,
            lease_ttl: Duration::from_secs(30),
            max_cascade_keys: 10_000,
            timeout: Duration::from_secs(2),
            attempts: 5,
            backoff: Duration::from_millis(20),
            eviction: EvictionCheck::Warn,
            entries_per_call: 256,
            listed_keys: crate::backend::MAX_LISTED_KEYS,
        }
    }
}

struct Scripts {
    set: Script,
    fill: Script,
    get: Script,
    invalidate: Script,
    begin_fill: Script,
}

/// A tagged cache in Redis (one server or a Cluster).
pub struct RedisBackend {
    conn: Conn,
    options: RedisOptions,
    scripts: Scripts,
    /// The URL, or the cluster's seed nodes: named in every error.
    url: String,
    /// Where the sweeper's `SCAN` over tag indexes stopped, per primary.
    sweep: Mutex<sweep::Cursor>,
    /// Calls retried after a connection error (each retry once).
    retried: std::sync::atomic::AtomicU64,
    /// Entries a tag invalidation has removed lately, on average: how invalidations are cut
    /// into calls (see invalidate.rs).
    tag_weight: std::sync::atomic::AtomicU64,
    /// Single `set`s waiting to go out together (see group.rs).
    writes: group::Writes,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RedisBackend {
    /// Calls retried after a connection error since connect: a fault the backend absorbed
    /// (a dropped connection, a restart) shows here even when no submission saw it.
    pub fn retries(&self) -> u64 {
        self.retried.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connects to one server at `url` (`redis://host:port/db`), checks the eviction policy
    /// and loads the scripts. Every error names the URL.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<RedisBackend, BackendError> {
        Self::connect_to(Topology::Single(url.to_owned()), options).await
    }

    /// Connects to a Redis Cluster through any of its `nodes` (`redis://host:port`); the
    /// client learns the slot map from them and follows it as it changes.
    pub async fn connect_cluster(
        nodes: &[String],
        options: RedisOptions,
    ) -> Result<RedisBackend, BackendError> {
        Self::connect_to(Topology::Cluster(nodes.to_vec()), options).await
    }

    pub async fn connect_to(
        topology: Topology,
        options: RedisOptions,
    ) -> Result<RedisBackend, BackendError> {
        let url = topology.describe();
        let fail = |e: redis::RedisError| BackendError::Unavailable(format!("{url}: {e}"));
        let mut conn = Conn::open(&topology, options.timeout).await.map_err(fail)?;
        let mut config = redis::cmd("CONFIG");
        config.arg("GET").arg("maxmemory-policy");
        for (node, reply) in conn.on_each_primary(config).await.map_err(fail)? {
            let policy: Vec<String> = redis::from_redis_value(reply).map_err(|e| fail(e.into()))?;
            let Some(policy) = policy.get(1).filter(|p| p.starts_with("allkeys-")) else {
                continue;
            };
            let at = node.map_or_else(|| url.clone(), |n| format!("{url} (node {n})"));
            let message = format!(
                "{at}: maxmemory-policy is {policy}: Redis may evict tag indexes and lose invalidations; use noeviction or a volatile-* policy"
            );
            match options.eviction {
                EvictionCheck::Refuse => return Err(BackendError::Refused(message)),
                EvictionCheck::Warn => tracing::warn!("{message}"),
            }
        }
        let set = format!("{ENTRY}\n{STORE}\nreturn store_many(1)");
        let fill = format!("{ENTRY}\n{STORE}\n{FILL}");
        let get = format!("{ENTRY}\n{GET}");
        // Loaded on every primary now, so the first calls do not each meet `NOSCRIPT` and
        // pay a load (a server that loses its cache later still gets them loaded on demand).
        for code in [set.as_str(), &fill, &get, INVALIDATE, BEGIN_FILL] {
            let mut load = redis::cmd("SCRIPT");
            load.arg("LOAD").arg(code);
            conn.on_each_primary(load).await.map_err(fail)?;
        }
        let scripts = Scripts {
            set: Script::new(&set),
            fill: Script::new(&fill),
            get: Script::new(&get),
            invalidate: Script::new(INVALIDATE),
            begin_fill: Script::new(BEGIN_FILL),
        };
        let sweep = sweep::Cursor::new(&mut conn).await.map_err(fail)?;
        Ok(RedisBackend {
            conn,
            options,
            scripts,
            url,
            sweep: Mutex::new(sweep),
            retried: std::sync::atomic::AtomicU64::new(0),
            tag_weight: std::sync::atomic::AtomicU64::new(16),
            writes: group::Writes::default(),
        })
    }

    /// The URL this backend talks to (for a cluster: `cluster <seed nodes>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn prefix(&self, tenant: &str) -> String {
        format!("{}:{{{tenant}}}:", self.options.prefix)
    }

    fn error(&self, e: redis::RedisError) -> BackendError {
        BackendError::Unavailable(format!("{}: {e}", self.url))
    }

    fn lease_ttl_ms(&self) -> u64 {
        u64::try_from(self.options.lease_ttl.as_millis()).unwrap_or(u64::MAX)
    }
}

impl Backend for RedisBackend {
    /// Tag, key and version operations go out as one pipeline of script calls (one round
    /// trip per run of them); patterns and tenants scan first. Nothing is reported applied
    /// before Redis answered for it; connection errors are retried with backoff.
    async fn apply(&self, ops: &[Op]) -> Result<Vec<OpOutcome>, BackendError> {
        let conn = self.conn.clone();
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut i = 0;
        while i < ops.len() {
            if matches!(ops[i].kind, OpKind::Pattern | OpKind::Tenant) {
                let op = &ops[i];
                let outcome = self
                    .retrying(|| async {
                        let mut conn = conn.clone();
                        self.apply_pattern(&mut conn, op).await
                    })
                    .await?;
                outcomes.push(outcome);
                i += 1;
                continue;
            }
            let run_end = ops[i..]
                .iter()
                .position(|o| matches!(o.kind, OpKind::Pattern | OpKind::Tenant))
                .map_or(ops.len(), |n| i + n);
            let run = &ops[i..run_end];
            // Each round of script calls is retried on its own (see invalidate.rs): a retry
            // of the whole run would start over and leave a big tag's drain behind.
            let replies = self.pipeline(&mut conn.clone(), run).await?;
            outcomes.extend(replies);
            i = run_end;
        }
        Ok(outcomes)
    }

    /// Concurrent single writes share script calls (group.rs); a lone one goes out at once.
    async fn set(&self, entry: NewEntry) -> Result<(), BackendError> {
        self.set_grouped(entry).await
    }

    async fn set_many(&self, entries: Vec<NewEntry>) -> Result<(), BackendError> {
        self.retrying(|| self.store_many(&entries)).await
    }

    async fn get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let mut conn = self.conn.clone();
        let prefix = self.prefix(tenant);
        self.scripts
            .get
            .key(format!("{prefix}e:{key}"))
            .arg(&prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))
    }

    async fn begin_fill(
        &self,
        tenant: &str,
        key: &str,
        tags: &[String],
    ) -> Result<FillLease, BackendError> {
        let mut conn = self.conn.clone();
        let prefix = self.prefix(tenant);
        let mut call = self.scripts.begin_fill.key(format!("{prefix}leases"));
        call.arg(&prefix)
            .arg(key)
            .arg(now_ms())
            .arg(self.lease_ttl_ms());
        for tag in tags {
            call.arg(tag);
        }
        let values: Vec<String> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(FillLease {
            id: now_ms(),
            tenant: tenant.to_owned(),
            key: key.to_owned(),
            tags: tags.to_vec(),
            token: values,
        })
    }

    async fn complete_fill(
        &self,
        lease: FillLease,
        entry: NewEntry,
    ) -> Result<FillOutcome, BackendError> {
        lease.check(&entry)?;
        let mut conn = self.conn.clone();
        let prefix = self.prefix(&entry.tenant);
        let mut call = self.scripts.fill.key(format!("{prefix}e:{}", entry.key));
        call.arg(lease.id).arg(self.lease_ttl_ms()).arg(now_ms());
        // token = [generation, epoch, tag versions...] in the order begin_fill read them.
        let mut token = lease.token.iter();
        call.arg(token.next().map_or("0", String::as_str))
            .arg(token.next().map_or("0", String::as_str))
            .arg(lease.tags.len());
        for (tag, version) in lease.tags.iter().zip(token) {
            call.arg(tag).arg(version);
        }
        store::store_args(&mut call, &prefix, now_ms(), &[&entry]);
        let stored: i64 = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(e))?;
        Ok(if stored == 1 {
            FillOutcome::Stored
        } else {
            FillOutcome::Refused
        })
    }

    async fn sweep(&self, budget: usize) -> Result<usize, BackendError> {
        self.sweep_step(budget).await
    }
}
