//! Seed 002: a completed task (`build_climate`) kills the caches of the controllers a JSON
//! rules table names, with key templates such as `{run_id}:climate`.
//!
//! Flaws fixed: (1) a missing or corrupt rules file became `{"rules": {}}` behind a warning,
//! so every invalidation silently stopped; here it is a counted `config` rule error with a
//! warning, and the host's failure policy decides; (2) the rules were loaded once behind an
//! `lru_cache`, so "rules file changes are picked up" could not hold; here the table is tenant
//! configuration read at every batch, and a new table applies to the next event; (3) a
//! controller without a key template raised inside the `try` and dropped the whole task's
//! invalidation; here it is a configuration error naming the controller.
//!
//! Every scenario runs with the Rust rule (`<scenario>::memory`, `::redis`) and with its Python
//! twin (`python::<scenario>::…`), which must pass them unchanged.

use tagbust::{
    Backend, BoundRule, FailurePolicy, FallbackScope, HostOptions, LogLevel, OpKind, Rule,
    RuleConfig, RuleSet, TenantSetup, Tenants,
};
use tagbust_tests::completed_task as completed;

use crate::support::{cached, config, host_with, on_both_backends, put, recording, submit};

fn table(rules: serde_json::Value) -> RuleConfig {
    config(serde_json::json!({
        "rules": rules,
        "cache_keys": {
            "climate": "{run_id}:climate",
            "wepp": "{run_id}:wepp",
            "soils": "{run_id}:soils",
        },
    }))
}

fn lab_table() -> RuleConfig {
    table(serde_json::json!({
        "build_climate": {"invalidates_cache": ["climate", "wepp"]},
        "build_soils": {"invalidates_cache": ["soils", "wepp"]},
    }))
}

/// One component, many tenants: `lab` and `farm` have tables of their own, `bare` has none,
/// `broken` has one that is not JSON (and a fallback that clears the whole tenant).
fn tenants(rule: &Rule) -> Tenants {
    let with_policy = |config: RuleConfig, fallback: FallbackScope| {
        TenantSetup::new(RuleSet::new(vec![
            BoundRule::new(rule.clone())
                .with_config(config)
                .with_policy(FailurePolicy::Fallback, fallback),
        ]))
    };
    let with = |config: RuleConfig| with_policy(config, FallbackScope::Resource);
    let farm = table(serde_json::json!({"build_climate": {"invalidates_cache": ["climate"]}}));
    let broken = config(serde_json::json!({"rules": "{not json", "cache_keys": "{}"}));
    Tenants::new(with(RuleConfig::default()))
        .with_tenant("lab", with(lab_table()))
        .with_tenant("farm", with(farm))
        .with_tenant("broken", with_policy(broken, FallbackScope::Tenant))
}

const KEYS: [&str; 4] = ["300:climate", "300:wepp", "300:soils", "301:climate"];

async fn cache_controllers<B: Backend>(host: &tagbust::Tagbust<B>, tenant: &str) {
    for key in KEYS {
        put(host, tenant, key, &[]).await;
    }
}

/// The named controllers of the completed task's run die, in one backend call (one Lua
/// script on Redis: the deletes of one task are atomic); other runs, other controllers and
/// other tenants' tables are untouched.
async fn a_completed_task_kills_its_controllers<B: Backend>(rule: Rule, backend: B) {
    let host = host_with(recording(backend), tenants(&rule), HostOptions::default());
    for tenant in ["lab", "farm"] {
        cache_controllers(&host, tenant).await;
    }
    let report = submit(&host, completed("lab", "build_climate", "300")).await;
    assert_eq!(report.applied, 2);
    assert_eq!(
        cached(&host, "lab", &KEYS).await,
        vec!["300:soils", "301:climate"]
    );
    let calls = host.backend().calls();
    assert_eq!(calls.len(), 1, "one task, one backend call");
    let keys: Vec<(&str, OpKind)> = calls[0]
        .iter()
        .map(|o| (o.value.as_str(), o.kind))
        .collect();
    assert_eq!(
        keys,
        vec![("300:climate", OpKind::Key), ("300:wepp", OpKind::Key)]
    );

    submit(&host, completed("farm", "build_climate", "300")).await;
    assert_eq!(
        cached(&host, "farm", &KEYS).await,
        vec!["300:wepp", "300:soils", "301:climate"],
        "farm's table names only the climate controller"
    );

    // A task that failed, or one the table does not name, kills nothing.
    let mut failed = completed("lab", "build_soils", "301");
    failed.changes[0].new = Some("failed".into());
    let report = host
        .submit(vec![failed, completed("lab", "export_report", "301")])
        .await
        .expect("submit");
    assert_eq!((report.targets, report.rule_failures), (0, 0));
    assert_eq!(cached(&host, "lab", &KEYS).await.len(), 2);
}

/// A tenant without a table, or with a malformed one: a warning and a counted `config` error,
/// no crash, and the host keeps serving the other tenants.
async fn a_missing_or_malformed_table_is_reported<B: Backend>(rule: Rule, backend: B) {
    let host = host_with(backend, tenants(&rule), HostOptions::default());
    for tenant in ["bare", "broken", "lab"] {
        cache_controllers(&host, tenant).await;
    }
    let report = host
        .submit(vec![
            completed("bare", "build_climate", "300"),
            completed("broken", "build_climate", "300"),
        ])
        .await
        .expect("a rule error is not a failed submission");
    assert_eq!(report.rule_failures, 2);
    let stats = &host.stats().rules["task-controllers"];
    assert_eq!(stats.failures.get("rule_error"), Some(&2));
    assert_eq!(
        stats.warnings, 2,
        "each tenant's warning is counted, not only logged"
    );
    // The failure policy answers both failures with a fallback: `bare`'s (the default scope)
    // invalidates the resource-level tag `tasks`, which these controller entries do not
    // carry, so they stay; `broken`'s clears the whole tenant.
    assert_eq!(host.stats().rule_fallbacks, 2);
    assert_eq!(cached(&host, "bare", &KEYS).await.len(), 4);
    assert!(cached(&host, "broken", &KEYS).await.is_empty());
    assert_eq!(
        cached(&host, "lab", &KEYS).await.len(),
        4,
        "other tenants untouched"
    );

    // The warning and the error kind, as the rule reported them.
    let evaluation = tenants(&rule).evaluate(&[
        completed("bare", "build_climate", "300"),
        completed("broken", "build_climate", "300"),
    ]);
    for (report, wanted) in evaluation
        .events
        .iter()
        .zip(["no `rules` table", "not a valid"])
    {
        match &report.outcomes[0].result {
            tagbust::Outcome::Error { failure, message } => {
                assert_eq!(failure.code(), "rule_error");
                assert!(message.contains(wanted), "{message}");
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
    for run in &evaluation.runs {
        assert_eq!(
            run.logs[0].level,
            LogLevel::Warn,
            "{}: {:?}",
            run.tenant,
            run.logs
        );
    }

    submit(&host, completed("lab", "build_climate", "300")).await;
    assert_eq!(cached(&host, "lab", &KEYS).await.len(), 2, "lab is served");
}

/// A new table applies from the next event on, without reloading the component.
async fn a_changed_table_applies_to_the_next_event<B: Backend>(rule: Rule, backend: B) {
    let host = host_with(backend, tenants(&rule), HostOptions::default());
    cache_controllers(&host, "lab").await;
    let soils_only = table(serde_json::json!({"build_climate": {"invalidates_cache": ["soils"]}}));
    host.set_tenants(tenants(&rule).with_tenant(
        "lab",
        TenantSetup::new(RuleSet::new(vec![
            BoundRule::new(rule).with_config(soils_only),
        ])),
    ));
    submit(&host, completed("lab", "build_climate", "300")).await;
    assert_eq!(
        cached(&host, "lab", &KEYS).await,
        vec!["300:climate", "300:wepp", "301:climate"]
    );
}

on_both_backends!(
    with "rust", tagbust_tests::load(tagbust_tests::components::TASK_CONTROLLERS) =>
    a_completed_task_kills_its_controllers,
    a_missing_or_malformed_table_is_reported,
    a_changed_table_applies_to_the_next_event,
);

/// The same scenarios with the Python twin (`rules-examples-py/task-controllers`).
mod python {
    use super::*;

    on_both_backends!(
        with "python", tagbust_tests::python_task_controllers() =>
        a_completed_task_kills_its_controllers,
        a_missing_or_malformed_table_is_reported,
        a_changed_table_applies_to_the_next_event,
    );
}
