//! Hostile rules against a running host. One tenant (`evil`) runs rules that misbehave; another
//! (`good`) shares the same components. For every hostile guest: the failure is typed, the host
//! keeps serving, and the next good event (same rule, and another tenant) evaluates.
//!
//! `limits.rs` is the per-rule checklist; this file is the same hostility seen through
//! [`Tenants`] and a [`Tagbust`] host, plus the guests that need more than one rule call to
//! show (a slow instantiation, fuel, giant strings in both directions).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tagbust::{
    BoundRule, Engine, EngineOptions, HostError, Limits, LoadError, MemoryBackend, Operation,
    Outcome, Rule, RuleFailure, RuleSet, Tagbust, TenantSetup, Tenants, WriteEvent,
};
use tagbust_tests::{components, event, load};

/// `evil` runs `rule` under `limits`; `good` runs the same rule with the defaults. Both are
/// registered by name, so the test does not depend on how unknown tenants are treated.
fn tenants(rule: &Rule, limits: Limits) -> Tenants {
    let evil = BoundRule {
        limits,
        ..BoundRule::new(rule.clone())
    };
    let good = TenantSetup::new(RuleSet::new(vec![BoundRule::new(rule.clone())]));
    Tenants::new(good.clone())
        .with_tenant("good", good)
        .with_tenant("evil", TenantSetup::new(RuleSet::new(vec![evil])))
}

/// A multi-threaded runtime for the host; the direct evaluations run outside it (the tests at
/// the end of the file run them inside async code too).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn host(rt: &tokio::runtime::Runtime, tenants: Tenants) -> Tagbust<MemoryBackend> {
    rt.block_on(async {
        Tagbust::builder(Arc::new(MemoryBackend::new()))
            .tenants(tenants)
            .build()
            .expect("host builds")
    })
}

fn with_ids(tenant: &str, resource: &str, ids: &[&str]) -> WriteEvent {
    let mut e = event(tenant, resource, Operation::Update);
    e.ids = ids.iter().map(|&id| id.to_owned()).collect();
    e
}

/// The single rule outcome of one event evaluated by `tenants`.
fn outcome(tenants: &Tenants, e: WriteEvent) -> Outcome {
    let mut evaluation = tenants.evaluate(&[e]);
    let mut report = evaluation.events.remove(0);
    assert_eq!(report.outcomes.len(), 1, "one rule per tenant");
    report.outcomes.remove(0).result
}

fn failure_of(tenants: &Tenants, e: WriteEvent) -> RuleFailure {
    match outcome(tenants, e) {
        Outcome::Error { failure, .. } => failure,
        Outcome::Ok { targets } => panic!("expected a failure, got {targets:?}"),
    }
}

fn values(outcome: Outcome) -> Vec<String> {
    match outcome {
        Outcome::Ok { targets } => targets.into_iter().map(|t| t.value).collect(),
        Outcome::Error { message, .. } => panic!("expected targets, got: {message}"),
    }
}

/// Runs a host over `tenants`, submits the hostile event, checks the failure is counted under
/// its code and answered by the default policy (fallback: the event's resource tag,
/// invalidated at once), then checks that a good event of each `healthy` tenant (the same
/// rule) still evaluates and is applied.
fn contained(tenants: &Tenants, rule: &str, hostile: WriteEvent, code: &str, healthy: &[&str]) {
    let rt = runtime();
    let host = host(&rt, tenants.clone());
    let (tenant, resource) = (hostile.tenant.clone(), hostile.resource.clone());
    rt.block_on(host.cache().set(tagbust::NewEntry {
        tenant: tenant.clone(),
        key: "listing".into(),
        value: b"stale?".to_vec(),
        tags: vec![resource.clone()],
        ttl: None,
        depends_on: Vec::new(),
    }))
    .expect("set");
    let report = rt
        .block_on(host.submit(vec![hostile]))
        .expect("submit survives");
    assert_eq!(report.rule_failures, 1, "{code}: {report:?}");
    assert_eq!(
        (report.targets, report.applied),
        (1, 1),
        "{code}: the fallback"
    );
    assert_eq!(host.stats().rule_fallbacks, 1, "{code}");
    let left = rt
        .block_on(host.cache().get(&tenant, "listing"))
        .expect("get");
    assert!(
        left.is_none(),
        "{code}: the `{resource}` entry was invalidated"
    );
    let failures = host.stats().rules.get(rule).map(|r| r.failures.clone());
    assert_eq!(
        failures.and_then(|f| f.get(code).copied()),
        Some(1),
        "{code} counted"
    );
    for &tenant in healthy {
        let report = rt
            .block_on(host.submit(vec![good_event(rule, tenant)]))
            .unwrap_or_else(|e| panic!("{tenant} after {code}: {e}"));
        assert_eq!(
            (report.rule_failures, report.applied),
            (0, 1),
            "{tenant} after {code}: {report:?}"
        );
    }
    rt.block_on(host.shutdown()).expect("shutdown");
}

fn good_event(rule: &str, tenant: &str) -> WriteEvent {
    match rule {
        "big-data" => with_ids(tenant, "blobs", &["7"]),
        _ => with_ids(tenant, "fine", &["1"]),
    }
}

#[test]
fn every_runtime_attack_is_typed_and_the_host_survives() {
    // A deadline generous enough that only the loops reach it, however busy the machine.
    let evil_limits = Limits {
        deadline: Duration::from_millis(500),
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let tenants = tenants(&load(components::MISBEHAVE), evil_limits);
    let exact = |resource: &str| match resource {
        "loop" | "loop-log" => RuleFailure::Timeout { deadline_ms: 500 },
        "alloc" => RuleFailure::MemoryExceeded {
            limit_bytes: 8 << 20,
        },
        "recurse" => RuleFailure::OutOfBounds,
        "flood" => RuleFailure::OutputTooLarge {
            what: "targets",
            actual: 5_000,
            limit: 1024,
        },
        "giant" => RuleFailure::OutputTooLarge {
            what: "bytes",
            actual: 1 << 20,
            limit: 64 << 10,
        },
        other => panic!("no expectation for {other}"),
    };
    for resource in [
        "loop", "loop-log", "alloc", "recurse", "flood", "giant", "panic",
    ] {
        let got = failure_of(&tenants, with_ids("evil", resource, &["1"]));
        match &got {
            RuleFailure::Panic { message } if resource == "panic" => {
                assert!(message.contains("rule exploded on purpose"), "{message}")
            }
            _ => assert_eq!(got, exact(resource), "{resource}"),
        }
        let hostile = with_ids("evil", resource, &["1"]);
        contained(
            &tenants,
            "misbehave",
            hostile,
            got.code(),
            &["evil", "good"],
        );
    }
}

#[test]
fn a_loop_calling_the_host_is_stopped_like_one_that_does_not() {
    // Host calls are where a rule could hope to stall the host; the log import returns at once
    // (records past the cap are only counted), so the deadline still lands in guest code.
    let limits = Limits {
        deadline: Duration::from_millis(50),
        ..Limits::default()
    };
    let tenants = tenants(&load(components::MISBEHAVE), limits);
    let evaluation = tenants.evaluate(&[with_ids("evil", "loop-log", &["1"])]);
    let run = &evaluation.runs[0];
    assert_eq!(run.logs.len(), 64, "records kept up to the cap");
    assert!(run.logs_dropped > 0, "the rest counted, not kept");
    assert!(matches!(
        evaluation.events[0].outcomes[0].result,
        Outcome::Error {
            failure: RuleFailure::Timeout { .. },
            ..
        }
    ));
}

#[test]
fn giant_strings_are_refused_or_cut_in_both_directions() {
    let tenants = tenants(&load(components::MISBEHAVE), Limits::default());
    // Into the rule: a 10 MiB id crosses into the sandbox whole when a caller evaluates
    // directly (the guest's memory cap bounds it)...
    let huge = "7".repeat(10 << 20);
    assert_eq!(
        values(outcome(&tenants, with_ids("evil", "measure", &[&huge]))),
        [format!("bytes:{}", 10 << 20)]
    );
    // ...and the host refuses it at the door, naming the field, before any rule runs.
    let rt = runtime();
    let host = host(&rt, tenants.clone());
    let err = rt
        .block_on(host.submit(vec![with_ids("evil", "measure", &[&huge])]))
        .expect_err("oversized id");
    assert!(
        matches!(&err, HostError::InvalidEvent { index: 0, field, .. } if field == "ids[0]"),
        "{err}"
    );
    assert_eq!(host.stats().events_rejected, 1);
    rt.block_on(host.shutdown()).expect("shutdown");
    // Out of the rule: one 4 MiB log message is kept cut to 1 KiB.
    let evaluation = tenants.evaluate(&[with_ids("evil", "huge-log", &["1"])]);
    let logs = &evaluation.runs[0].logs;
    assert!(logs[0].message.len() <= 1024 + '…'.len_utf8(), "cut");
    // A 20 MiB tag is refused while it is lifted, before the host allocates it. Packed
    // (contract 0.2), the guest holds the tag and its results buffer at once: give it the
    // memory for both, so the transfer cap is what stops it.
    let roomy = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let roomy = self::tenants(&load(components::MISBEHAVE), roomy);
    let hostile = with_ids("evil", "huge-tag", &["1"]);
    contained(
        &roomy,
        "misbehave",
        hostile,
        "transfer_too_large",
        &["evil", "good"],
    );
}

#[test]
fn a_large_data_segment_is_bounded_by_the_memory_cap() {
    // Copying 24 MiB into every fresh instance is host code: no deadline can cut it, but the
    // segment must fit in the memory cap, so the cap bounds the cost.
    let rule = load(components::BIG_DATA);
    assert_eq!(
        values(outcome(
            &tenants(&rule, Limits::default()),
            with_ids("good", "blobs", &["0", "25165823"])
        )),
        ["byte:0=90", "byte:25165823=90"]
    );
    let tight = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let tenants = tenants(&rule, tight);
    let failure = failure_of(&tenants, with_ids("evil", "blobs", &["7"]));
    assert_eq!(
        failure,
        RuleFailure::MemoryExceeded {
            limit_bytes: 16 << 20
        }
    );
    // `evil` can never instantiate it under its cap; the same component serves `good`.
    let hostile = with_ids("evil", "blobs", &["7"]);
    contained(&tenants, "big-data", hostile, failure.code(), &["good"]);
}

#[test]
fn a_data_segment_past_the_default_cap_is_refused_at_load() {
    // With the defaults lowered below the segment, `describe()` cannot even instantiate it.
    let engine = Engine::new(EngineOptions {
        default_limits: Limits {
            memory_bytes: 16 << 20,
            ..Limits::default()
        },
        ..EngineOptions::default()
    })
    .expect("engine");
    match engine.load_file(Path::new(components::BIG_DATA)) {
        Err(LoadError::Describe {
            failure: RuleFailure::MemoryExceeded { limit_bytes },
            ..
        }) => assert_eq!(limit_bytes, 16 << 20),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("loaded a rule larger than the memory cap"),
    }
}

#[test]
fn fuel_exhaustion_is_deterministic_and_contained() {
    let rule = tagbust_tests::load_with(tagbust_tests::fuel_engine(), components::MISBEHAVE);
    // A deadline far away: only fuel can stop the loop, so the result does not depend on
    // how busy the machine is.
    let limits = Limits {
        fuel: Some(2_000_000),
        deadline: Duration::from_secs(60),
        ..Limits::default()
    };
    let tenants = tenants(&rule, limits.clone());
    let failure = failure_of(&tenants, with_ids("evil", "loop", &["1"]));
    assert_eq!(failure, RuleFailure::FuelExhausted { fuel: 2_000_000 });
    // The same good batch costs the same fuel every time.
    let batch =
        tagbust::Batch::new("evil", [&with_ids("evil", "fine", &["1", "2"])]).expect("one tenant");
    let used: Vec<Option<u64>> = (0..3)
        .map(|_| {
            rule.evaluate(&batch, &tagbust::RuleConfig::default(), &limits)
                .fuel_used
        })
        .collect();
    assert!(used[0].is_some_and(|u| u > 0 && u < 2_000_000), "{used:?}");
    assert!(used.iter().all(|u| *u == used[0]), "{used:?}");
    let hostile = with_ids("evil", "loop", &["1"]);
    contained(
        &tenants,
        "misbehave",
        hostile,
        failure.code(),
        &["evil", "good"],
    );
}

/// A panicking rule writes to stderr, and WASI's stderr blocks on the ambient tokio runtime:
/// evaluating it straight from async code, on either kind of runtime, must still give the
/// typed failure, not a panic of the host.
fn panic_from_async_code(rt: &tokio::runtime::Runtime) {
    let tenants = tenants(&load(components::MISBEHAVE), Limits::default());
    let failure = rt.block_on(async { outcome(&tenants, with_ids("evil", "panic", &["1"])) });
    let Outcome::Error { failure, .. } = failure else {
        panic!("expected a failure, got {failure:?}");
    };
    assert_eq!(failure.code(), "panic");
}

#[test]
fn a_panicking_rule_evaluated_from_async_code_is_contained() {
    panic_from_async_code(&runtime());
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    panic_from_async_code(&current);
}
