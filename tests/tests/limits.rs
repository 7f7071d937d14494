//! The limits checklist: a hostile guest for each way a rule can misbehave. Each must give its
//! typed error, leave the other events and rules alone, and leave the host able to go on.

use std::path::Path;
use std::time::{Duration, Instant};

use tagbust::{Batch, BoundRule, Limits, LoadError, Operation, RuleConfig, RuleFailure, RuleSet};
use tagbust_tests::{components, engine, event, load};

fn run(resource: &str, limits: &Limits) -> tagbust::RuleRun {
    let rule = load(components::MISBEHAVE);
    let mut e = event("t1", resource, Operation::Create);
    e.ids = vec!["1".into()];
    let batch = Batch::new("t1", [&e]).expect("one tenant");
    rule.evaluate(&batch, &RuleConfig::default(), limits)
}

fn failure(resource: &str, limits: &Limits) -> RuleFailure {
    let run = run(resource, limits);
    match run.outcomes.into_iter().next().expect("one outcome") {
        Err(f) => f,
        Ok(t) => panic!("{resource}: expected a failure, got {t:?}"),
    }
}

/// After any failure the same rule must still evaluate a good event.
fn assert_still_works() {
    let run = run("fine", &Limits::default());
    let targets = run.outcomes[0].as_ref().expect("healthy event succeeds");
    assert_eq!(targets[0].value, "ok:1");
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline() {
    let limits = Limits {
        deadline: Duration::from_millis(50),
        ..Limits::default()
    };
    let start = Instant::now();
    let f = failure("loop", &limits);
    let took = start.elapsed();
    assert_eq!(f, RuleFailure::Timeout { deadline_ms: 50 });
    // Not a timing assertion on speed: only that the loop was really interrupted.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_still_works();
}

#[test]
fn memory_growth_past_the_cap_is_refused() {
    let limits = Limits {
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    assert_eq!(
        failure("alloc", &limits),
        RuleFailure::MemoryExceeded {
            limit_bytes: 8 << 20
        }
    );
    assert_still_works();
}

#[test]
fn deep_recursion_traps_instead_of_crashing() {
    // A Rust guest keeps its frames on a shadow stack in linear memory (1 MiB); running off
    // its end is an out-of-bounds access. Guests with a larger shadow stack hit wasmtime's
    // native stack limit instead, which is `StackOverflow`. Either way: a trap, not a crash.
    assert_eq!(
        failure("recurse", &Limits::default()),
        RuleFailure::OutOfBounds
    );
    assert_still_works();
}

#[test]
fn a_panic_is_reported_with_its_message() {
    match failure("panic", &Limits::default()) {
        RuleFailure::Panic { message } => {
            assert!(message.contains("rule exploded on purpose"), "{message}")
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_still_works();
}

#[test]
fn oversized_output_is_refused() {
    assert_eq!(
        failure("flood", &Limits::default()),
        RuleFailure::OutputTooLarge {
            what: "targets",
            actual: 5_000,
            limit: 1024
        }
    );
    assert_eq!(
        failure("giant", &Limits::default()),
        RuleFailure::OutputTooLarge {
            what: "bytes",
            actual: 1 << 20,
            limit: 64 << 10
        }
    );
    assert!(matches!(
        failure("empty", &Limits::default()),
        RuleFailure::InvalidOutput { .. }
    ));
    // Past the transfer budget the output is refused while it is lifted, before the host
    // allocates it.
    let tight = Limits {
        max_output_bytes: 32 << 10,
        ..Limits::default()
    };
    assert_eq!(
        failure("flood", &tight),
        RuleFailure::TransferTooLarge {
            limit_bytes: 32 << 10
        }
    );
    assert_still_works();
}

#[test]
fn a_rule_error_fails_only_its_event() {
    let rule = load(components::MISBEHAVE);
    let events = [
        event("t1", "error", Operation::Update),
        tagbust::WriteEvent {
            ids: vec!["9".into()],
            ..event("t1", "fine", Operation::Update)
        },
    ];
    let batch = Batch::new("t1", &events).expect("one tenant");
    let run = rule.evaluate(&batch, &RuleConfig::default(), &Limits::default());
    assert!(matches!(
        &run.outcomes[0],
        Err(RuleFailure::Rule { kind: tagbust::RuleErrorKind::InvalidEvent, message }) if message == "this event is wrong"
    ));
    assert_eq!(
        run.outcomes[1].as_ref().expect("second ok")[0].value,
        "ok:9"
    );
}

#[test]
fn a_trap_fails_its_batch_but_not_other_rules() {
    let set = RuleSet::new(vec![
        BoundRule::new(load(components::MISBEHAVE)),
        BoundRule::new(load(components::PUBLISHED_FEEDS)),
    ]);
    // `panic` is misbehave's trigger; published-feeds triggers only on posts, so send both.
    let mut post = event("t1", "posts", Operation::Delete);
    post.ids = vec!["3".into()];
    let evaluation = set.evaluate(&[event("t1", "panic", Operation::Create), post]);
    assert!(matches!(
        evaluation.events[0].outcomes[0].result,
        tagbust::Outcome::Error { .. }
    ));
    let post_report = &evaluation.events[1];
    // misbehave also panicked for the post (same batch); published-feeds still answered.
    assert_eq!(post_report.plan[0].value, "post:3");
    assert_eq!(post_report.plan[0].rule.name(), "published-feeds");
}

#[test]
fn log_records_are_capped_and_counted() {
    let run = run("chatty", &Limits::default());
    assert!(run.outcomes[0].is_ok());
    assert_eq!(run.logs.len(), 64);
    assert_eq!(run.logs_dropped, 1000 - 64);
}

#[test]
fn config_reaches_the_rule_read_only() {
    let rule = load(components::MISBEHAVE);
    let e = event("t1", "config", Operation::Create);
    let batch = Batch::new("t1", [&e]).expect("one tenant");
    let config = RuleConfig::new([("table".to_owned(), "users".to_owned())].into());
    let run = rule.evaluate(&batch, &config, &Limits::default());
    assert_eq!(
        run.outcomes[0].as_ref().expect("ok")[0].value,
        "table=users"
    );
}

#[test]
fn fuel_budgets_are_enforced_when_enabled() {
    let rule = tagbust_tests::load_with(tagbust_tests::fuel_engine(), components::MISBEHAVE);
    let e = event("t1", "loop", Operation::Create);
    let batch = Batch::new("t1", [&e]).expect("one tenant");
    let limits = Limits {
        fuel: Some(5_000_000),
        deadline: Duration::from_secs(30),
        ..Limits::default()
    };
    let run = rule.evaluate(&batch, &RuleConfig::default(), &limits);
    assert_eq!(
        run.outcomes[0],
        Err(RuleFailure::FuelExhausted { fuel: 5_000_000 })
    );
    assert!(run.fuel_used.is_some_and(|used| used >= 5_000_000));
}

fn load_error(path: &str) -> LoadError {
    match engine().load_file(Path::new(path)) {
        Err(e) => e,
        Ok(r) => panic!("{path} loaded as {}", r.name()),
    }
}

#[test]
fn wrong_contract_version_is_refused_by_name() {
    let err = load_error(components::WRONG_CONTRACT);
    assert!(
        matches!(&err, LoadError::UnsupportedContract { found, .. } if found == "0.9.0"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("wrong_contract.wasm") && msg.contains("0.1.x, 0.2.x"),
        "{msg}"
    );
}

#[test]
fn missing_export_is_refused() {
    let err = load_error(components::MISSING_EXPORT);
    assert!(matches!(err, LoadError::MissingExport { .. }), "{err}");
    assert!(err.to_string().contains("missing_export.wasm"), "{err}");
}

#[test]
fn garbage_and_core_modules_are_refused() {
    let dir = tagbust_tests::Scratch::new("limits");
    let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let random = dir.file("random.wasm", &noise);
    let core = dir.file("core.wasm", b"\0asm\x01\0\0\0");
    let bytes = std::fs::read(components::PUBLISHED_FEEDS).expect("read");
    let truncated = dir.file("truncated.wasm", &bytes[..bytes.len() / 2]);

    let e = |p: &Path| engine().load_file(p).err().expect("refused");
    assert!(matches!(e(&random), LoadError::NotWasm { .. }));
    assert!(matches!(e(&core), LoadError::CoreModule { .. }));
    assert!(matches!(e(&truncated), LoadError::NotWasm { .. }));
    assert!(matches!(
        e(&dir.0.join("absent.wasm")),
        LoadError::Read { .. }
    ));
}
