//! Every example rule, built from source and run through the host.

use tagbust::{BoundRule, Operation, RuleConfig, RuleSet, Strategy, TargetKind};
use tagbust_tests::{components, event, load};

/// Example rules with a test in this file; a new example rule must be added here.
const TESTED: &[&str] = &[
    "rule-bulk-models",
    "rule-context-hierarchy",
    "rule-published-feeds",
    "rule-table-patterns",
    "rule-task-controllers",
    "rule-user-sessions",
];

#[test]
fn every_example_rule_has_a_test() {
    for (name, _) in components::ALL {
        if name.starts_with("rule-") {
            assert!(
                TESTED.contains(name),
                "example rule {name} has no test in examples.rs"
            );
        }
    }
}

fn plan_values(set: &RuleSet, e: tagbust::WriteEvent) -> Vec<(TargetKind, String, Strategy)> {
    let evaluation = set.evaluate(&[e]);
    let report = &evaluation.events[0];
    for o in &report.outcomes {
        assert!(
            matches!(o.result, tagbust::Outcome::Ok { .. }),
            "{} failed: {:?}",
            o.rule,
            o.result
        );
    }
    report
        .plan
        .iter()
        .map(|p| (p.kind, p.value.clone(), p.strategy))
        .collect()
}

#[test]
fn published_feeds_is_conditional() {
    let rule = load(components::PUBLISHED_FEEDS);
    assert_eq!(rule.info().name, "published-feeds");
    assert_eq!(rule.info().resources, vec!["posts"]);
    assert_eq!(rule.stamp().map(|s| s.contract.as_str()), Some("0.2.0"));
    let set = RuleSet::new(vec![BoundRule::new(rule)]);

    let mut publish = event("acme", "posts", Operation::Update);
    publish.ids = vec!["7".into()];
    publish.context.insert("author_id".into(), "42".into());
    publish.changes.push(tagbust::FieldChange {
        field: "status".into(),
        old: Some("draft".into()),
        new: Some("published".into()),
    });
    let imm = Strategy::Immediate;
    assert_eq!(
        plan_values(&set, publish.clone()),
        vec![
            (TargetKind::Key, "post:7".into(), imm),
            (TargetKind::Tag, "feed:home".into(), imm),
            (TargetKind::Tag, "feed:author:42".into(), imm),
        ]
    );

    let mut draft_edit = publish;
    draft_edit.changes[0].field = "title".into();
    assert_eq!(
        plan_values(&set, draft_edit),
        vec![(TargetKind::Key, "post:7".into(), imm)]
    );

    // Not triggered: another resource.
    let other = set.evaluate(&[event("acme", "comments", Operation::Create)]);
    assert!(other.events[0].outcomes.is_empty());
    assert!(other.events[0].plan.is_empty());
}

#[test]
fn table_patterns_emits_globs() {
    let set = RuleSet::new(vec![BoundRule::new(load(components::TABLE_PATTERNS))]);
    let mut e = event("fx", "hedge_instructions", Operation::BulkUpdate);
    e.changes.push(tagbust::FieldChange {
        field: "currency".into(),
        old: None,
        new: Some("USD".into()),
    });
    let plan = plan_values(&set, e);
    assert_eq!(plan.len(), 5);
    assert!(plan.iter().all(|(k, _, _)| *k == TargetKind::Pattern));
    assert_eq!(plan[0].1, "hedge_positions:*currency:USD*");
}

fn controllers_config() -> RuleConfig {
    let json = serde_json::json!({
        "rules": {"build_climate": {"invalidates_cache": ["climate", "wepp"]}},
        "cache_keys": {"climate": "{run_id}:climate", "wepp": "{run_id}:wepp"}
    });
    RuleConfig::from_json_object(json.as_object().expect("object"))
}

fn completed(tenant: &str, task: &str) -> tagbust::WriteEvent {
    tagbust_tests::completed_task(tenant, task, "300")
}

#[test]
fn task_controllers_reads_its_tenant_table() {
    let rule = load(components::TASK_CONTROLLERS);
    let configured = RuleSet::new(vec![
        BoundRule::new(rule.clone()).with_config(controllers_config()),
    ]);
    let plan = plan_values(&configured, completed("lab", "build_climate"));
    let keys: Vec<&str> = plan.iter().map(|(_, v, _)| v.as_str()).collect();
    assert_eq!(keys, vec!["300:climate", "300:wepp"]);

    // The same component without a table: a config error, a warning, no crash.
    let bare = RuleSet::new(vec![BoundRule::new(rule)]);
    let evaluation = bare.evaluate(&[completed("other", "build_climate")]);
    let outcome = &evaluation.events[0].outcomes[0];
    match &outcome.result {
        tagbust::Outcome::Error { failure, .. } => assert!(
            matches!(
                failure,
                tagbust::RuleFailure::Rule {
                    kind: tagbust::RuleErrorKind::Config,
                    ..
                }
            ),
            "{failure:?}"
        ),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(evaluation.events[0].plan.is_empty());
    let logs = &evaluation.runs[0].logs;
    assert_eq!(logs[0].level, tagbust::LogLevel::Warn, "{logs:?}");
}

#[test]
fn rules_merge_by_priority_and_dedupe() {
    // misbehave (priority -1) echoes `ok:<id>`; published-feeds (10) and table-patterns (5)
    // do not trigger on this resource; the plan keeps only what triggered.
    let set = RuleSet::new(vec![
        BoundRule::new(load(components::MISBEHAVE)),
        BoundRule::new(load(components::PUBLISHED_FEEDS)),
    ]);
    let mut e = event("acme", "posts", Operation::BulkDelete);
    e.ids = vec!["1".into(), "1".into(), "2".into()];
    e.changes.push(tagbust::FieldChange {
        field: "status".into(),
        old: Some("published".into()),
        new: None,
    });
    let evaluation = set.evaluate(&[e]);
    let report = &evaluation.events[0];
    let order: Vec<&str> = report.outcomes.iter().map(|o| o.rule.name()).collect();
    assert_eq!(order, vec!["published-feeds", "misbehave"]);
    let plan: Vec<(&str, &str)> = report
        .plan
        .iter()
        .map(|p| (p.value.as_str(), p.rule.name()))
        .collect();
    assert_eq!(
        plan,
        vec![
            ("post:1", "published-feeds"),
            ("post:2", "published-feeds"),
            ("feed:home", "published-feeds"),
            ("ok:1", "misbehave"),
            ("ok:2", "misbehave"),
        ]
    );
}

#[test]
fn identical_bytes_compile_once() {
    let engine = tagbust::Engine::new(tagbust::EngineOptions::default()).expect("engine");
    let path = std::path::Path::new(components::TABLE_PATTERNS);
    let a = engine.load_file(path).expect("loads");
    let b = engine.load_file(path).expect("loads again");
    assert_eq!(a.sha256_hex(), b.sha256_hex());
    assert_eq!(engine.compiled_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn user_sessions_cascades_bumps_and_batches() {
    let rules = RuleSet::new(vec![BoundRule::new(load(components::USER_SESSIONS))]);
    let tenants = tagbust::Tenants::new(tagbust::TenantSetup::new(rules).with_relationships(
        tagbust::Relationships::new().edges("user", &["session", "preferences"]),
    ));
    let host = tagbust::Tagbust::builder(std::sync::Arc::new(tagbust::MemoryBackend::new()))
        .tenants(tenants)
        .build()
        .expect("host builds");
    for (key, tag) in [
        ("profile", "user:1"),
        ("sessions", "session:1"),
        ("online", "presence:1"),
    ] {
        host.cache()
            .set(tagbust_tests::entry("t", key, &[tag]))
            .await
            .expect("set");
    }
    let mut presence = event("t", "users", Operation::Update);
    presence.ids = vec!["1".into()];
    presence.changes.push(tagbust::FieldChange {
        field: "last_seen".into(),
        old: None,
        new: Some("5".into()),
    });
    let report = host.submit(vec![presence]).await.expect("submit");
    assert_eq!(report.batched, 1);
    let mut profile = event("t", "users", Operation::Update);
    profile.ids = vec!["1".into()];
    profile.changes.push(tagbust::FieldChange {
        field: "preferences".into(),
        old: None,
        new: Some("dark".into()),
    });
    let report = host.submit(vec![profile]).await.expect("submit");
    // user:1, its cascade to session:1 and preferences:1, and the lazy preferences:1 bump.
    assert_eq!(report.applied, 4);
    let cache = host.cache();
    assert!(cache.get("t", "profile").await.expect("get").is_none());
    assert!(cache.get("t", "sessions").await.expect("get").is_none());
    assert!(
        cache.get("t", "online").await.expect("get").is_some(),
        "batched: not yet"
    );
    host.flush().await.expect("flush");
    assert!(cache.get("t", "online").await.expect("get").is_none());
}

fn values(set: &RuleSet, e: tagbust::WriteEvent) -> Vec<String> {
    plan_values(set, e).into_iter().map(|(_, v, _)| v).collect()
}

#[test]
fn bulk_models_covers_bulk_writes_without_ids() {
    let set = RuleSet::new(vec![BoundRule::new(load(components::BULK_MODELS))]);
    let e = event("k", "agent_memory", Operation::BulkDelete);
    assert_eq!(
        values(&set, e),
        vec!["agent_memory:queries", "agent_memory"]
    );
}

#[test]
fn context_hierarchy_is_scoped_to_the_user() {
    let set = RuleSet::new(vec![BoundRule::new(load(components::CONTEXT_HIERARCHY))]);
    let mut e = event("t", "branch_contexts", Operation::Update);
    e.ids = vec!["b1".into()];
    e.context.insert("user_id".into(), "alice".into());
    assert_eq!(
        values(&set, e.clone()),
        vec!["ctx:alice:branch:b1", "inherit:alice:branch:b1"]
    );
    e.context.clear();
    let evaluation = set.evaluate(&[e]);
    assert!(evaluation.events[0].plan.is_empty());
    assert!(matches!(
        &evaluation.events[0].outcomes[0].result,
        tagbust::Outcome::Error {
            failure: tagbust::RuleFailure::Rule {
                kind: tagbust::RuleErrorKind::InvalidEvent,
                ..
            },
            ..
        }
    ));
}
