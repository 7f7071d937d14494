//! # A conditional rule: feeds die only when a post becomes published
//!
//! Shows: reading changed fields, deciding *whether* to invalidate, tags versus keys, per-id
//! targets for bulk writes, and a different strategy per target.
//!
//! Writes to `posts`:
//! - any write invalidates each touched post's own entry (`post:{id}`);
//! - a post whose `status` becomes `published` (or a published post that is deleted) also
//!   invalidates the home feed and its author's feed (tags), immediately;
//! - other edits of a published post only refresh the feeds within the host's batching window.
//!
//! Build: `cargo build -p rule-published-feeds --target wasm32-wasip2 --profile guest`
//! (the tests crate's build script does this for you).

use tagbust_guest::{
    Context, Decision, Operation, Rule, RuleError, RuleInfo, Strategy, Target, WriteEvent,
};

pub struct PublishedFeeds;

impl Rule for PublishedFeeds {
    fn info() -> RuleInfo {
        RuleInfo::new("published-feeds", "1.0.0")
            .priority(10)
            .resources(["posts"])
            .description("Invalidates feeds when a post is published or a published post changes")
    }

    fn init(_: &Context) -> Result<Self, RuleError> {
        Ok(PublishedFeeds)
    }

    fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
        let mut decision = Decision::new();
        for id in &event.ids {
            decision.add(Target::key(format!("post:{id}")));
        }
        let was_published = event
            .change("status")
            .is_some_and(|c| c.old.as_deref() == Some("published"));
        let becomes_published = event.changed_to("status", "published");
        let deleted_published = event.operation.single() == Operation::Delete && was_published;
        let edit_of_published = was_published && !event.changed("status");
        let strategy = if becomes_published || deleted_published || event.changed("status") {
            Strategy::Immediate
        } else if edit_of_published {
            Strategy::Batched
        } else {
            return Ok(decision);
        };
        if !(becomes_published || was_published) {
            return Ok(decision);
        }
        decision.add(Target::tag("feed:home").strategy(strategy));
        if let Some(author) = event.context("author_id") {
            decision.add(Target::tag(format!("feed:author:{author}")).strategy(strategy));
        }
        Ok(decision)
    }
}

tagbust_guest::export_rule!(PublishedFeeds);

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(event: WriteEvent) -> Vec<(String, Option<Strategy>)> {
        PublishedFeeds
            .evaluate(&event, &Context::empty())
            .expect("rule succeeds")
            .into_targets()
            .into_iter()
            .map(|t| (t.value, t.strategy))
            .collect()
    }

    #[test]
    fn publishing_kills_feeds_immediately() {
        let e = WriteEvent::new("acme", "posts", Operation::Update)
            .with_ids(["7"])
            .with_context("author_id", "42")
            .with_change("status", Some("draft"), Some("published"));
        let imm = Some(Strategy::Immediate);
        assert_eq!(
            eval(e),
            vec![
                ("post:7".into(), None),
                ("feed:home".into(), imm),
                ("feed:author:42".into(), imm)
            ]
        );
    }

    #[test]
    fn drafts_only_touch_their_own_entry() {
        let e = WriteEvent::new("acme", "posts", Operation::Update)
            .with_ids(["7"])
            .with_change("title", Some("a"), Some("b"));
        assert_eq!(eval(e), vec![("post:7".into(), None)]);
    }

    #[test]
    fn editing_a_published_post_batches_the_feed_refresh() {
        let e = WriteEvent::new("acme", "posts", Operation::BulkUpdate)
            .with_ids(["1", "2"])
            .with_change("status", Some("published"), Some("published"))
            .with_change("title", Some("a"), Some("b"));
        let got = eval(e);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ("feed:home".into(), Some(Strategy::Batched)));
    }

    #[test]
    fn unpublishing_is_immediate() {
        let e = WriteEvent::new("acme", "posts", Operation::Update)
            .with_ids(["7"])
            .with_change("status", Some("published"), Some("draft"));
        assert_eq!(eval(e)[1], ("feed:home".into(), Some(Strategy::Immediate)));
    }
}
