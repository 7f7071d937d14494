//! The published-feeds rule (`rules-examples/published-feeds`) as an Extism plugin, written
//! the way Extism's Rust users write one: serde types, `#[plugin_fn]`, JSON in (the batch of
//! events) and JSON out (one list of targets per event).
//!
//! The logic is the tagbust rule's, line for line: every touched post's own key; the home and
//! author feeds when a post becomes published, a published post is deleted or its status
//! moves (immediately), or a published post is edited (batched).
//!
//! Build: `scripts/bench-extism.sh` (profile `plugin`, target `wasm32-unknown-unknown`).

use std::collections::BTreeMap;

use extism_pdk::{FnResult, Json, plugin_fn};
use serde::{Deserialize, Serialize};

/// A write, in the JSON shape tagbust's host accepts.
#[derive(Deserialize)]
pub struct WriteEvent {
    pub operation: String,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub changes: Vec<FieldChange>,
    #[serde(default)]
    pub context: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What to invalidate; no `strategy` means the host's default for the rule.
#[derive(Serialize)]
pub struct Target {
    pub kind: &'static str,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
}

impl WriteEvent {
    fn change(&self, field: &str) -> Option<&FieldChange> {
        self.changes.iter().find(|c| c.field == field)
    }

    fn changed(&self, field: &str) -> bool {
        self.change(field).is_some_and(|c| c.old != c.new)
    }

    fn changed_to(&self, field: &str, value: &str) -> bool {
        self.change(field)
            .is_some_and(|c| c.new.as_deref() == Some(value) && c.old.as_deref() != Some(value))
    }

    /// `delete` or `bulk_delete`.
    fn is_delete(&self) -> bool {
        self.operation
            .strip_prefix("bulk_")
            .unwrap_or(&self.operation)
            == "delete"
    }
}

fn evaluate_one(event: &WriteEvent) -> Vec<Target> {
    let mut targets: Vec<Target> = event
        .ids
        .iter()
        .map(|id| Target {
            kind: "key",
            value: format!("post:{id}"),
            strategy: None,
        })
        .collect();
    let was_published = event
        .change("status")
        .is_some_and(|c| c.old.as_deref() == Some("published"));
    let becomes_published = event.changed_to("status", "published");
    let deleted_published = event.is_delete() && was_published;
    let edit_of_published = was_published && !event.changed("status");
    let strategy = if becomes_published || deleted_published || event.changed("status") {
        "immediate"
    } else if edit_of_published {
        "batched"
    } else {
        return targets;
    };
    if !(becomes_published || was_published) {
        return targets;
    }
    targets.push(Target {
        kind: "tag",
        value: "feed:home".to_string(),
        strategy: Some(strategy),
    });
    if let Some(author) = event.context.get("author_id") {
        targets.push(Target {
            kind: "tag",
            value: format!("feed:author:{author}"),
            strategy: Some(strategy),
        });
    }
    targets
}

/// The batch in, one list of targets per event out, in order.
#[plugin_fn]
pub fn evaluate(Json(events): Json<Vec<WriteEvent>>) -> FnResult<Json<Vec<Vec<Target>>>> {
    Ok(Json(events.iter().map(evaluate_one).collect()))
}
