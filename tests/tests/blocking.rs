//! Rules that wait inside a host call: `std::thread::sleep`, a sleep loop, `wasi:io/poll` on a
//! clock an hour away, a huge stdout write and flush, a read of stdin. Epochs cannot stop a
//! rule parked in a host call; the host's bounded WASI (`host/src/sandbox/wasi.rs`) must.
//!
//! For each case: the call ends within the deadline plus a bounded slack (without the
//! bounded WASI the sleeps take 20 s or forever, and the test fails on its own timeout); a
//! wait is reported as `timeout` and answered by the default fallback; the same rule and
//! another tenant are served after it; and no host thread stays parked: the host runs on a
//! tokio runtime with a single blocking thread, so one parked evaluation would stall every
//! later submission.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tagbust::{
    BoundRule, Limits, MemoryBackend, NewEntry, Operation, RuleSet, Tagbust, TenantSetup, Tenants,
    WriteEvent,
};
use tagbust_tests::{components, event, load};

const DEADLINE: Duration = Duration::from_millis(100);
/// How long past its deadline a call may end here: far above the few ticks it takes on a
/// quiet machine (the closing figures come from the `blocking` report of this test), far
/// below the 20 s a bounded-nothing sleep would take.
const SLACK: Duration = Duration::from_millis(900);

fn tenants() -> Tenants {
    let rule = load(components::MISBEHAVE);
    let bound = || {
        TenantSetup::new(RuleSet::new(vec![BoundRule {
            limits: Limits {
                deadline: DEADLINE,
                ..Limits::default()
            },
            ..BoundRule::new(rule.clone())
        }]))
    };
    Tenants::new(bound())
        .with_tenant("evil", bound())
        .with_tenant("good", bound())
}

/// One worker and one blocking thread: a parked evaluation would stall everything after it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn hostile(resource: &str) -> WriteEvent {
    let mut e = event("evil", resource, Operation::Update);
    e.ids.push("1".into());
    e
}

fn good(tenant: &str) -> WriteEvent {
    let mut e = event(tenant, "fine", Operation::Update);
    e.ids.push("1".into());
    e
}

/// Submits `resource`'s event to a fresh host; returns how long the submission took and
/// the host, after checking the outcome `code` (`None`: the rule succeeds) and that both
/// tenants are served afterwards.
async fn run_case(resource: &str, code: Option<&str>) -> Duration {
    let host = Tagbust::builder(Arc::new(MemoryBackend::new()))
        .tenants(tenants())
        .build()
        .expect("host builds");
    host.cache()
        .set(NewEntry {
            tenant: "evil".into(),
            key: "listing".into(),
            value: b"v".to_vec(),
            tags: vec![resource.to_owned()],
            ttl: None,
            depends_on: Vec::new(),
        })
        .await
        .expect("set");
    let start = Instant::now();
    let submitted = tokio::time::timeout(DEADLINE + SLACK, host.submit(vec![hostile(resource)]))
        .await
        .unwrap_or_else(|_| panic!("{resource}: still waiting {SLACK:?} past the deadline"));
    let took = start.elapsed();
    let report = submitted.expect("accepted");
    let stats = host.stats();
    let counted = stats.rules.get("misbehave").map(|r| r.failures.clone());
    match code {
        Some(code) => {
            assert_eq!(report.rule_failures, 1, "{resource}: {report:?}");
            assert_eq!(
                counted.and_then(|f| f.get(code).copied()),
                Some(1),
                "{resource}: counted as {code}"
            );
            assert_eq!(stats.rule_fallbacks, 1, "{resource}: the default fallback");
            let left = host.cache().get("evil", "listing").await.expect("get");
            assert!(
                left.is_none(),
                "{resource}: the fallback invalidated its tag"
            );
        }
        None => assert_eq!(report.rule_failures, 0, "{resource}: {report:?}"),
    }
    for tenant in ["evil", "good"] {
        let after = tokio::time::timeout(Duration::from_secs(5), host.submit(vec![good(tenant)]))
            .await
            .unwrap_or_else(|_| panic!("{tenant} after {resource}: the host is stalled"))
            .expect("accepted");
        assert_eq!(
            (after.rule_failures, after.applied),
            (0, 1),
            "{tenant} after {resource}: {after:?}"
        );
    }
    host.shutdown().await.expect("shutdown");
    took
}

#[test]
fn every_waiting_host_call_ends_at_the_deadline_and_the_host_keeps_serving() {
    let rt = runtime();
    let cases: [(&str, Option<&str>); 6] = [
        ("sleep", Some("timeout")),
        ("sleep-forever", Some("timeout")),
        ("poll-far", Some("timeout")),
        ("poll-ready", None),
        ("flush-huge", None),
        ("stdin", None),
    ];
    let mut report = Vec::new();
    for (resource, code) in cases {
        let took = rt.block_on(run_case(resource, code));
        assert!(
            took <= DEADLINE + SLACK,
            "{resource}: took {took:?}, deadline {DEADLINE:?}"
        );
        report.push(format!("{resource} {took:.1?}"));
    }
    eprintln!("blocking: {}", report.join(", "));
}

#[test]
fn a_sleeping_rule_does_not_starve_a_neighbour_on_one_blocking_thread() {
    // While `evil` sleeps forever in one submission after another, `good` keeps being
    // served: each sleep ends at its deadline and gives the only blocking thread back.
    let rt = runtime();
    rt.block_on(async {
        let host = Tagbust::builder(Arc::new(MemoryBackend::new()))
            .tenants(tenants())
            .build()
            .expect("host builds");
        let evil = {
            let host = host.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let _ = host.submit(vec![hostile("sleep-forever")]).await;
                }
            })
        };
        let start = Instant::now();
        for _ in 0..20 {
            let report =
                tokio::time::timeout(Duration::from_secs(5), host.submit(vec![good("good")]))
                    .await
                    .expect("good is never stalled for long")
                    .expect("accepted");
            assert_eq!(report.rule_failures, 0);
        }
        eprintln!(
            "20 good submissions beside a sleeping neighbour: {:?}",
            start.elapsed()
        );
        tokio::time::timeout(Duration::from_secs(10), evil)
            .await
            .expect("the sleeping tenant's submissions all end")
            .expect("joined");
        host.shutdown().await.expect("shutdown");
    });
}
