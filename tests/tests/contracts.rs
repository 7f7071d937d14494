//! Contract versions side by side, and contract 0.2's packed encoding under attack.
//!
//! - `echo` (built with the SDK, which emits 0.2) and `echo-v01` (the same protocol against
//!   0.1, no SDK) load into one engine and give the same answers, alone, together in one
//!   rule set, and over generated events.
//! - Every field of every generated event survives the host's packing and the SDK's reading.
//! - A hostile 0.2 guest (`tests/guests/bad-packed`) answering each kind of malformed buffer
//!   fails its batch with a typed `invalid_output` naming the fault; the host never panics.
//! - Random and mutated buffers, both directions (a hostile guest's results for the host, a
//!   hostile host's events for the SDK): a typed error or a value, never a panic.
//!
//! `TAGBUST_FUZZ_CASES=N` runs N cases per property (default 256).

use proptest::prelude::*;
use tagbust::sandbox::v0_2::{decode_results, encode_events};
use tagbust::{
    Batch, BoundRule, FieldChange, Limits, Operation, RuleConfig, RuleFailure, RuleSet,
    Strategy as Timing, Target, TargetKind, WriteEvent,
};
use tagbust_guest::packed::{decode_events, decode_events_in_place, result_len, write_result};
use tagbust_tests::{components, emit, load};
use tagbust_types::packed::Writer;

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

/// One rule's outcomes for `events`, as comparable values.
fn answers(rule: &tagbust::Rule, events: &[WriteEvent]) -> Vec<Result<Vec<Target>, String>> {
    let batch = Batch::new("acme", events).expect("one tenant");
    rule.evaluate(&batch, &RuleConfig::default(), &Limits::default())
        .outcomes
        .into_iter()
        .map(|o| o.map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn both_versions_load_and_agree() {
    let v02 = load(components::ECHO);
    let v01 = load(components::ECHO_V01);
    assert_eq!(v02.contract(), "0.2.0");
    assert_eq!(v01.contract(), "0.1.0");
    assert_eq!(v02.stamp().map(|s| s.contract.as_str()), Some("0.2.0"));
    assert!(v01.stamp().is_none(), "built without the SDK");

    let mut bulk = emit(
        "acme",
        "key=post:{id}@batched tag=feed+cascade pattern=u:*@lazy",
    );
    bulk.ids = vec!["1".into(), "2".into(), "é✓".into()];
    bulk.transaction = Some("tx-1".into());
    bulk.changes.push(FieldChange {
        field: "status".into(),
        old: None,
        new: Some("x".into()),
    });
    let events = vec![
        emit("acme", "tag=a"),
        emit("acme", ""),
        bulk,
        emit("acme", "nonsense"),
        emit("acme", "table=t"),
    ];
    let a02 = answers(&v02, &events);
    assert_eq!(a02, answers(&v01, &events));
    assert_eq!(a02[2].as_ref().map(Vec::len), Ok(5));
    assert!(a02[3].as_ref().is_err_and(|e| e.contains("not kind=value")));
    assert!(
        a02[4]
            .as_ref()
            .is_err_and(|e| e.contains("unknown kind `table`"))
    );

    // Both in one rule set: one batch, two contract forms, the same plan entries twice over.
    let set = RuleSet::new(vec![BoundRule::new(v02), BoundRule::new(v01)]);
    let eval = set.evaluate(&events);
    for report in &eval.events {
        let [first, second] = report.outcomes.as_slice() else {
            panic!("two rules, two outcomes: {report:?}");
        };
        assert_eq!(
            format!("{:?}", first.result),
            format!("{:?}", second.result)
        );
    }
    assert_eq!(eval.runs.len(), 2);
}

#[test]
fn malformed_results_from_a_guest_are_typed_failures() {
    let rule = load(components::BAD_PACKED);
    assert_eq!(rule.contract(), "0.2.0");
    let cases = [
        ("garbage", "a result count"),
        ("nothing", "a result count"),
        ("huge-count", "a result count"),
        ("too-many", "returned 3 decisions for 2 events"),
        ("truncated", "a target value"),
        ("trailing", "the end of the buffer"),
        ("bad-tag", "a result tag"),
        ("bad-kind", "a target kind"),
        ("bad-flag", "a cascade flag"),
        ("bad-utf8", "UTF-8"),
        ("long-len", "a target value"),
    ];
    for (resource, detail) in cases {
        let events = vec![
            tagbust_tests::event("acme", resource, Operation::Update),
            tagbust_tests::event("acme", resource, Operation::Delete),
        ];
        let batch = Batch::new("acme", &events).expect("one tenant");
        let run = rule.evaluate(&batch, &RuleConfig::default(), &Limits::default());
        assert_eq!(run.outcomes.len(), 2, "{resource}");
        for outcome in &run.outcomes {
            match outcome {
                Err(RuleFailure::InvalidOutput { detail: d }) => {
                    assert!(d.contains(detail), "{resource}: {d}")
                }
                other => panic!("{resource}: {other:?}"),
            }
        }
    }
    // The same guest answering well: the failures above are the buffers', not the guest's.
    let events = vec![tagbust_tests::event("acme", "fine", Operation::Update)];
    let ok = answers(&rule, &events);
    assert_eq!(ok[0].as_ref().map(|t| t[0].value.as_str()), Ok("ok"));
}

fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("(.|[é✓\u{0}]){0,6}").expect("valid regex")
}

fn an_event() -> impl Strategy<Value = WriteEvent> {
    (
        text(),
        text(),
        0usize..8,
        proptest::collection::vec(text(), 0..4),
        proptest::collection::vec(
            (
                text(),
                proptest::option::of(text()),
                proptest::option::of(text()),
            ),
            0..3,
        ),
        proptest::collection::btree_map(text(), text(), 0..3),
        proptest::option::of(text()),
        any::<u64>(),
    )
        .prop_map(|(tenant, resource, op, ids, changes, context, tx, ts)| {
            let mut e = WriteEvent::new(&tenant, &resource, Operation::ALL[op]);
            e.ids = ids;
            e.changes = changes
                .into_iter()
                .map(|(field, old, new)| FieldChange { field, old, new })
                .collect();
            e.context = context;
            e.transaction = tx;
            e.timestamp_ms = ts;
            e
        })
}

/// A results buffer and the decisions it holds, from SDK decisions.
fn results_of(targets: &[Vec<(u8, u8, bool, String)>]) -> (Vec<u8>, Vec<Vec<Target>>) {
    let kinds = [TargetKind::Tag, TargetKind::Key, TargetKind::Pattern];
    let timings = [Timing::Immediate, Timing::Batched, Timing::Lazy];
    let mut w = Writer::default();
    w.len(targets.len());
    let mut expected = Vec::new();
    for event in targets {
        let mut decision = tagbust_guest::Decision::new();
        let mut mine: Vec<Target> = Vec::new();
        for (k, s, cascade, value) in event {
            let t = tagbust_guest::Target {
                kind: kinds[usize::from(*k)],
                value: value.clone(),
                strategy: Some(timings[usize::from(*s)]),
                cascade: *cascade,
            };
            let before = decision.len();
            decision.add(t.clone());
            if decision.len() > before {
                mine.push(Target {
                    kind: t.kind,
                    value: t.value,
                    strategy: timings[usize::from(*s)],
                    cascade: *cascade,
                });
            }
        }
        // Merged duplicates: take the decision's own view.
        let merged: Vec<Target> = decision
            .targets()
            .iter()
            .map(|t| Target {
                kind: t.kind,
                value: t.value.clone(),
                strategy: t.strategy.unwrap_or(Timing::Immediate),
                cascade: t.cascade,
            })
            .collect();
        assert_eq!(merged.len(), mine.len());
        let result = Ok(decision);
        let before = w.buf.len();
        write_result(&mut w, &result, Timing::Immediate);
        // The SDK sizes its buffer with `result_len` before writing: it must be exact.
        assert_eq!(w.buf.len() - before, result_len(&result));
        expected.push(merged);
    }
    (w.buf, expected)
}

fn some_targets() -> impl Strategy<Value = Vec<Vec<(u8, u8, bool, String)>>> {
    proptest::collection::vec(
        proptest::collection::vec((0u8..3, 0u8..3, any::<bool>(), "[a-z:é]{1,8}"), 0..5),
        0..6,
    )
}

proptest! {
    #![proptest_config(config())]

    /// Host → SDK: every field of every event comes through the packed buffer unchanged.
    #[test]
    fn events_survive_packing(events in proptest::collection::vec(an_event(), 0..6)) {
        let buf = encode_events(events.iter());
        let got = decode_events(&buf).expect("a well-formed buffer reads");
        prop_assert_eq!(got.len(), events.len());
        for (g, e) in got.iter().zip(&events) {
            prop_assert_eq!(&g.tenant, &e.tenant);
            prop_assert_eq!(&g.resource, &e.resource);
            prop_assert_eq!(g.operation, e.operation);
            prop_assert_eq!(&g.ids, &e.ids);
            prop_assert_eq!(&g.changes, &e.changes);
            let ctx: Vec<(&str, &str)> =
                g.context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let want: Vec<(&str, &str)> =
                e.context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(ctx, want);
            prop_assert_eq!(g.transaction.as_deref(), e.transaction.as_deref());
            prop_assert_eq!(g.timestamp_ms, e.timestamp_ms);
        }
        // Read in place (as inside a component), the same events, strings borrowed.
        let kept: &'static [u8] = Box::leak(buf.clone().into_boxed_slice());
        prop_assert_eq!(decode_events_in_place(kept).expect("reads in place"), got);
        // Any cut of a well-formed buffer is refused, never misread.
        for cut in 0..buf.len() {
            prop_assert!(decode_events(&buf[..cut]).is_err(), "cut at {}", cut);
        }
    }

    /// SDK → host: results come through unchanged, within the caps.
    #[test]
    fn results_survive_packing(targets in some_targets()) {
        let (buf, expected) = results_of(&targets);
        let got = decode_results(&buf, expected.len(), 1000, 1 << 20).expect("well-formed");
        for (g, e) in got.into_iter().zip(expected) {
            prop_assert_eq!(g.expect("no caps crossed"), e);
        }
        for cut in 0..buf.len() {
            prop_assert!(
                decode_results(&buf[..cut], targets.len(), 1000, 1 << 20).is_err(),
                "cut at {}", cut
            );
        }
    }

    /// A hostile guest's bytes: random, or a well-formed buffer with bytes overwritten.
    #[test]
    fn hostile_results_never_panic(
        targets in some_targets(),
        random in proptest::collection::vec(any::<u8>(), 0..64),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        events in 0usize..6,
    ) {
        let _ = decode_results(&random, events, 4, 16);
        let (mut buf, expected) = results_of(&targets);
        if !buf.is_empty() {
            for (at, byte) in flips {
                let i = at.index(buf.len());
                buf[i] = byte;
            }
        }
        if let Ok(outcomes) = decode_results(&buf, expected.len(), 4, 16) {
            prop_assert_eq!(outcomes.len(), expected.len());
            for o in outcomes.into_iter().flatten() {
                prop_assert!(o.len() <= 4);
                prop_assert!(o.iter().map(|t| t.value.len()).sum::<usize>() <= 16);
                prop_assert!(o.iter().all(|t| !t.value.is_empty()));
            }
        }
    }

    /// A hostile host's bytes, as the SDK reads them: random, or mutated well-formed.
    #[test]
    fn hostile_events_never_panic(
        events in proptest::collection::vec(an_event(), 0..4),
        random in proptest::collection::vec(any::<u8>(), 0..96),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let _ = decode_events(&random);
        let mut buf = encode_events(events.iter());
        for (at, byte) in flips {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        let _ = decode_events(&buf);
    }
}

#[test]
fn caps_fail_only_their_event() {
    let big: Vec<(u8, u8, bool, String)> = (0..5).map(|i| (0, 0, false, format!("t{i}"))).collect();
    let long = vec![(1, 0, false, "x".repeat(40))];
    let (buf, _) = results_of(&[big, long, vec![(0, 0, false, "ok".into())]]);
    let got = decode_results(&buf, 3, 4, 16).expect("well-formed");
    assert!(matches!(
        &got[0],
        Err(RuleFailure::OutputTooLarge {
            what: "targets",
            ..
        })
    ));
    assert!(matches!(
        &got[1],
        Err(RuleFailure::OutputTooLarge { what: "bytes", .. })
    ));
    assert_eq!(got[2].as_ref().map(Vec::len), Ok(1));
}

#[test]
fn the_spec_example_is_what_the_host_writes() {
    let mut e = WriteEvent::new("a", "p", Operation::Update);
    e.ids = vec!["7".into()];
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(&encode_events([&e].into_iter())),
        "0100000001000000610100000070010100000001000000370000000000000000000000000000000000"
    );
    let mut w = Writer::default();
    w.len(1);
    let decision = tagbust_guest::Decision::new().key("post:7");
    write_result(&mut w, &Ok(decision), Timing::Immediate);
    assert_eq!(hex(&w.buf), "01000000000100000001000006000000706f73743a37");
}
