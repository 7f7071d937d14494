//! # Strategies in one rule: cascade, lazy and batched
//!
//! Shows: choosing the strategy per target, and leaving fan-out to the host's relationship
//! graph instead of hard-coding it (the tagged engine of the seed reports).
//!
//! Writes to `users`, per id:
//! - a profile change invalidates `user:{id}` immediately **with cascade**: the tenant's
//!   relationships (e.g. `user → session, preferences`) decide what else dies;
//! - a `preferences` change bumps `preferences:{id}` **lazily** (O(1): stale entries read as
//!   misses), since preferences are read often and written rarely;
//! - a write that only touches `last_seen` refreshes `presence:{id}` **batched**: presence
//!   updates arrive in storms and one invalidation per window is plenty;
//! - deleting users invalidates everything about them immediately, cascading, and also every
//!   namespaced key `user:{id}:{subtype}` (`user:42:session`, `user:42:avatar`, …) through the
//!   glob `user:{id}:*`, so a subtype the service cached without a tag still dies.
//!
//! Build: `cargo build -p rule-user-sessions --target wasm32-wasip2 --profile guest`.

use tagbust_guest::template::escape_glob;
use tagbust_guest::{
    Context, Decision, Operation, Rule, RuleError, RuleInfo, Strategy, Target, WriteEvent,
};

pub struct UserSessions;

impl Rule for UserSessions {
    fn info() -> RuleInfo {
        RuleInfo::new("user-sessions", "1.0.0")
            .priority(30)
            .resources(["users"])
            .description(
                "User data: cascade on profile changes, lazy preferences, batched presence",
            )
    }

    fn init(_: &Context) -> Result<Self, RuleError> {
        Ok(UserSessions)
    }

    fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
        let mut decision = Decision::new();
        let deleted = event.operation.single() == Operation::Delete;
        let only_presence = !deleted
            && !event.changes.is_empty()
            && event.changes.iter().all(|c| c.field == "last_seen");
        for id in &event.ids {
            if only_presence {
                decision.add(Target::tag(format!("presence:{id}")).strategy(Strategy::Batched));
                continue;
            }
            decision.add(Target::tag(format!("user:{id}")).cascade());
            if deleted {
                let id = escape_glob(id);
                decision.add(Target::pattern(format!("user:{id}:*")));
            }
            if event.changed("preferences") && !deleted {
                decision.add(Target::tag(format!("preferences:{id}")).strategy(Strategy::Lazy));
            }
        }
        Ok(decision)
    }
}

tagbust_guest::export_rule!(UserSessions);

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(e: WriteEvent) -> Vec<(String, Option<Strategy>, bool)> {
        UserSessions
            .evaluate(&e, &Context::empty())
            .unwrap()
            .into_targets()
            .into_iter()
            .map(|t| (t.value, t.strategy, t.cascade))
            .collect()
    }

    #[test]
    fn profile_changes_cascade() {
        let e = WriteEvent::new("t", "users", Operation::Update)
            .with_ids(["42"])
            .with_change("email", Some("a@x"), Some("b@x"));
        assert_eq!(targets(e), vec![("user:42".into(), None, true)]);
    }

    #[test]
    fn preferences_are_lazy() {
        let e = WriteEvent::new("t", "users", Operation::Update)
            .with_ids(["42"])
            .with_change("preferences", Some("{}"), Some("{\"dark\":true}"));
        assert_eq!(
            targets(e)[1],
            ("preferences:42".into(), Some(Strategy::Lazy), false)
        );
    }

    #[test]
    fn presence_storms_are_batched_per_user() {
        let e = WriteEvent::new("t", "users", Operation::BulkUpdate)
            .with_ids(["1", "2"])
            .with_change("last_seen", Some("10"), Some("11"));
        assert_eq!(
            targets(e),
            vec![
                ("presence:1".into(), Some(Strategy::Batched), false),
                ("presence:2".into(), Some(Strategy::Batched), false)
            ]
        );
    }

    #[test]
    fn bulk_deletes_cascade_for_every_id() {
        let e = WriteEvent::new("t", "users", Operation::BulkDelete).with_ids(["1", "2", "3"]);
        let t = targets(e);
        assert_eq!(t.len(), 6);
        assert_eq!(t[0], ("user:1".into(), None, true));
        assert_eq!(t[1], ("user:1:*".into(), None, false));
    }

    #[test]
    fn a_deleted_users_namespaced_keys_match_only_that_user() {
        let e = WriteEvent::new("t", "users", Operation::Delete).with_ids(["4*"]);
        assert_eq!(targets(e)[1].0, "user:4\\*:*");
    }
}
