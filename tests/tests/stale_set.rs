//! The stale-set race: a reader misses and loads the old row; a writer commits and
//! invalidates; the reader stores the old row, which then lives until its TTL.
//!
//! `Cache::get_or_fill` takes a lease before loading, any invalidation of the key or its tags
//! voids the lease, and a void lease cannot store. Each scenario runs twice: with the guard it
//! must end fresh; with a plain get-then-set it must end stale, which shows the test can fail.
//! Every scenario runs on the in-memory backend and on Redis (the Lua lease scripts), on
//! database 14 of the Redis on 127.0.0.1:6379 under a key prefix of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tagbust::{
    Backend, BoundRule, Cache, FillSpec, HostOptions, MemoryBackend, NewEntry, Op, OpKind, RuleSet,
    Tagbust, TenantSetup, Tenants,
};
use tagbust_tests::SharedRedis;
use tokio::sync::Barrier;

const REDIS: &str = "redis://127.0.0.1:6379/14";

/// The source of truth: a row whose value is its version.
#[derive(Default)]
struct Db(AtomicU64);

impl Db {
    fn read(&self) -> Vec<u8> {
        self.0.load(Ordering::SeqCst).to_string().into_bytes()
    }
}

fn spec() -> FillSpec {
    FillSpec {
        tenant: "a".into(),
        key: "row:1".into(),
        tags: vec!["rows".into()],
        ttl: Some(Duration::from_secs(300)),
        depends_on: Vec::new(),
    }
}

/// Reads through the cache; `guarded` picks the lease-based fill or a plain get-then-set.
/// `between` runs after the load and before the store (where the race strikes).
async fn read_through<B: Backend, F, Fut>(cache: &Cache<B>, db: &Db, guarded: bool, between: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let spec = spec();
    if guarded {
        cache
            .get_or_fill(&spec, || async {
                let v = db.read();
                between().await;
                Ok::<_, std::convert::Infallible>(v)
            })
            .await
            .expect("fill");
    } else if cache
        .get(&spec.tenant, &spec.key)
        .await
        .expect("get")
        .is_none()
    {
        let v = db.read();
        between().await;
        cache
            .set(NewEntry {
                tenant: spec.tenant.clone(),
                key: spec.key.clone(),
                value: v,
                tags: spec.tags.clone(),
                ttl: spec.ttl,
                depends_on: Vec::new(),
            })
            .await
            .expect("set");
    }
}

async fn write<B: Backend>(db: &Db, backend: &B, kind: OpKind, value: &str) {
    db.0.fetch_add(1, Ordering::SeqCst);
    backend
        .apply(&[Op {
            tenant: "a".into(),
            kind,
            value: value.into(),
        }])
        .await
        .expect("invalidate");
}

/// Is the cache holding something older than the database?
async fn stale<B: Backend>(cache: &Cache<B>, db: &Db) -> bool {
    match cache.get("a", "row:1").await.expect("get") {
        Some(v) => v != db.read(),
        None => false,
    }
}

fn host<B: Backend>(backend: B) -> Tagbust<B> {
    let echo = tagbust_tests::load(tagbust_tests::components::ECHO);
    Tagbust::builder(Arc::new(backend))
        .tenants(Tenants::new(TenantSetup::new(RuleSet::new(vec![
            BoundRule::new(echo),
        ]))))
        .options(HostOptions::default())
        .build()
        .expect("host builds")
}

/// The exact bad interleaving, forced with barriers, for each kind of invalidation.
async fn forced_race<B: Backend>(backend: B, guarded: bool, kind: OpKind, value: &str) -> bool {
    let host = host(backend);
    let cache = host.cache();
    let db = Arc::new(Db::default());
    let loaded = Arc::new(Barrier::new(2));
    let written = Arc::new(Barrier::new(2));
    let reader = {
        let (cache, db, loaded, written) =
            (cache.clone(), db.clone(), loaded.clone(), written.clone());
        tokio::spawn(async move {
            read_through(&cache, &db, guarded, || async {
                loaded.wait().await;
                written.wait().await;
            })
            .await;
        })
    };
    loaded.wait().await;
    write(&db, &**host.backend(), kind, value).await;
    written.wait().await;
    reader.await.expect("reader");
    stale(&cache, &db).await
}

const KINDS: [(OpKind, &str); 4] = [
    (OpKind::Key, "row:1"),
    (OpKind::Tag, "rows"),
    (OpKind::TagVersion, "rows"),
    (OpKind::Pattern, "row:*"),
];

#[tokio::test]
async fn the_guard_refuses_a_fill_overtaken_by_any_invalidation() {
    for (kind, value) in KINDS {
        assert!(
            !forced_race(MemoryBackend::new(), true, kind, value).await,
            "memory: {kind:?} left a stale entry"
        );
        let redis = SharedRedis::new(REDIS, "tbstale-forced");
        assert!(
            !forced_race(redis.connect().await, true, kind, value).await,
            "redis: {kind:?} left a stale entry"
        );
    }
}

#[tokio::test]
async fn without_the_guard_the_same_interleaving_leaves_stale_data() {
    // The control: if this ever passes without staleness, the race test above proves nothing.
    for (kind, value) in KINDS {
        assert!(
            forced_race(MemoryBackend::new(), false, kind, value).await,
            "memory: {kind:?}"
        );
        let redis = SharedRedis::new(REDIS, "tbstale-unguarded");
        assert!(
            forced_race(redis.connect().await, false, kind, value).await,
            "redis: {kind:?}"
        );
    }
}

/// Many readers and one writer on a multi-threaded runtime, with random delays; after every
/// round, once everyone is done, the cache must not hold an old version.
async fn stress<B: Backend>(backend: B, guarded: bool, rounds: u32) -> u32 {
    let host = host(backend);
    let cache = host.cache();
    let db = Arc::new(Db::default());
    let mut stale_rounds = 0;
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for r in 0..4u64 {
            let (cache, db) = (cache.clone(), db.clone());
            tasks.push(tokio::spawn(async move {
                read_through(&cache, &db, guarded, || async move {
                    let micros = (u64::from(round) * 7 + r * 13) % 300;
                    tokio::time::sleep(Duration::from_micros(micros)).await;
                })
                .await;
            }));
        }
        let backend = host.backend().clone();
        let db2 = db.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(u64::from(round % 5) * 50)).await;
            write(&db2, &*backend, OpKind::Key, "row:1").await;
        }));
        for t in tasks {
            t.await.expect("task");
        }
        if stale(&cache, &db).await {
            stale_rounds += 1;
            // Clean slate for the next round.
            host.backend()
                .apply(&[Op {
                    tenant: "a".into(),
                    kind: OpKind::Key,
                    value: "row:1".into(),
                }])
                .await
                .expect("reset");
        }
    }
    stale_rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_and_writers_never_leave_stale_data_with_the_guard() {
    assert_eq!(stress(MemoryBackend::new(), true, 300).await, 0, "memory");
    let redis = SharedRedis::new(REDIS, "tbstale-stress");
    assert_eq!(stress(redis.connect().await, true, 300).await, 0, "redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_guard_the_stress_finds_stale_rounds() {
    // The control for the stress test (about three rounds in four end stale when measured).
    assert!(stress(MemoryBackend::new(), false, 300).await > 0, "memory");
    let redis = SharedRedis::new(REDIS, "tbstale-stress-unguarded");
    assert!(stress(redis.connect().await, false, 300).await > 0, "redis");
}
