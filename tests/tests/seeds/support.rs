//! What every seed replay shares: a host on any backend, a Redis fixture with its own key
//! prefix, the macro that runs one scenario on both backends, and a backend that records its
//! calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tagbust::backend::RedisBackend;
use tagbust::{
    Backend, BoundRule, HostError, HostOptions, NewEntry, Op, RuleConfig, RuleSet, SubmitReport,
    Tagbust, TenantSetup, Tenants,
};
use tagbust_tests::hooked::{BeforeApply, Hooked};
use tagbust_tests::{TestRedis, load};

/// The shared Redis the replays use: database 11 (12, 13 and 15 belong to other tests).
pub fn redis_url() -> String {
    std::env::var("TAGBUST_SEEDS_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/11".into())
}

/// Runs each named scenario (`async fn name<B: Backend>(backend: B)`) twice, as the tests
/// `name::memory` and `name::redis`.
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn memory() {
                super::$scenario(tagbust::MemoryBackend::new()).await;
            }

            #[tokio::test]
            async fn redis() {
                let redis = tagbust_tests::SharedRedis::new(
                    &$crate::support::redis_url(),
                    &format!("tbseed-{}", stringify!($scenario)),
                );
                super::$scenario(redis.connect().await).await;
            }
        }
    )+};
    // Scenarios that take the rule under test first (`async fn name<B>(rule, backend)`);
    // `$label` keeps the Redis key prefixes of two rules' runs apart.
    (with $label:literal, $rule:expr => $($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn memory() {
                super::$scenario($rule, tagbust::MemoryBackend::new()).await;
            }

            #[tokio::test]
            async fn redis() {
                let redis = tagbust_tests::SharedRedis::new(
                    &$crate::support::redis_url(),
                    &format!("tbseed-{}-{}", $label, stringify!($scenario)),
                );
                super::$scenario($rule, redis.connect().await).await;
            }
        }
    )+};
}
pub(crate) use on_both_backends;

/// A host whose every tenant runs `rules` (component paths, no configuration).
pub fn host<B: Backend>(backend: B, rules: &[&str], options: HostOptions) -> Tagbust<B> {
    let rules = rules
        .iter()
        .map(|path| BoundRule::new(load(path)))
        .collect();
    host_with(
        backend,
        Tenants::new(TenantSetup::new(RuleSet::new(rules))),
        options,
    )
}

/// A host with its own tenant setups.
pub fn host_with<B: Backend>(backend: B, tenants: Tenants, options: HostOptions) -> Tagbust<B> {
    Tagbust::builder(Arc::new(backend))
        .tenants(tenants)
        .options(options)
        .build()
        .expect("host builds")
}

/// A rule configuration from a JSON object.
pub fn config(json: serde_json::Value) -> RuleConfig {
    RuleConfig::from_json_object(json.as_object().expect("a JSON object"))
}

/// Stores `key` of `tenant` with `tags` (value `<key>`, 10 min TTL).
pub async fn put<B: Backend>(host: &Tagbust<B>, tenant: &str, key: &str, tags: &[&str]) {
    put_entry(host, tenant, key, tags, &[]).await;
}

/// Like [`put`], for an entry derived from the `depends_on` keys.
pub async fn put_entry<B: Backend>(
    host: &Tagbust<B>,
    tenant: &str,
    key: &str,
    tags: &[&str],
    depends_on: &[&str],
) {
    host.cache()
        .set(NewEntry {
            tenant: tenant.into(),
            key: key.into(),
            value: format!("<{key}>").into_bytes(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ttl: Some(Duration::from_secs(600)),
            depends_on: depends_on.iter().map(|k| (*k).to_owned()).collect(),
        })
        .await
        .expect("set");
}

/// Which of `keys` are still cached for `tenant`, in the order given.
pub async fn cached<'k, B: Backend>(
    host: &Tagbust<B>,
    tenant: &str,
    keys: &[&'k str],
) -> Vec<&'k str> {
    let mut out = Vec::new();
    for key in keys {
        if host.cache().get(tenant, key).await.expect("get").is_some() {
            out.push(*key);
        }
    }
    out
}

/// A private redis-server (see `TestRedis`) and a host on it with short timeouts, so a test
/// can take Redis away under the host.
pub async fn private_redis_host(server: &TestRedis, tenants: Tenants) -> Tagbust<RedisBackend> {
    host_with(
        server.fast_failing_backend().await,
        tenants,
        HostOptions::default(),
    )
}

/// Flushes until the backend takes everything pending (it may still be reconnecting); a
/// failed flush keeps its operations for the next one.
pub async fn drain<B: Backend>(host: &Tagbust<B>) {
    for _ in 0..200 {
        if host.flush().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the backend never came back");
}

/// Accepts what a submission may return while the backend is down: applied, or kept for
/// retry (never refused, never lost).
pub fn kept_or_applied(result: Result<SubmitReport, HostError>) -> SubmitReport {
    match result {
        Ok(report) => report,
        Err(other) => panic!("a backend outage must not refuse the write's invalidation: {other}"),
    }
}

/// The operations of each `apply` call, as given.
#[derive(Default)]
pub struct Calls(Mutex<Vec<Vec<Op>>>);

impl Calls {
    /// The `apply` calls so far, each with its operations.
    pub fn calls(&self) -> Vec<Vec<Op>> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl BeforeApply for Calls {
    async fn before_apply(&self, ops: &[Op]) {
        self.0.lock().expect("not poisoned").push(ops.to_vec());
    }
}

/// A real backend that records, for each `apply` call, the operations it was given.
pub type Recording<B> = Hooked<B, Calls>;

pub fn recording<B: Backend>(inner: B) -> Recording<B> {
    Hooked::new(inner, Calls::default())
}

/// Submits one event, which must be accepted.
pub async fn submit<B: Backend>(host: &Tagbust<B>, event: tagbust::WriteEvent) -> SubmitReport {
    host.submit(vec![event]).await.expect("submit")
}
