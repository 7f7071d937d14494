//! # A table-driven rule: completed tasks kill the controller caches a per-tenant table names
//!
//! Shows: one generic component serving many tenants, each with its own table, read from the
//! rule's per-tenant configuration; key templates (`{run_id}`); and a missing or malformed
//! table reported as a configuration error (the host applies its failure policy) instead of a
//! crash.
//!
//! Configuration (JSON text under two keys, e.g. `tagbust eval --config task-controllers=FILE`
//! with `{"rules": {...}, "cache_keys": {...}}`):
//! - `rules`: `{"build_climate": {"invalidates_cache": ["climate", "wepp"]}, ...}`
//! - `cache_keys`: `{"climate": "{run_id}:climate", "wepp": "{run_id}:wepp"}`
//!
//! Event: a write to `tasks` whose `status` becomes `completed`; each id is a task name, and
//! the context carries the template values (`run_id`).
//!
//! Build: `cargo build -p rule-task-controllers --target wasm32-wasip2 --profile guest`.

use std::collections::BTreeMap;

use serde::Deserialize;
use tagbust_guest::template::render;
use tagbust_guest::{Context, Decision, Level, Operation, Rule, RuleError, RuleInfo, WriteEvent};

#[derive(Deserialize)]
struct TaskRule {
    invalidates_cache: Vec<String>,
}

pub struct TaskControllers {
    rules: BTreeMap<String, TaskRule>,
    cache_keys: BTreeMap<String, String>,
}

fn parse<T: for<'de> Deserialize<'de>>(ctx: &Context, key: &str) -> Result<T, RuleError> {
    let text = ctx.config(key).ok_or_else(|| {
        ctx.log(Level::Warn, "rule table missing", &[("key", key)]);
        RuleError::Config(format!("no `{key}` table is configured for this tenant"))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        ctx.log(Level::Warn, "rule table malformed", &[("key", key)]);
        RuleError::Config(format!("`{key}` is not a valid table: {e}"))
    })
}

impl Rule for TaskControllers {
    fn info() -> RuleInfo {
        RuleInfo::new("task-controllers", "1.0.0")
            .priority(20)
            .resources(["tasks"])
            .operations([
                Operation::Update,
                Operation::Upsert,
                Operation::BulkUpdate,
                Operation::BulkUpsert,
            ])
            .description("Kills controller caches named by the tenant's task table")
    }

    fn init(ctx: &Context) -> Result<Self, RuleError> {
        let rules = parse(ctx, "rules")?;
        let cache_keys = parse(ctx, "cache_keys")?;
        Ok(TaskControllers { rules, cache_keys })
    }

    fn evaluate(&self, event: &WriteEvent, ctx: &Context) -> Result<Decision, RuleError> {
        let mut decision = Decision::new();
        if !event.changed_to("status", "completed") {
            return Ok(decision);
        }
        for task in &event.ids {
            let Some(rule) = self.rules.get(task) else {
                continue;
            };
            for controller in &rule.invalidates_cache {
                let Some(template) = self.cache_keys.get(controller) else {
                    ctx.log(
                        Level::Warn,
                        "controller has no cache key template",
                        &[("controller", controller)],
                    );
                    return Err(RuleError::Config(format!(
                        "task `{task}` names controller `{controller}`, which has no cache key"
                    )));
                };
                decision = decision.key(render(template, event, Some(task))?);
            }
        }
        Ok(decision)
    }
}

tagbust_guest::export_rule!(TaskControllers);

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::with_config([
            (
                "rules",
                r#"{"build_climate":{"invalidates_cache":["climate","wepp"]},"build_soils":{"invalidates_cache":["soils"]}}"#,
            ),
            (
                "cache_keys",
                r#"{"climate":"{run_id}:climate","wepp":"{run_id}:wepp","soils":"{run_id}:soils"}"#,
            ),
        ])
    }

    fn completed(task: &str) -> WriteEvent {
        WriteEvent::new("lab", "tasks", Operation::Update)
            .with_ids([task])
            .with_context("run_id", "300")
            .with_change("status", Some("running"), Some("completed"))
    }

    fn keys(ctx: &Context, e: &WriteEvent) -> Result<Vec<String>, RuleError> {
        let rule = TaskControllers::init(ctx)?;
        let d = rule.evaluate(e, ctx)?;
        Ok(d.into_targets().into_iter().map(|t| t.value).collect())
    }

    #[test]
    fn completed_task_kills_its_controllers() {
        assert_eq!(
            keys(&ctx(), &completed("build_climate")).unwrap(),
            vec!["300:climate", "300:wepp"]
        );
    }

    #[test]
    fn other_status_changes_and_unknown_tasks_kill_nothing() {
        let mut e = completed("build_climate");
        e.changes[0].new = Some("failed".into());
        assert!(keys(&ctx(), &e).unwrap().is_empty());
        assert!(keys(&ctx(), &completed("unknown_task")).unwrap().is_empty());
    }

    #[test]
    fn missing_table_is_a_config_error_with_a_warning() {
        let ctx = Context::with_config([("rules", "{}")]);
        let err = keys(&ctx, &completed("build_climate")).unwrap_err();
        assert!(matches!(err, RuleError::Config(m) if m.contains("cache_keys")));
        assert_eq!(ctx.logs()[0].level, Level::Warn);
    }

    #[test]
    fn malformed_table_is_a_config_error() {
        let ctx = Context::with_config([("rules", "{not json"), ("cache_keys", "{}")]);
        assert!(matches!(
            keys(&ctx, &completed("x")),
            Err(RuleError::Config(_))
        ));
    }

    #[test]
    fn missing_template_value_is_an_invalid_event() {
        let mut e = completed("build_climate");
        e.context.clear();
        assert!(matches!(keys(&ctx(), &e), Err(RuleError::InvalidEvent(_))));
    }
}
