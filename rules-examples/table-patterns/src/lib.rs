//! # A pattern rule: table writes kill the key patterns that depend on them
//!
//! Shows: glob `pattern` targets, a dependency map kept in rule code (versioned and tested
//! with the rule instead of living in a service), and narrowing by a value the write carries.
//!
//! A treasury service caches reads of views under keys such as
//! `hedge_positions:currency:USD:entity:E1`. A write to a table must kill every cached view
//! computed from it: the map below lists, per table, those views, and the rule kills
//! `{view}*`. When the write says which currency or entity it touched (a changed `currency` /
//! `entity_id` field, or the same key in its context), the patterns narrow to
//! `{view}:*currency:{value}*`, for old and new values both, instead of killing every
//! currency's views. (A prefix such as `USD` also matches `USDX`: over-invalidation, never
//! under.) A write to reference data (`fx_rates`, `entities`) narrows the same way over every
//! view: that is invalidation by currency or by entity.
//!
//! Build: `cargo build -p rule-table-patterns --target wasm32-wasip2 --profile guest`.

use tagbust_guest::template::escape_glob;
use tagbust_guest::{Context, Decision, Rule, RuleError, RuleInfo, WriteEvent};

/// Table → the cached views computed from it (their keys start with the view name).
pub const DEPENDENCIES: &[(&str, &[&str])] = &[
    (
        "hedge_instructions",
        &[
            "hedge_positions",
            "v_available_amounts_fast",
            "v_entity_capacity_complete",
            "exposure_analysis",
            "hedge_effectiveness",
        ],
    ),
    (
        "position_nav_master",
        &[
            "v_available_amounts_fast",
            "v_entity_capacity_complete",
            "exposure_analysis",
        ],
    ),
    ("deal_bookings", &["hedge_positions", "deal_summary"]),
    ("gl_entries", &["gl_balances", "hedge_effectiveness"]),
    // Reference data every view reads: a rate or an entity changes every view of that
    // currency or entity (the seed's manual "invalidate by currency / by entity").
    ("fx_rates", EVERY_VIEW),
    ("entities", EVERY_VIEW),
];

/// Every cached view.
const EVERY_VIEW: &[&str] = &[
    "hedge_positions",
    "v_available_amounts_fast",
    "v_entity_capacity_complete",
    "exposure_analysis",
    "hedge_effectiveness",
    "deal_summary",
    "gl_balances",
];

/// The fields whose value narrows a pattern.
const NARROWING: &[&str] = &["currency", "entity_id"];

pub struct TablePatterns;

impl TablePatterns {
    /// Values of `field` this write touched: old and new of a change, or the context value.
    fn values(event: &WriteEvent, field: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = event.change(field) {
            out.extend(c.old.iter().chain(c.new.iter()).cloned());
        }
        if let Some(v) = event.context(field) {
            out.push(v.to_owned());
        }
        out.sort();
        out.dedup();
        out
    }
}

impl Rule for TablePatterns {
    fn info() -> RuleInfo {
        RuleInfo::new("table-patterns", "1.0.0")
            .priority(5)
            .resources(DEPENDENCIES.iter().map(|(t, _)| *t))
            .description("Kills the cached views computed from the written table")
    }

    fn init(_: &Context) -> Result<Self, RuleError> {
        Ok(TablePatterns)
    }

    fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
        let Some((_, views)) = DEPENDENCIES.iter().find(|(t, _)| *t == event.resource) else {
            return Ok(Decision::new());
        };
        let narrowed: Vec<(&str, Vec<String>)> = NARROWING
            .iter()
            .map(|f| (*f, Self::values(event, f)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let mut decision = Decision::new();
        for view in *views {
            if narrowed.is_empty() {
                decision = decision.pattern(format!("{view}*"));
                continue;
            }
            for (field, values) in &narrowed {
                let field = field.trim_end_matches("_id");
                for value in values {
                    let escaped = escape_glob(value);
                    decision = decision.pattern(format!("{view}:*{field}:{escaped}*"));
                }
            }
        }
        Ok(decision)
    }
}

tagbust_guest::export_rule!(TablePatterns);

#[cfg(test)]
mod tests {
    use super::*;
    use tagbust_guest::{Operation, TargetKind};

    fn patterns(event: WriteEvent) -> Vec<String> {
        let d = TablePatterns.evaluate(&event, &Context::empty()).unwrap();
        assert!(d.targets().iter().all(|t| t.kind == TargetKind::Pattern));
        d.into_targets().into_iter().map(|t| t.value).collect()
    }

    #[test]
    fn a_write_kills_every_dependent_view() {
        let p = patterns(WriteEvent::new("t", "deal_bookings", Operation::BulkCreate));
        assert_eq!(p, vec!["hedge_positions*", "deal_summary*"]);
    }

    #[test]
    fn currency_changes_narrow_to_old_and_new() {
        let e = WriteEvent::new("t", "deal_bookings", Operation::Update).with_change(
            "currency",
            Some("EUR"),
            Some("USD"),
        );
        let p = patterns(e);
        assert_eq!(
            p,
            vec![
                "hedge_positions:*currency:EUR*",
                "hedge_positions:*currency:USD*",
                "deal_summary:*currency:EUR*",
                "deal_summary:*currency:USD*"
            ]
        );
    }

    #[test]
    fn entity_in_context_narrows_and_metacharacters_are_escaped() {
        let e =
            WriteEvent::new("t", "gl_entries", Operation::Delete).with_context("entity_id", "E*");
        assert_eq!(patterns(e)[0], "gl_balances:*entity:E\\**");
    }

    #[test]
    fn a_rate_change_kills_every_view_of_its_currency() {
        let e = WriteEvent::new("t", "fx_rates", Operation::Upsert).with_context("currency", "USD");
        let p = patterns(e);
        assert_eq!(p.len(), EVERY_VIEW.len());
        assert!(p.iter().all(|p| p.ends_with(":*currency:USD*")), "{p:?}");
    }

    #[test]
    fn unknown_tables_kill_nothing() {
        assert!(patterns(WriteEvent::new("t", "audit_log", Operation::Create)).is_empty());
    }
}
