//! Seed 001: hierarchical contexts (Global → Project → Branch → Task) whose invalidation had
//! been commented out, then re-added by hand in every repository.
//!
//! Flaws fixed: (1) stale contexts for a whole TTL because invalidation was switched off in
//! code: here it is one rule, tested below for every level; (2) "user isolation" depended on
//! each call site passing the user: here every tag carries the user, and an event without one
//! is refused as a counted rule error instead of invalidating unscoped; (3) "cache errors don't
//! break main operations" was a swallowed exception that also lost the invalidation: here the
//! write goes on and the invalidation waits for the cache to come back.

use tagbust::{
    Backend, BoundRule, FieldChange, HostOptions, Operation, RuleSet, Tagbust, TenantSetup,
    Tenants, WriteEvent,
};
use tagbust_tests::{TestRedis, components, load};

use crate::support::{
    cached, config, drain, host_with, on_both_backends, private_redis_host, put, submit,
};

const T: &str = "fastmcp";

fn tenants() -> Tenants {
    let rule = BoundRule::new(load(components::CONTEXT_HIERARCHY))
        .with_config(config(serde_json::json!({"local_fields": "notes"})));
    Tenants::new(TenantSetup::new(RuleSet::new(vec![rule])))
}

/// Cached views of `user`'s contexts: project p1 has branches b1 (task t1) and b2 (task t2).
/// Every view carries its own `ctx:` tag and the `inherit:` tags of itself and its ancestors;
/// `project:p1:raw` is the project's own record, which inherits nothing.
async fn cache_contexts<B: Backend>(host: &Tagbust<B>, user: &str) {
    let u = user;
    let chain = |levels: &[&str]| -> Vec<String> {
        let own = levels.last().expect("a level");
        let mut tags = vec![format!("ctx:{u}"), format!("ctx:{u}:{own}")];
        tags.extend(levels.iter().map(|l| format!("inherit:{u}:{l}")));
        tags
    };
    let views: [(&str, Vec<String>); 6] = [
        ("global", chain(&["global"])),
        ("project:p1", chain(&["global", "project:p1"])),
        ("branch:b1", chain(&["global", "project:p1", "branch:b1"])),
        (
            "task:t1",
            chain(&["global", "project:p1", "branch:b1", "task:t1"]),
        ),
        ("branch:b2", chain(&["global", "project:p1", "branch:b2"])),
        (
            "task:t2",
            chain(&["global", "project:p1", "branch:b2", "task:t2"]),
        ),
    ];
    for (view, tags) in views {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        put(host, T, &format!("{u}/{view}"), &tags).await;
    }
    let raw = [format!("ctx:{u}"), format!("ctx:{u}:project:p1")];
    put(host, T, &format!("{u}/project:p1:raw"), &[&raw[0], &raw[1]]).await;
}

const VIEWS: [&str; 7] = [
    "global",
    "project:p1",
    "project:p1:raw",
    "branch:b1",
    "task:t1",
    "branch:b2",
    "task:t2",
];

/// `user`'s views still cached, space-separated, in `VIEWS` order.
async fn alive<B: Backend>(host: &Tagbust<B>, user: &str) -> String {
    let mut out = Vec::new();
    for view in VIEWS {
        let key = format!("{user}/{view}");
        if !cached(host, T, &[&key]).await.is_empty() {
            out.push(view);
        }
    }
    out.join(" ")
}

/// A `settings` change (which children inherit) to `resource` rows `ids`, by `user`.
fn write(user: Option<&str>, resource: &str, op: Operation, ids: &[&str]) -> WriteEvent {
    let mut e = WriteEvent::new(T, resource, op);
    e.ids = ids.iter().map(|id| (*id).to_owned()).collect();
    if let Some(user) = user {
        e.context.insert("user_id".into(), user.into());
    }
    e.changes.push(FieldChange {
        field: "settings".into(),
        old: Some("{}".into()),
        new: Some("{\"theme\":\"dark\"}".into()),
    });
    e
}

/// An update of `resource` row `id` by `user`.
fn update(user: &str, resource: &str, id: &str) -> WriteEvent {
    write(Some(user), resource, Operation::Update, &[id])
}

/// Submits `event`, then lists `user`'s surviving views.
async fn after<B: Backend>(host: &Tagbust<B>, event: WriteEvent, user: &str) -> String {
    submit(host, event).await;
    alive(host, user).await
}

/// A change kills its own context and its descendants, never its siblings, ancestors, or
/// another user's contexts with the same ids.
async fn changes_propagate_down_and_never_across_users<B: Backend>(backend: B) {
    let host = host_with(backend, tenants(), HostOptions::default());
    for user in ["alice", "bob"] {
        cache_contexts(&host, user).await;
    }
    let branch = update("alice", "branch_contexts", "b1");
    let left = "global project:p1 project:p1:raw branch:b2 task:t2";
    assert_eq!(after(&host, branch, "alice").await, left);
    assert_eq!(
        alive(&host, "bob").await,
        VIEWS.join(" "),
        "bob has a b1 too"
    );

    // The ORM task table feeds the task context.
    let task = write(Some("bob"), "tasks", Operation::Delete, &["t2"]);
    let left = "global project:p1 project:p1:raw branch:b1 task:t1 branch:b2";
    assert_eq!(after(&host, task, "bob").await, left);

    let global = update("alice", "global_contexts", "g");
    assert_eq!(
        after(&host, global, "alice").await,
        "project:p1:raw",
        "every view inherits the global context; the raw record does not"
    );
    assert_eq!(alive(&host, "bob").await, left);
}

/// An update of fields nothing inherits (the tenant's `local_fields`) stays local.
async fn local_changes_stay_local<B: Backend>(backend: B) {
    let host = host_with(backend, tenants(), HostOptions::default());
    cache_contexts(&host, "alice").await;
    let mut e = update("alice", "project_contexts", "p1");
    e.changes[0].field = "notes".into();
    let left = "global branch:b1 task:t1 branch:b2 task:t2";
    assert_eq!(after(&host, e.clone(), "alice").await, left);
    e.changes[0].field = "settings".into();
    cache_contexts(&host, "alice").await;
    assert_eq!(after(&host, e, "alice").await, "global");
}

/// An event without a user is refused alone: the others of its submission are applied, and
/// the failure is counted.
async fn an_unscoped_event_fails_alone<B: Backend>(backend: B) {
    let host = host_with(backend, tenants(), HostOptions::default());
    for user in ["alice", "bob"] {
        cache_contexts(&host, user).await;
    }
    let report = host
        .submit(vec![
            write(None, "task_contexts", Operation::BulkDelete, &[]),
            write(Some("alice"), "task_contexts", Operation::BulkDelete, &[]),
        ])
        .await
        .expect("a rule error is not a failed submission");
    assert_eq!(report.rule_failures, 1);
    // The failure policy's fallback invalidates the resource-level tag `task_contexts` within
    // the tenant (these views do not carry it), never anything across tenants or users.
    assert_eq!(alive(&host, "alice").await, "", "ctx:alice, bulk");
    assert_eq!(alive(&host, "bob").await, VIEWS.join(" "));
    let stats = host.stats();
    assert_eq!(
        stats.rules["context-hierarchy"].failures.get("rule_error"),
        Some(&1)
    );
    assert_eq!(stats.rule_fallbacks, 1);
}

on_both_backends!(
    changes_propagate_down_and_never_across_users,
    local_changes_stay_local,
    an_unscoped_event_fails_alone,
);

/// The cache goes away between the write and its commit: the commit reports the backend
/// error (the database write stands), nothing is lost, and the contexts die once Redis is
/// back. Private server on port 6394.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_outage_never_breaks_the_write() {
    let mut server = TestRedis::start("seed-contexts", 6394);
    let host = private_redis_host(&server, tenants()).await;
    cache_contexts(&host, "alice").await;
    let mut e = update("alice", "project_contexts", "p1");
    e.transaction = Some("tx-1".into());
    let report = host.submit(vec![e]).await.expect("held until commit");
    assert_eq!(report.held, 2);

    server.kill();
    let commit = host.commit(T, "tx-1").await.expect("accepted");
    assert_eq!(commit.released, 2);
    assert_eq!(commit.applied, 0, "the cache is down");
    assert_eq!(
        commit.deferred + commit.batched,
        2,
        "everything released is kept for retry"
    );
    assert_eq!(host.stats().transactions_committed, 1);

    server.restart();
    drain(&host).await;
    assert_eq!(alive(&host, "alice").await, "global");
}
