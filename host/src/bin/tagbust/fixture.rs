//! `tagbust test` fixtures: one file (TOML or JSON, same shape) holds a tenant's setup for the
//! rules under test and the cases to run through it.
//!
//! ```toml
//! description = "…"                  # free text (JSON has no comments)
//! rules = ["task-controllers"]        # which of the --rules run (default: all of them)
//! other_tenants = ["globex"]          # tenants that exist besides the events' (confinement)
//! [setup.task-controllers]            # per rule: config, priority, on_failure, fallback,
//! config = { rules = "…" }            #   memory_mib, deadline_ms (as in a manifest)
//! [relationships]                     # as in a manifest
//! edges = { user = ["session"] }
//!
//! [[case]]
//! name = "a completed task kills its run's controllers"
//! event = { resource = "tasks", operation = "update", ids = ["build_climate"] }  # or events = […]
//! match = "exact"                     # or "includes"
//! expect = [{ kind = "key", value = "300:climate", strategy = "immediate" }]
//! failures = [{ rule = "task-controllers", code = "rule_error", kind = "config", message = "…" }]
//! rejected = false                    # a `fail` rule refused an event
//! confinement_violations = 0
//! [case.setup.task-controllers]       # this case only: replaces the file's setup of the rule
//! ```
//!
//! An event without `tenant` belongs to [`DEFAULT_TENANT`]. Every rule name (in `rules`,
//! `setup`, `failures`, `expect`) must be a loaded rule, every event must be a valid write
//! event: errors name the file, the line and the field.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use tagbust::tenant::manifest::RelationshipsSpec;
use tagbust::{EventLimits, FailurePolicy, FallbackScope, RuleFailure, Strategy, WriteEvent};

/// The tenant of an event that names none.
pub const DEFAULT_TENANT: &str = "test";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Free text for the reader (JSON has no comments).
    #[serde(default)]
    pub description: String,
    pub rules: Option<Vec<RuleName>>,
    #[serde(default)]
    pub other_tenants: Vec<String>,
    #[serde(default)]
    pub setup: BTreeMap<RuleName, RuleSetup>,
    #[serde(default)]
    pub relationships: RelationshipsSpec,
    #[serde(rename = "case")]
    pub cases: Vec<Case>,
}

/// How one rule runs for the tenant: what a manifest's `[[rule]]` says, minus the component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetup {
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    pub priority: Option<i32>,
    #[serde(default)]
    pub on_failure: FailurePolicy,
    #[serde(default)]
    pub fallback: FallbackScope,
    pub memory_mib: Option<u64>,
    pub deadline_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "CaseSpec")]
pub struct Case {
    pub name: String,
    pub events: Vec<WriteEvent>,
    pub mode: Match,
    pub expect: Vec<ExpectTarget>,
    pub failures: Vec<ExpectFailure>,
    pub rejected: bool,
    pub confinement_violations: Option<u64>,
    pub setup: BTreeMap<RuleName, RuleSetup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: String,
    event: Option<FixtureEvent>,
    events: Option<Vec<FixtureEvent>>,
    #[serde(default, rename = "match")]
    mode: Match,
    #[serde(default)]
    expect: Vec<ExpectTarget>,
    #[serde(default)]
    failures: Vec<ExpectFailure>,
    #[serde(default)]
    rejected: bool,
    confinement_violations: Option<u64>,
    #[serde(default)]
    setup: BTreeMap<RuleName, RuleSetup>,
}

impl TryFrom<CaseSpec> for Case {
    type Error = String;

    fn try_from(c: CaseSpec) -> Result<Case, String> {
        let events = match (c.event, c.events) {
            (Some(e), None) => vec![e.0],
            (None, Some(list)) if !list.is_empty() => list.into_iter().map(|e| e.0).collect(),
            (None, Some(_)) => return Err(format!("case `{}`: `events` is empty", c.name)),
            (None, None) => return Err(format!("case `{}`: give `event` or `events`", c.name)),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "case `{}`: give `event` or `events`, not both",
                    c.name
                ));
            }
        };
        Ok(Case {
            name: c.name,
            events,
            mode: c.mode,
            expect: c.expect,
            failures: c.failures,
            rejected: c.rejected,
            confinement_violations: c.confinement_violations,
            setup: c.setup,
        })
    }
}

/// Whether the produced targets must be exactly the expected ones, or include them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    #[default]
    Exact,
    Includes,
}

/// One target the host is expected to invalidate. `strategy`, `fallback`, `via` (the tag a
/// cascade reached it from) and `rule` are checked only when given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectTarget {
    pub kind: ExpectKind,
    pub value: String,
    pub strategy: Option<Strategy>,
    pub fallback: Option<bool>,
    pub via: Option<String>,
    pub rule: Option<RuleName>,
}

/// `tenant` is the whole-tenant fallback (`fallback = "tenant"`), value `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectKind {
    Tag,
    Key,
    Pattern,
    Tenant,
}

impl ExpectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectKind::Tag => "tag",
            ExpectKind::Key => "key",
            ExpectKind::Pattern => "pattern",
            ExpectKind::Tenant => "tenant",
        }
    }
}

/// A rule failure the case expects; `kind` (of a `rule_error`) and `message` (a substring)
/// are checked only when given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFailure {
    pub rule: RuleName,
    pub code: FailureCode,
    pub kind: Option<tagbust::RuleErrorKind>,
    pub message: Option<String>,
}

/// One of [`RuleFailure::CODES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCode(pub String);

impl<'de> Deserialize<'de> for FailureCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        if RuleFailure::CODES.contains(&code.as_str()) {
            Ok(FailureCode(code))
        } else {
            Err(D::Error::custom(format!(
                "unknown failure code `{code}`; one of: {}",
                RuleFailure::CODES.join(", ")
            )))
        }
    }
}

thread_local! {
    /// The names of the loaded rules while a fixture is being parsed, so a name that matches
    /// none is refused *by the parser*, which knows the line.
    static LOADED: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

/// The name of a loaded rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleName(pub String);

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        LOADED.with_borrow(|loaded| {
            if loaded.contains(&name) {
                Ok(RuleName(name))
            } else {
                let names: Vec<&str> = loaded.iter().map(String::as_str).collect();
                Err(D::Error::custom(format!(
                    "no loaded rule is named `{name}` (loaded: {})",
                    names.join(", ")
                )))
            }
        })
    }
}

/// A write event as `tagbust eval` reads it (same checks and caps), `tenant` optional.
struct FixtureEvent(WriteEvent);

impl<'de> Deserialize<'de> for FixtureEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut value = serde_json::Value::deserialize(d)?;
        let Some(object) = value.as_object_mut() else {
            return Err(D::Error::custom("an event is a table (an object)"));
        };
        object
            .entry("tenant")
            .or_insert_with(|| DEFAULT_TENANT.into());
        let bytes = serde_json::to_vec(&value).map_err(D::Error::custom)?;
        let mut events = tagbust::parse_events("event", &bytes, &EventLimits::default()).map_err(
            |e| match e {
                tagbust::IngestError::Field { field, message, .. } => {
                    D::Error::custom(format!("event field `{field}`: {message}"))
                }
                other => D::Error::custom(other),
            },
        )?;
        events
            .pop()
            .map(FixtureEvent)
            .ok_or_else(|| D::Error::custom("an event is a table (an object)"))
    }
}

/// Why a fixture file was refused: file, line and column when known, field, message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{message}", at(.line, .column), field_prefix(.field))]
pub struct FixtureError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub field: String,
    pub message: String,
}

fn at(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn field_prefix(field: &str) -> String {
    // serde_path_to_error writes `?` for a key it could not read.
    let field = field.trim_end_matches(".?").trim_end_matches('?');
    if field.is_empty() || field == "." {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// Parses a fixture; `.json` files as JSON, anything else as TOML. `loaded` are the names of
/// the rules the fixture may name.
pub fn parse(file: &str, text: &str, loaded: &BTreeSet<String>) -> Result<Fixture, FixtureError> {
    let error = |line, column, field: String, message: String| FixtureError {
        file: file.to_owned(),
        line,
        column,
        field,
        message,
    };
    LOADED.with_borrow_mut(|names| names.clone_from(loaded));
    let parsed = if file.ends_with(".json") {
        let mut de = serde_json::Deserializer::from_str(text);
        let json_error = |e: &serde_json::Error, field: String| {
            let message = strip_position(&e.to_string());
            error(Some(e.line()), Some(e.column()), field, message)
        };
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| json_error(e.inner(), e.path().to_string()))
            .and_then(|f: Fixture| {
                de.end()
                    .map(|()| f)
                    .map_err(|e| json_error(&e, String::new()))
            })
    } else {
        toml::Deserializer::parse(text)
            .map_err(|e| {
                let (l, c) = position(text, e.span());
                error(l, c, String::new(), e.message().trim().to_owned())
            })
            .and_then(|de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let (l, c) = position(text, e.inner().span());
                    let message = e.inner().message().trim().to_owned();
                    error(l, c, e.path().to_string(), message)
                })
            })
    };
    LOADED.with_borrow_mut(BTreeSet::clear);
    let fixture = parsed?;
    if fixture.cases.is_empty() {
        return Err(error(None, None, "case".into(), "no cases".into()));
    }
    Ok(fixture)
}

/// serde_json appends " at line L column C" to its messages; the error says it up front.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// 1-based line and column of a byte offset.
fn position(text: &str, span: Option<std::ops::Range<usize>>) -> (Option<usize>, Option<usize>) {
    let Some(start) = span.map(|s| s.start.min(text.len())) else {
        return (None, None);
    };
    let before = &text.as_bytes()[..start];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (Some(line), Some(column))
}
