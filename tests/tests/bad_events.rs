//! Bad events, generated: decoding (`parse_events`) and planning (`plan`) checked against
//! simple reference models. Every bad event must be refused with a typed error naming its
//! field, every good one must come through whole, and a plan must hold every target any rule
//! asked for, once.
//!
//! `TAGBUST_FUZZ_CASES=N` runs N cases per property (default 256). A long run:
//! `TAGBUST_FUZZ_CASES=3000000 cargo test --locked --release -p tagbust-tests --test bad_events`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use tagbust::tenant::plan::plan;
use tagbust::{
    EventLimits, IngestError, Outcome, RuleFailure, RuleOutcome, RuleRef, Strategy as Timing,
    Target, TargetKind, WriteEvent, parse_events,
};

fn config() -> ProptestConfig {
    let cases = std::env::var("TAGBUST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Small caps, so generated events cross every one of them often.
fn limits() -> EventLimits {
    EventLimits {
        max_ids: 4,
        max_changes: 3,
        max_context: 3,
        max_string_bytes: 12,
        ..EventLimits::default()
    }
}

const OPERATIONS: [&str; 8] = [
    "create",
    "update",
    "delete",
    "upsert",
    "bulk_create",
    "bulk_update",
    "bulk_delete",
    "bulk_upsert",
];

/// An event as a producer writes it: context as a list, so a key can appear twice.
#[derive(Debug, Clone)]
struct Raw {
    tenant: String,
    resource: String,
    operation: &'static str,
    ids: Vec<String>,
    changes: Vec<(String, Option<String>, Option<String>)>,
    context: Vec<(String, String)>,
    transaction: Option<String>,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9:]{0,14}",
        2 => "\\PC{0,6}",
        1 => "[\"\\\\/\u{0}-\u{1f}]{0,4}",
    ]
}

fn raw() -> impl Strategy<Value = Raw> {
    let tenant = prop_oneof![
        6 => "[a-zA-Z0-9._-]{1,8}",
        1 => "\\PC{0,6}",
        1 => "[a-z]{126,130}",
    ];
    let resource =
        prop_oneof![6 => "[a-z_]{1,10}", 1 => Just(String::new()), 1 => "[a-z]{254,258}"];
    let change = (
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
    );
    let key = prop_oneof!["[a-c]{1,2}", text()];
    (
        (tenant, resource, proptest::sample::select(&OPERATIONS[..])),
        proptest::collection::vec(text(), 0..7),
        proptest::collection::vec(change, 0..5),
        proptest::collection::vec((key, text()), 0..5),
        proptest::option::of(text()),
    )
        .prop_map(
            |((tenant, resource, operation), ids, changes, context, transaction)| Raw {
                tenant,
                resource,
                operation,
                ids,
                changes,
                context,
                transaction,
            },
        )
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn to_json(r: &Raw) -> String {
    let list = |items: Vec<String>| items.join(",");
    let changes = r.changes.iter().map(|(field, old, new)| {
        let mut parts = vec![format!("\"field\":{}", quoted(field))];
        if let Some(old) = old {
            parts.push(format!("\"old\":{}", quoted(old)));
        }
        if let Some(new) = new {
            parts.push(format!("\"new\":{}", quoted(new)));
        }
        format!("{{{}}}", parts.join(","))
    });
    let context = r
        .context
        .iter()
        .map(|(k, v)| format!("{}:{}", quoted(k), quoted(v)));
    let transaction = r
        .transaction
        .as_ref()
        .map(|t| format!(",\"transaction\":{}", quoted(t)))
        .unwrap_or_default();
    format!(
        "{{\"tenant\":{},\"resource\":{},\"operation\":\"{}\",\"ids\":[{}],\"changes\":[{}],\"context\":{{{}}}{transaction}}}",
        quoted(&r.tenant),
        quoted(&r.resource),
        r.operation,
        list(r.ids.iter().map(|s| quoted(s)).collect()),
        list(changes.collect()),
        list(context.collect()),
    )
}

fn has_duplicate_key(r: &Raw) -> bool {
    let mut seen = std::collections::HashSet::new();
    r.context.iter().any(|(k, _)| !seen.insert(k))
}

/// Every field of `r` that breaks a cap, as the decoder names it (no `[i].` prefix).
fn violations(r: &Raw, l: &EventLimits) -> Vec<String> {
    let long = |s: &str| s.len() > l.max_string_bytes;
    let mut v = Vec::new();
    let tenant_ok = !r.tenant.is_empty()
        && r.tenant.len() <= 128
        && r.tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !tenant_ok {
        v.push("tenant".to_owned());
    }
    if r.resource.is_empty() || r.resource.len() > 256 {
        v.push("resource".to_owned());
    }
    if r.ids.len() > l.max_ids {
        v.push("ids".to_owned());
    }
    v.extend(
        (0..r.ids.len())
            .filter(|&i| long(&r.ids[i]))
            .map(|i| format!("ids[{i}]")),
    );
    if r.changes.len() > l.max_changes {
        v.push("changes".to_owned());
    }
    for (i, (field, old, new)) in r.changes.iter().enumerate() {
        if long(field) || old.as_deref().is_some_and(long) || new.as_deref().is_some_and(long) {
            v.push(format!("changes[{i}]"));
        }
    }
    let distinct: BTreeMap<&str, &str> = r
        .context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if distinct.len() > l.max_context {
        v.push("context".to_owned());
    }
    for (k, value) in &r.context {
        if long(k) || long(value) {
            v.push(format!("context.{k}"));
        }
    }
    if r.transaction.as_deref().is_some_and(long) {
        v.push("transaction".to_owned());
    }
    v
}

/// True when `e` holds exactly what `r` said: nothing dropped, nothing changed.
fn same(e: &WriteEvent, r: &Raw) -> bool {
    let changes: Vec<(String, Option<String>, Option<String>)> = e
        .changes
        .iter()
        .map(|c| (c.field.clone(), c.old.clone(), c.new.clone()))
        .collect();
    let context: Vec<(String, String)> = e.context.clone().into_iter().collect();
    let mut expected_context = r.context.clone();
    expected_context.sort();
    e.tenant == r.tenant
        && e.resource == r.resource
        && e.operation.as_str() == r.operation
        && e.ids == r.ids
        && changes == r.changes
        && context == expected_context
        && e.transaction == r.transaction
}

fn mutate(mut bytes: Vec<u8>, edits: &[(Index, u8, u8)]) -> Vec<u8> {
    for (at, byte, how) in edits {
        if bytes.is_empty() {
            bytes.push(*byte);
            continue;
        }
        let i = at.index(bytes.len());
        match how % 3 {
            0 => bytes[i] = *byte,
            1 => bytes.insert(i, *byte),
            _ => {
                bytes.remove(i);
            }
        }
    }
    bytes
}

fn outcomes() -> impl Strategy<Value = Vec<RuleOutcome>> {
    let kind = prop_oneof![
        Just(TargetKind::Tag),
        Just(TargetKind::Key),
        Just(TargetKind::Pattern)
    ];
    let strategy = prop_oneof![
        Just(Timing::Immediate),
        Just(Timing::Batched),
        Just(Timing::Lazy)
    ];
    // Few distinct values, so rules often ask for the same target.
    let target = (kind, "[a-f]{1,2}", strategy, any::<bool>()).prop_map(
        |(kind, value, strategy, cascade)| Target {
            kind,
            value,
            strategy,
            cascade,
        },
    );
    let result = prop_oneof![
        4 => proptest::collection::vec(target, 0..48).prop_map(Ok),
        1 => Just(Err(RuleFailure::StackOverflow)),
    ];
    proptest::collection::vec((-5i32..5, result), 0..6).prop_map(|mut rules| {
        // `plan` takes outcomes in rule order: priority descending, then name.
        rules.sort_by_key(|r| std::cmp::Reverse(r.0));
        rules
            .into_iter()
            .enumerate()
            .map(|(i, (priority, result))| RuleOutcome {
                rule: RuleRef::new(&format!("r{i}"), "1", "00"),
                priority,
                result: Outcome::from_result(result),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(config())]

    /// Generated events, good and bad, one or several per document: a good document comes
    /// back whole; a bad one is refused naming the event and a field that is really at fault.
    #[test]
    fn decoding_keeps_good_events_whole_and_names_the_bad_field(
        events in proptest::collection::vec(raw(), 1..4),
        as_array in any::<bool>(),
    ) {
        let l = limits();
        let many = as_array || events.len() > 1;
        let body: Vec<String> = events.iter().map(to_json).collect();
        let json = if many { format!("[{}]", body.join(",")) } else { body[0].clone() };
        let prefix = |i: usize| if many { format!("[{i}].") } else { String::new() };
        // Decoding stops at the first duplicate key; the caps are checked after decoding.
        let expected: Option<Vec<String>> = match events.iter().position(has_duplicate_key) {
            Some(i) => Some(vec![format!("{}context", prefix(i))]),
            None => events
                .iter()
                .enumerate()
                .map(|(i, r)| (i, violations(r, &l)))
                .find(|(_, v)| !v.is_empty())
                .map(|(i, v)| v.into_iter().map(|f| format!("{}{f}", prefix(i))).collect()),
        };
        match (parse_events("gen.json", json.as_bytes(), &l), expected) {
            (Ok(parsed), None) => {
                prop_assert_eq!(parsed.len(), events.len());
                for (e, r) in parsed.iter().zip(&events) {
                    prop_assert!(same(e, r), "{:?} was decoded as {:?}", r, e);
                }
            }
            (Err(IngestError::Field { field, message, .. }), Some(fields)) => {
                prop_assert!(fields.contains(&field), "blamed `{}` ({}), expected one of {:?}", field, message, fields);
            }
            (got, expected) => prop_assert!(false, "expected {:?}, got {:?}\n{}", expected, got, json),
        }
    }

    /// Bytes of an event mangled at random (replaced, inserted, deleted, invalid UTF-8
    /// included): decoding never panics, what it accepts is within the caps and survives a
    /// round trip, and a string that is not UTF-8 is reported as such, not as noise after it.
    #[test]
    fn mangled_bytes_are_refused_with_a_typed_error(
        r in raw(),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let l = limits();
        let bytes = mutate(to_json(&r).into_bytes(), &edits);
        match parse_events("gen.json", &bytes, &l) {
            Ok(events) => {
                prop_assert!(std::str::from_utf8(&bytes).is_ok());
                for e in &events {
                    prop_assert!(tagbust::model::ingest::check_event(e, &l).is_ok());
                    let again = serde_json::to_vec(e).expect("serializes");
                    let back = parse_events("again.json", &again, &l).expect("round trip");
                    prop_assert_eq!(&back[0], e);
                }
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(message.starts_with("gen.json: "), "{}", message);
                if let (Err(bad), IngestError::Syntax { line, column, .. }) =
                    (std::str::from_utf8(&bytes), &err)
                {
                    // A syntax error may only win when it comes before the first bad byte.
                    let before = &bytes[..bad.valid_up_to()];
                    let bad_line = 1 + before.iter().filter(|&&b| b == b'\n').count();
                    let bad_column = before.len() - before.iter().rposition(|&b| b == b'\n').map_or(0, |nl| nl + 1) + 1;
                    prop_assert!((*line, *column) < (bad_line, bad_column),
                        "{} reported, but the first bad byte is at {}:{}", message, bad_line, bad_column);
                }
            }
        }
    }

    /// One string of a good event replaced with invalid UTF-8: refused as invalid UTF-8,
    /// naming that very field.
    #[test]
    fn invalid_utf8_names_its_field(
        ids in proptest::collection::vec("[a-z0-9]{0,8}", 1..4),
        which in any::<Index>(),
        junk in proptest::collection::vec(prop_oneof![0x80u8..=0xbf, 0xf8u8..=0xff], 1..4),
    ) {
        let i = which.index(ids.len());
        let mut json = br#"{"tenant":"acme","resource":"posts","operation":"bulk_delete","ids":["#.to_vec();
        for (n, id) in ids.iter().enumerate() {
            if n > 0 {
                json.push(b',');
            }
            json.push(b'"');
            json.extend_from_slice(id.as_bytes());
            if n == i {
                // Continuation bytes after ASCII, and 0xf8-0xff anywhere, are never UTF-8.
                json.extend_from_slice(&junk);
                json.push(b'x');
            }
            json.push(b'"');
        }
        json.extend_from_slice(b"]}");
        match parse_events("gen.json", &json, &limits()) {
            Err(IngestError::InvalidUtf8 { field, .. }) => prop_assert_eq!(field, format!("ids[{i}]")),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Planning against a reference model: every target some rule asked for appears once, at
    /// the first rule (in order) that asked for it, with the soonest strategy asked and
    /// cascading if any rule asked it to. Failed rules contribute nothing.
    #[test]
    fn a_plan_keeps_every_target_once(outcomes in outcomes()) {
        let mut model: Vec<(TargetKind, String, Timing, bool, RuleRef)> = Vec::new();
        for o in &outcomes {
            let Outcome::Ok { targets } = &o.result else { continue };
            for t in targets {
                match model.iter_mut().find(|m| m.0 == t.kind && m.1 == t.value) {
                    Some(m) => {
                        if t.strategy.urgency() < m.2.urgency() {
                            m.2 = t.strategy;
                        }
                        m.3 |= t.cascade;
                    }
                    None => model.push((t.kind, t.value.clone(), t.strategy, t.cascade, o.rule.clone())),
                }
            }
        }
        let planned: Vec<(TargetKind, String, Timing, bool, RuleRef)> = plan(&outcomes)
            .into_iter()
            .map(|p| (p.kind, p.value, p.strategy, p.cascade, p.rule))
            .collect();
        prop_assert_eq!(planned, model);
    }
}
