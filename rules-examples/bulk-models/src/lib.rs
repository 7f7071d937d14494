//! # Model-level invalidation on every write path, bulk forms included
//!
//! Shows: a rule that triggers on *every* operation of every model, so no write path can be
//! left out; per-id targets for bulk writes; and a wider target when a bulk write does not
//! know its rows (a filter-based "delete everything").
//!
//! The seed (an ORM's bulk nodes): each node called the cache invalidation by hand, and bulk
//! update, delete and upsert forgot to, so a list query after a bulk delete was served from
//! the cache. Here the operation set is empty (= all eight), and the bulk forms are ordinary
//! operations of one event with many ids.
//!
//! Entries of a model `M` are tagged by the service that caches them:
//! - a query result (list, count, filter) carries `M` and `M:queries`;
//! - one record's cache carries `M` and `M:{id}`.
//!
//! Any write to `M` kills `M:queries` (a list may change on any create, update, delete or
//! upsert) and `M:{id}` for each id it names. A bulk update, delete or upsert that names no ids
//! kills `M`: the rows it touched are unknown, so every cached record of the model dies too.
//!
//! Build: `cargo build -p rule-bulk-models --target wasm32-wasip2 --profile guest`.

use tagbust_guest::{Context, Decision, Operation, Rule, RuleError, RuleInfo, WriteEvent};

pub struct BulkModels;

impl Rule for BulkModels {
    fn info() -> RuleInfo {
        RuleInfo::new("bulk-models", "1.0.0")
            .priority(10)
            .description("Every write to a model kills its query caches and its touched records")
    }

    fn init(_: &Context) -> Result<Self, RuleError> {
        Ok(BulkModels)
    }

    fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
        let model = &event.resource;
        let mut decision = Decision::new().tag(format!("{model}:queries"));
        for id in &event.ids {
            decision = decision.tag(format!("{model}:{id}"));
        }
        let rows_unknown = event.ids.is_empty()
            && event.operation.is_bulk()
            && event.operation != Operation::BulkCreate;
        if rows_unknown {
            decision = decision.tag(model.clone());
        }
        Ok(decision)
    }
}

tagbust_guest::export_rule!(BulkModels);

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(event: WriteEvent) -> Vec<String> {
        BulkModels
            .evaluate(&event, &Context::empty())
            .expect("rule succeeds")
            .into_targets()
            .into_iter()
            .map(|t| t.value)
            .collect()
    }

    #[test]
    fn triggers_on_every_operation() {
        let info = BulkModels::info();
        assert!(info.operations.is_empty() && info.resources.is_empty());
    }

    #[test]
    fn every_operation_kills_the_model_queries() {
        for op in Operation::ALL {
            let t = tags(WriteEvent::new("t", "agent_memory", op).with_ids(["1"]));
            assert_eq!(t, vec!["agent_memory:queries", "agent_memory:1"], "{op:?}");
        }
    }

    #[test]
    fn bulk_writes_name_every_row() {
        let e = WriteEvent::new("t", "agent_memory", Operation::BulkUpdate).with_ids(["1", "2"]);
        assert_eq!(
            tags(e),
            vec!["agent_memory:queries", "agent_memory:1", "agent_memory:2"]
        );
    }

    #[test]
    fn a_bulk_write_without_ids_kills_the_whole_model() {
        for op in [
            Operation::BulkUpdate,
            Operation::BulkDelete,
            Operation::BulkUpsert,
        ] {
            let t = tags(WriteEvent::new("t", "agent_memory", op));
            assert_eq!(t, vec!["agent_memory:queries", "agent_memory"], "{op:?}");
        }
        // Creating rows cannot make a cached record stale: the queries are enough.
        let t = tags(WriteEvent::new("t", "agent_memory", Operation::BulkCreate));
        assert_eq!(t, vec!["agent_memory:queries"]);
    }
}
