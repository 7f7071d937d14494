//! Hostile targets, keys, tags and tenant ids through the real host into real Redis: CR/LF,
//! NUL, `{` and `}`, glob characters, backslashes, right-to-left marks, the backend's own
//! layout spelled out, 64 KiB values. Whatever goes in:
//!
//! - every key Redis holds afterwards lies under `P:{t}:` for a tenant `t` that stored it
//!   with a valid id (its own hash-tagged namespace), never elsewhere;
//! - tenant `b`'s sentinel entry survives everything tenant `a` does;
//! - every refusal is typed (`HostError::InvalidEvent` naming the target, or
//!   `BackendError::Refused` naming a bad tenant id), and no script error reaches the
//!   backend-error path (`backend_errors` stays 0, nothing is deferred).
//!
//! Database 14 of the Redis on 127.0.0.1:6379, under a key prefix of its own.
//! `TAGBUST_FUZZ_CASES=N` sets the number of cases (default 64).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tagbust::backend::RedisBackend;
use tagbust::{BackendError, HostError, NewEntry, Strategy as Timing, Tagbust, Target, TargetKind};
use tagbust_tests::{SharedRedis, entry};

const REDIS: &str = "redis://127.0.0.1:6379/14";

fn hostile() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z0-9:{}*?\\[\\]\\\\/ .\r\n\t\u{0}\u{202e}\u{200f}-]{1,24}",
        "[{}]{1,6}",
        Just("tb:{b}:e:sentinel".to_owned()),
        Just("{b}:sentinel".to_owned()),
        Just("b:sentinel".to_owned()),
        Just("*".to_owned()),
        Just("..".to_owned()),
        Just("x".repeat(64 << 10)),
    ]
    .boxed()
}

fn tenant_id() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just("a".to_owned()),
        1 => Just("a}:e:x".to_owned()),
        1 => Just("b}".to_owned()),
        1 => "[a-z{}:*\r\n]{1,6}",
    ]
    .boxed()
}

fn kind() -> BoxedStrategy<TargetKind> {
    prop_oneof![
        Just(TargetKind::Tag),
        Just(TargetKind::Key),
        Just(TargetKind::Pattern)
    ]
    .boxed()
}

fn timing() -> BoxedStrategy<Timing> {
    prop_oneof![
        Just(Timing::Immediate),
        Just(Timing::Lazy),
        Just(Timing::Batched)
    ]
    .boxed()
}

async fn host(redis: &SharedRedis) -> Tagbust<RedisBackend> {
    tagbust_tests::named_echo_host(redis.connect().await, &["a", "b"])
}

#[test]
fn hostile_targets_and_keys_stay_inside_their_tenant_in_redis() {
    let cases = std::env::var("TAGBUST_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let redis = SharedRedis::new(REDIS, "tbfuzz-layout");
    let host = rt.block_on(host(&redis));
    rt.block_on(host.cache().set(entry("b", "sentinel", &["shared"])))
        .expect("sentinel");
    // Tenants that stored something; each key must lie in one of their namespaces.
    let stored_by = std::cell::RefCell::new(vec!["a".to_owned(), "b".to_owned()]);
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let strategy = (
        tenant_id(),
        hostile(),
        hostile(),
        kind(),
        hostile(),
        timing(),
    );
    runner
        .run(&strategy, |(tenant, key, tag, kind, value, strategy)| {
            rt.block_on(async {
                let stored = host
                    .cache()
                    .set(NewEntry {
                        tags: vec![tag.clone(), "shared".into()],
                        ..entry(&tenant, &key, &[])
                    })
                    .await;
                match stored {
                    Ok(()) => {
                        prop_assert!(
                            tagbust::model::ingest::check_tenant(&tenant).is_ok(),
                            "stored under a bad tenant id {:?}",
                            tenant
                        );
                        stored_by.borrow_mut().push(tenant.clone());
                    }
                    Err(BackendError::Refused(why)) => {
                        prop_assert!(why.contains("tenant"), "{}", why)
                    }
                    Err(other) => prop_assert!(false, "untyped: {}", other),
                }
                let target = Target {
                    kind,
                    value: value.clone(),
                    strategy,
                    cascade: false,
                };
                match host.invalidate("a", vec![target]).await {
                    Ok(report) => prop_assert_eq!(report.deferred, 0, "{:?}", report),
                    Err(HostError::InvalidEvent { field, .. }) => {
                        prop_assert_eq!(field, "targets[0]")
                    }
                    Err(other) => prop_assert!(false, "untyped: {}", other),
                }
                host.flush().await.expect("flush");
                let got = host.cache().get("a", &key).await;
                prop_assert!(got.is_ok(), "{:?}", got);
                Ok(())
            })?;
            let keys = redis.keys();
            let allowed: Vec<String> = stored_by
                .borrow()
                .iter()
                .map(|t| format!("{}:{{{t}}}:", redis.prefix()))
                .collect();
            for k in &keys {
                prop_assert!(
                    allowed.iter().any(|p| k.starts_with(p.as_str())),
                    "key outside the tenants' namespaces: {:?}",
                    k
                );
            }
            let sentinel = rt.block_on(host.cache().get("b", "sentinel"));
            prop_assert!(
                matches!(sentinel, Ok(Some(_))),
                "tenant a reached b's sentinel: {:?}",
                sentinel
            );
            prop_assert_eq!(host.stats().backend_errors, 0);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(host.shutdown()).expect("shutdown");
}
