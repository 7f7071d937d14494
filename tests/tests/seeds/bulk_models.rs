//! Seed 000: an ORM whose bulk update, delete and upsert nodes forgot to invalidate the query
//! cache, so a list query after "bulk delete everything, bulk create one" was a stale hit.
//!
//! Flaw fixed: invalidation was a call each write path had to remember (three of four bulk
//! paths did not). `bulk-models` triggers on every operation, and a bulk write is one event,
//! so there is no path to forget; `every_write_path` proves it for all eight operations.

use std::sync::Mutex;
use std::time::Duration;

use tagbust::{Backend, FillSpec, HostOptions, Operation, Tagbust, WriteEvent};
use tagbust_tests::components;

use crate::support::{cached, host, on_both_backends, put, submit};

const T: &str = "kailash";
const MODEL: &str = "agent_memory";

/// The source of truth: `AgentMemory` rows as (id, workflow_run_id).
#[derive(Default)]
struct Db(Mutex<Vec<(String, String)>>);

impl Db {
    fn rows(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.0.lock().expect("not poisoned")
    }
}

/// `AgentMemoryListNode` with `filter: {workflow_run_id: run}` through the cache: the ids it
/// returns, and whether they came from the cache.
async fn list<B: Backend>(host: &Tagbust<B>, db: &Db, run: &str) -> (Vec<String>, bool) {
    let spec = FillSpec {
        tenant: T.into(),
        key: format!("{MODEL}:list:workflow_run_id={run}"),
        tags: vec![MODEL.into(), format!("{MODEL}:queries")],
        ttl: Some(Duration::from_secs(300)),
        depends_on: Vec::new(),
    };
    let mut loaded = false;
    let value = host
        .cache()
        .get_or_fill(&spec, || {
            loaded = true;
            let ids: Vec<String> = db
                .rows()
                .iter()
                .filter(|(_, r)| r == run)
                .map(|(id, _)| id.clone())
                .collect();
            async move { Ok::<_, std::convert::Infallible>(ids.join(",").into_bytes()) }
        })
        .await
        .expect("list");
    let text = String::from_utf8(value).expect("utf-8");
    let ids = text.split(',').filter(|s| !s.is_empty()).map(str::to_owned);
    (ids.collect(), !loaded)
}

fn write(op: Operation, ids: &[&str]) -> WriteEvent {
    let mut e = WriteEvent::new(T, MODEL, op);
    e.ids = ids.iter().map(|id| (*id).to_owned()).collect();
    e
}

/// The exact scenario of the report: bulk delete everything, bulk create one record, list.
async fn bulk_delete_then_bulk_create<B: Backend>(backend: B) {
    let host = host(backend, &[components::BULK_MODELS], HostOptions::default());
    let db = Db::default();
    db.rows()
        .extend([("1".into(), "300".into()), ("2".into(), "300".into())]);
    put(
        &host,
        T,
        "agent_memory:record:1",
        &[MODEL, "agent_memory:1"],
    )
    .await;
    assert_eq!(
        list(&host, &db, "300").await,
        (vec!["1".into(), "2".into()], false)
    );
    assert!(list(&host, &db, "300").await.1, "query caching is on");

    // BulkDeleteNode, filter {}: the ids are unknown, so the whole model dies.
    db.rows().clear();
    submit(&host, write(Operation::BulkDelete, &[])).await;
    assert_eq!(
        list(&host, &db, "300").await,
        (vec![], false),
        "the deleted rows are not served from the cache"
    );
    assert!(
        cached(&host, T, &["agent_memory:record:1"])
            .await
            .is_empty()
    );
    assert!(
        list(&host, &db, "300").await.1,
        "the empty list is cached now"
    );

    // BulkCreateNode inserts one record for run 300; ListNode must see it.
    db.rows().push(("3".into(), "300".into()));
    submit(&host, write(Operation::BulkCreate, &["3"])).await;
    assert_eq!(
        list(&host, &db, "300").await,
        (vec!["3".into()], false),
        "fresh from the database, not a cache hit"
    );
}

/// Create, update, delete, upsert and their bulk forms: each kills the cached list.
async fn every_write_path<B: Backend>(backend: B) {
    let host = host(backend, &[components::BULK_MODELS], HostOptions::default());
    let db = Db::default();
    // Every operation there is: one added to the contract is covered without editing here.
    for (n, op) in Operation::ALL.into_iter().enumerate() {
        let id = n.to_string();
        list(&host, &db, "300").await;
        assert!(
            list(&host, &db, "300").await.1,
            "{op}: cached before the write"
        );
        put(
            &host,
            T,
            "agent_memory:record:other",
            &[MODEL, "agent_memory:other"],
        )
        .await;
        db.rows().push((id.clone(), "300".into()));
        let ids = if op.is_bulk() {
            vec![id.as_str(), "x"]
        } else {
            vec![id.as_str()]
        };
        submit(&host, write(op, &ids)).await;
        let (rows, hit) = list(&host, &db, "300").await;
        assert!(!hit, "{op}: the list query must miss after the write");
        assert_eq!(rows.len(), n + 1, "{op}");
        assert_eq!(
            cached(&host, T, &["agent_memory:record:other"]).await.len(),
            1,
            "{op}: a record the write did not name stays cached"
        );
    }
    let stats = host.stats();
    assert_eq!(stats.rules["bulk-models"].events, 8);
    assert!(stats.rules["bulk-models"].failures.is_empty());
}

on_both_backends!(bulk_delete_then_bulk_create, every_write_path);
