//! # Hierarchical contexts: a change kills its own context and everything that inherits it
//!
//! Shows: propagation down a hierarchy (Global → Project → Branch → Task) by tagging each
//! cached view with its ancestors, per-user isolation carried in every tag, a condition read
//! from the tenant's configuration (changes that nothing inherits stay local), and an event
//! the rule cannot scope refused instead of guessed.
//!
//! The seed (a task-management service): invalidation had been commented out in every
//! context repository, and was then re-added by hand in each create, update and delete path
//! of each level. Here one rule covers the four levels and the task table.
//!
//! Entries of user `U` are tagged by the service that caches them:
//! - every context cache of `U` carries `ctx:U`;
//! - the cache of one context (level `L`, id `X`) carries `ctx:U:L:X` (`ctx:U:global` for the
//!   user's global context);
//! - a resolved view, which merges a context with its ancestors, carries `inherit:U:L:X` for
//!   itself and for each ancestor: task `T` of branch `B` of project `P` carries
//!   `inherit:U:global`, `inherit:U:project:P`, `inherit:U:branch:B`, `inherit:U:task:T`.
//!
//! A write to a context kills `ctx:U:L:X` and `inherit:U:L:X`, so its own caches and the
//! resolved views of it and all its descendants die, however deep, without listing children.
//! (Cascading through the host's relationships would not fit: an edge keeps the id, and a
//! child's id is not its parent's.) An update whose changed fields are all listed in the
//! tenant's `local_fields` (comma-separated) kills only `ctx:U:L:X`: nothing inherits them.
//! A bulk write without ids kills `ctx:U`: every context of that user, and no one else's.
//!
//! Resources: `global_contexts`, `project_contexts`, `branch_contexts`, `task_contexts`, and
//! `tasks` (a task row feeds its task context). The writer's context must carry `user_id`; an
//! event without it is an `invalid-event` error, never an unscoped invalidation.
//!
//! Build: `cargo build -p rule-context-hierarchy --target wasm32-wasip2 --profile guest`.

use tagbust_guest::{Context, Decision, Operation, Rule, RuleError, RuleInfo, WriteEvent};

/// Resource → hierarchy level.
const LEVELS: &[(&str, &str)] = &[
    ("global_contexts", "global"),
    ("project_contexts", "project"),
    ("branch_contexts", "branch"),
    ("task_contexts", "task"),
    ("tasks", "task"),
];

pub struct ContextHierarchy {
    local_fields: Vec<String>,
}

impl ContextHierarchy {
    /// True when the write only changed fields nothing inherits.
    fn stays_local(&self, event: &WriteEvent) -> bool {
        event.operation.single() == Operation::Update
            && !event.changes.is_empty()
            && event
                .changes
                .iter()
                .all(|c| self.local_fields.contains(&c.field))
    }
}

impl Rule for ContextHierarchy {
    fn info() -> RuleInfo {
        RuleInfo::new("context-hierarchy", "1.0.0")
            .priority(40)
            .resources(LEVELS.iter().map(|(r, _)| *r))
            .description("A context change kills its caches and every view inheriting it")
    }

    fn init(ctx: &Context) -> Result<Self, RuleError> {
        let local_fields = ctx
            .config("local_fields")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(ContextHierarchy { local_fields })
    }

    fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
        let Some((_, level)) = LEVELS.iter().find(|(r, _)| *r == event.resource) else {
            return Ok(Decision::new());
        };
        let user = match event.context("user_id") {
            Some(user) if !user.is_empty() => user,
            _ => {
                return Err(RuleError::InvalidEvent(format!(
                    "a write to {} must carry `user_id`: whose contexts changed is unknown",
                    event.resource
                )));
            }
        };
        if event.ids.is_empty() && *level != "global" {
            return Ok(Decision::new().tag(format!("ctx:{user}")));
        }
        let scopes: Vec<String> = if *level == "global" {
            vec!["global".to_owned()]
        } else {
            event.ids.iter().map(|id| format!("{level}:{id}")).collect()
        };
        let local = self.stays_local(event);
        let mut decision = Decision::new();
        for scope in scopes {
            decision = decision.tag(format!("ctx:{user}:{scope}"));
            if !local {
                decision = decision.tag(format!("inherit:{user}:{scope}"));
            }
        }
        Ok(decision)
    }
}

tagbust_guest::export_rule!(ContextHierarchy);

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(ctx: &Context, event: &WriteEvent) -> Result<Vec<String>, RuleError> {
        let rule = ContextHierarchy::init(ctx)?;
        let d = rule.evaluate(event, ctx)?;
        Ok(d.into_targets().into_iter().map(|t| t.value).collect())
    }

    fn write(resource: &str, op: Operation, ids: &[&str]) -> WriteEvent {
        WriteEvent::new("t", resource, op)
            .with_ids(ids.iter().copied())
            .with_context("user_id", "alice")
    }

    #[test]
    fn a_change_kills_its_context_and_what_inherits_it() {
        let e = write("branch_contexts", Operation::Update, &["b1"]);
        assert_eq!(
            tags(&Context::empty(), &e).unwrap(),
            vec!["ctx:alice:branch:b1", "inherit:alice:branch:b1"]
        );
        let e = write("global_contexts", Operation::Create, &["g"]);
        assert_eq!(
            tags(&Context::empty(), &e).unwrap(),
            vec!["ctx:alice:global", "inherit:alice:global"]
        );
    }

    #[test]
    fn local_fields_do_not_propagate() {
        let ctx = Context::with_config([("local_fields", "notes, title")]);
        let e = write("project_contexts", Operation::Update, &["p"]).with_change(
            "notes",
            Some("a"),
            Some("b"),
        );
        assert_eq!(tags(&ctx, &e).unwrap(), vec!["ctx:alice:project:p"]);
        let e = e.with_change("settings", Some("{}"), Some("{\"x\":1}"));
        assert_eq!(tags(&ctx, &e).unwrap().len(), 2, "settings are inherited");
    }

    #[test]
    fn bulk_writes_without_ids_stay_inside_the_user() {
        let e = write("task_contexts", Operation::BulkDelete, &[]);
        assert_eq!(tags(&Context::empty(), &e).unwrap(), vec!["ctx:alice"]);
    }

    #[test]
    fn a_write_without_a_user_is_refused() {
        let e = WriteEvent::new("t", "tasks", Operation::Delete).with_ids(["7"]);
        assert!(matches!(
            tags(&Context::empty(), &e),
            Err(RuleError::InvalidEvent(m)) if m.contains("user_id")
        ));
    }
}
