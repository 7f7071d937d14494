//! Tenants as a platform runs them: manifests (and every way one is refused), unknown tenants,
//! failure policies, confinement, rate limits and hot reload, through the real host with the
//! `echo` and `misbehave` guests.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tagbust::tenant::manifest;
use tagbust::{
    HostError, HostOptions, ManifestError, MemoryBackend, Operation, Tagbust, Tenants, WriteEvent,
};
use tagbust_tests::{Scratch, components, emit, engine, entry, load};

/// A scratch directory with copies of the guests a manifest can name.
struct Platform {
    dir: Scratch,
}

impl Platform {
    fn new(name: &str) -> Platform {
        let dir = Scratch::new(name);
        for (file, path) in [
            ("echo.wasm", components::ECHO),
            ("misbehave.wasm", components::MISBEHAVE),
        ] {
            std::fs::copy(path, dir.0.join(file)).expect("copy component");
        }
        Platform { dir }
    }

    fn manifest(&self, file: &str, text: &str) -> PathBuf {
        self.dir.file(file, text.as_bytes())
    }

    fn tenants(&self) -> Result<Tenants, ManifestError> {
        manifest::load_dir(engine(), &self.dir.0)
    }
}

fn sha(path: &str) -> String {
    load(path).sha256_hex()
}

/// A manifest with one rule: `component` (a file in the platform directory) and `extra`
/// lines inside its `[[rule]]` table.
fn one_rule(tenant: &str, component: &str, sha256: &str, extra: &str) -> String {
    limited_rule(tenant, "", component, sha256, extra)
}

/// [`one_rule`] with `limits` lines in the manifest's `[limits]` table.
fn limited_rule(tenant: &str, limits: &str, component: &str, sha256: &str, extra: &str) -> String {
    format!(
        "tenant = \"{tenant}\"\n[limits]\n{limits}\n\n[[rule]]\npath = \"{component}\"\nsha256 = \"{sha256}\"\n{extra}\n"
    )
}

fn host(tenants: Tenants) -> Tagbust<MemoryBackend> {
    Tagbust::builder(Arc::new(MemoryBackend::new()))
        .engine(engine().clone())
        .tenants(tenants)
        .options(HostOptions::default())
        .build()
        .expect("host builds")
}

fn misbehaving(tenant: &str, mode: &str) -> WriteEvent {
    let mut e = WriteEvent::new(tenant, mode, Operation::Update);
    e.ids.push("1".into());
    e
}

async fn present(host: &Tagbust<MemoryBackend>, tenant: &str, key: &str) -> bool {
    host.cache().get(tenant, key).await.expect("get").is_some()
}

#[tokio::test]
async fn a_manifest_sets_up_a_tenant() {
    let p = Platform::new("manifest-ok");
    let echo = sha(components::ECHO);
    p.manifest(
        "acme.toml",
        &format!(
            "tenant = \"acme\"\n\
             [limits]\ndeadline_ms = 50\nmemory_mib = 16\nmax_targets = 64\n\
             [[rule]]\npath = \"echo.wasm\"\nsha256 = \"{echo}\"\npriority = 7\n\
             on_failure = \"skip\"\n[rule.config]\nfeeds = \"home\"\nlimit = 3\n\
             [relationships]\nmax_depth = 1\nedges = {{ user = [\"session\"] }}\n"
        ),
    );
    let tenants = p.tenants().expect("the manifest loads");
    let setup = tenants.get("acme").expect("acme exists");
    let rule = &setup.rules.rules()[0];
    assert_eq!(rule.priority, 7, "priority overridden");
    assert_eq!(rule.on_failure, tagbust::FailurePolicy::Skip);
    assert_eq!(rule.limits.deadline, std::time::Duration::from_millis(50));
    assert_eq!(rule.limits.memory_bytes, 16 << 20);
    assert_eq!(rule.limits.max_targets, 64);
    assert_eq!(rule.config.get("feeds"), Some("home"));
    assert_eq!(
        rule.config.get("limit"),
        Some("3"),
        "non-strings as JSON text"
    );

    let host = host(tenants);
    host.cache()
        .set(entry("acme", "s", &["session:9"]))
        .await
        .expect("set");
    host.submit(vec![emit("acme", "tag=user:9+cascade")])
        .await
        .expect("submit");
    assert!(
        !present(&host, "acme", "s").await,
        "the manifest's edge cascades"
    );

    let stats = host.stats();
    let acme = &stats.tenants["acme"];
    assert_eq!(
        acme.rules[0].sha256, echo,
        "the sha256 in force shows in stats"
    );
    assert!(
        acme.manifest
            .as_ref()
            .is_some_and(|m| m.path.ends_with("acme.toml"))
    );
    let records = host.explain().records();
    assert_eq!(
        records[0].origin.rule.sha256(),
        echo.as_str(),
        "and in explain"
    );
}

const JUNK: &[u8] = b"\0asm but not really";

/// Every refusal names the file and the field.
#[test]
fn bad_manifests_are_refused_naming_file_and_field() {
    let echo = sha(components::ECHO);
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unknown top-level key",
            format!(
                "colour = \"blue\"\n{}",
                one_rule("a", "echo.wasm", &echo, "")
            ),
            "colour",
            "unknown field `colour`",
        ),
        (
            "unknown rule key",
            one_rule("a", "echo.wasm", &echo, "prio = 3"),
            "rule[0]",
            "unknown field `prio`",
        ),
        (
            "unknown limit",
            "tenant = \"a\"\n[limits]\ndeadline = 5\n".into(),
            "limits",
            "unknown field `deadline`",
        ),
        (
            "missing component",
            one_rule("a", "nowhere.wasm", &echo, ""),
            "rule[0].path",
            "cannot read",
        ),
        (
            "sha256 mismatch",
            one_rule("a", "echo.wasm", &"0".repeat(64), ""),
            "rule[0].sha256",
            "the manifest expects 0000",
        ),
        (
            "missing sha256",
            "tenant = \"a\"\n[[rule]]\npath = \"echo.wasm\"\n".into(),
            "rule[0]",
            "missing field `sha256`",
        ),
        (
            "bad policy",
            one_rule("a", "echo.wasm", &echo, "on_failure = \"ignore\""),
            "rule[0].on_failure",
            "unknown variant `ignore`",
        ),
        (
            "config value JSON cannot hold",
            one_rule("a", "echo.wasm", &echo, "[rule.config]\nratio = nan"),
            "rule[0].config.ratio",
            "NaN",
        ),
        (
            "bad tenant id",
            one_rule("a*b", "echo.wasm", &echo, ""),
            "tenant",
            "[A-Za-z0-9._-]",
        ),
        (
            "fuel without a fuel engine",
            "tenant = \"a\"\n[limits]\nfuel = 1000\n".into(),
            "limits.fuel",
            "without fuel",
        ),
        (
            "not a component",
            one_rule("a", "junk.wasm", &hex::encode(Sha256::digest(JUNK)), ""),
            "rule[0].path",
            "junk.wasm",
        ),
    ];
    for (what, text, field, message) in cases {
        let p = Platform::new("manifest-bad");
        p.dir.file("junk.wasm", JUNK);
        let path = p.manifest("acme.toml", &text);
        let err = match manifest::load(engine(), &path) {
            Err(e) => e,
            Ok(_) => panic!("{what}: accepted"),
        };
        assert_eq!(err.file, path.display().to_string(), "{what}");
        assert!(
            err.field.starts_with(field),
            "{what}: field `{}`, wanted `{field}`: {err}",
            err.field
        );
        assert!(err.message.contains(message), "{what}: {err}");
        assert!(err.to_string().contains("acme.toml"), "{what}: {err}");
    }
}

#[test]
fn two_manifests_for_one_tenant_are_refused() {
    let p = Platform::new("manifest-twice");
    let echo = sha(components::ECHO);
    p.manifest("a.toml", &one_rule("acme", "echo.wasm", &echo, ""));
    p.manifest("b.toml", &one_rule("acme", "echo.wasm", &echo, ""));
    let err = p.tenants().err().expect("refused");
    assert!(
        err.file.ends_with("b.toml") && err.field == "tenant",
        "{err}"
    );
    assert!(err.message.contains("a.toml"), "{err}");
}

#[tokio::test]
async fn events_of_an_unknown_tenant_are_refused_and_counted() {
    let p = Platform::new("manifest-unknown");
    p.manifest(
        "acme.toml",
        &one_rule("acme", "echo.wasm", &sha(components::ECHO), ""),
    );
    let host = host(p.tenants().expect("loads"));
    let err = host
        .submit(vec![emit("acme", "tag=a"), emit("nobody", "tag=a")])
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, HostError::UnknownTenant { index: 1, tenant } if tenant == "nobody"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let stats = host.stats();
    assert_eq!((stats.events_unknown_tenant, stats.events_rejected), (1, 2));
    assert_eq!(stats.events, 0, "nothing of the submission was evaluated");
}

/// One hostile rule, three tenants, three policies; the resource (`panic`, `loop`, `error`)
/// picks the misbehaviour, and is also the resource-level tag the fallback invalidates.
#[tokio::test]
async fn each_failure_policy_does_what_it_says() {
    let p = Platform::new("manifest-policy");
    let bad = sha(components::MISBEHAVE);
    for (tenant, policy) in [
        ("fb", "on_failure = \"fallback\""),
        ("sk", "on_failure = \"skip\""),
        ("fl", "on_failure = \"fail\""),
        ("all", "fallback = \"tenant\""),
    ] {
        p.manifest(
            &format!("{tenant}.toml"),
            &one_rule(tenant, "misbehave.wasm", &bad, policy),
        );
    }
    let host = host(p.tenants().expect("loads"));
    for tenant in ["fb", "sk", "fl", "all"] {
        for mode in ["panic", "loop", "error"] {
            host.cache()
                .set(entry(tenant, &format!("{mode}-list"), &[mode]))
                .await
                .expect("set");
        }
        host.cache()
            .set(entry(tenant, "unrelated", &["x"]))
            .await
            .expect("set");
    }
    for mode in ["panic", "loop", "error"] {
        let report = host
            .submit(vec![misbehaving("fb", mode), misbehaving("sk", mode)])
            .await
            .expect("fallback and skip do not fail the submission");
        assert_eq!(report.rule_failures, 2, "{mode}");
        let key = format!("{mode}-list");
        assert!(
            !present(&host, "fb", &key).await,
            "fallback: {mode} tag gone"
        );
        assert!(
            present(&host, "fb", "unrelated").await,
            "fallback is scoped"
        );
        assert!(present(&host, "sk", &key).await, "skip: {mode} kept");
    }
    let stats = host.stats();
    assert_eq!((stats.rule_fallbacks, stats.rule_skips), (3, 3));

    // `fail`: the event is rejected with the rule and failure; the rest is applied.
    let report = host
        .submit(vec![
            misbehaving("fl", "panic"),
            misbehaving("fb", "things"),
        ])
        .await
        .expect("accepted: the rejection is part of the report");
    let rejected = &report.rejected;
    assert_eq!(rejected.len(), 1);
    assert_eq!((rejected[0].index, rejected[0].tenant.as_str()), (0, "fl"));
    assert_eq!(rejected[0].rule, "misbehave");
    assert_eq!(rejected[0].failure, "panic");
    assert_eq!(report.events, 2);
    assert!(
        present(&host, "fl", "panic-list").await,
        "nothing of it applied"
    );
    assert_eq!(host.stats().events_failed_by_rule, 1);

    // Tenant-scope fallback: everything of the tenant, nothing of the others.
    host.submit(vec![misbehaving("all", "loop")])
        .await
        .expect("fallback");
    assert!(!present(&host, "all", "unrelated").await);
    assert!(present(&host, "fb", "unrelated").await);
}

/// Every attempt to reach outside the tenant is rejected, counted, and answered by the
/// rule's policy; the other tenant's data is untouched.
#[tokio::test]
async fn targets_outside_the_tenant_are_confined() {
    let p = Platform::new("manifest-confine");
    let echo = sha(components::ECHO);
    p.manifest("acme.toml", &one_rule("acme", "echo.wasm", &echo, ""));
    p.manifest("globex.toml", &one_rule("globex", "echo.wasm", &echo, ""));
    let host = host(p.tenants().expect("loads"));
    for key in ["user:1", "secret"] {
        host.cache()
            .set(entry("globex", key, &["user"]))
            .await
            .expect("set");
    }
    host.cache()
        .set(entry("acme", "list", &["things"]))
        .await
        .expect("set");
    let attempts = [
        "key=globex:user:1",
        "tag={globex}",
        "key=tb:{globex}:e:secret",
        "key=../globex/secret",
        "key=/globex/secret",
        "pattern=*globex:*",
        "tag=globex",
    ];
    for attempt in attempts {
        host.submit(vec![emit("acme", &format!("{attempt} key=fine"))])
            .await
            .expect("confined, not failed");
    }
    let stats = host.stats();
    assert_eq!(stats.confinement_violations, attempts.len() as u64);
    assert_eq!(
        stats.rule_fallbacks,
        attempts.len() as u64,
        "the policy applied"
    );
    assert!(present(&host, "globex", "user:1").await);
    assert!(present(&host, "globex", "secret").await);
    assert!(
        !present(&host, "acme", "list").await,
        "the fallback invalidated acme's resource tag `things`"
    );
}

#[tokio::test]
async fn a_tenant_over_its_rate_is_refused_until_it_slows_down() {
    let p = Platform::new("manifest-rate");
    p.manifest(
        "acme.toml",
        &limited_rule(
            "acme",
            "max_events_per_second = 5",
            "echo.wasm",
            &sha(components::ECHO),
            "",
        ),
    );
    let host = host(p.tenants().expect("loads"));
    let five: Vec<WriteEvent> = (0..5).map(|_| emit("acme", "tag=a")).collect();
    host.submit(five).await.expect("within the rate");
    let err = host
        .submit(vec![emit("acme", "tag=a")])
        .await
        .expect_err("over the rate");
    assert!(
        matches!(&err, HostError::RateLimited { tenant, limit: 5 } if tenant == "acme"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(host.stats().events_rate_limited, 1);
}

/// Reload swaps a tenant's rules without a restart; a broken version is refused and the old
/// one stays live; stats show what is in force.
#[tokio::test]
async fn reload_swaps_in_a_new_version_and_refuses_a_broken_one() {
    let p = Platform::new("manifest-reload");
    let (echo, bad) = (sha(components::ECHO), sha(components::MISBEHAVE));
    let path = p.manifest("acme.toml", &one_rule("acme", "echo.wasm", &echo, ""));
    let host = host(p.tenants().expect("loads"));
    let in_force =
        |host: &Tagbust<MemoryBackend>| host.stats().tenants["acme"].rules[0].sha256.clone();
    assert_eq!(in_force(&host), echo);

    p.manifest("acme.toml", &one_rule("acme", "misbehave.wasm", &bad, ""));
    let reloaded = host.reload(&path).await.expect("reloads");
    assert_eq!(reloaded.tenant, "acme");
    assert_eq!(reloaded.now.rules[0].sha256, bad);
    assert_eq!(reloaded.previous.expect("had one").rules[0].sha256, echo);
    assert_eq!(in_force(&host), bad);
    let report = host
        .submit(vec![misbehaving("acme", "things")])
        .await
        .expect("the new rule runs");
    assert_eq!(report.targets, 1, "misbehave's `ok:1`");

    // A broken new version: refused, the old one stays.
    p.manifest("acme.toml", &one_rule("acme", "misbehave.wasm", &echo, ""));
    let err = host.reload(&path).await.expect_err("refused");
    assert_eq!(err.field, "rule[0].sha256");
    assert_eq!(in_force(&host), bad, "the old version stays live");
    let stats = host.stats();
    assert_eq!((stats.reloads, stats.reloads_failed), (1, 1));
    host.submit(vec![misbehaving("acme", "things")])
        .await
        .expect("still serving");
}

/// A tenant whose rule burned its deadline waits that long before its next evaluation (so a
/// looping tenant gets about half a core however hard it submits); its neighbours do not.
#[tokio::test]
async fn a_failing_tenant_cools_down_and_its_neighbours_do_not() {
    let p = Platform::new("manifest-cooldown");
    let bad = sha(components::MISBEHAVE);
    for tenant in ["evil", "good"] {
        p.manifest(
            &format!("{tenant}.toml"),
            &limited_rule(tenant, "deadline_ms = 30", "misbehave.wasm", &bad, ""),
        );
    }
    // A generous factor, so the wait outlasts anything else the test does.
    let host = Tagbust::builder(Arc::new(MemoryBackend::new()))
        .tenants(p.tenants().expect("loads"))
        .options(HostOptions {
            failure_cooldown: 20.0,
            ..HostOptions::default()
        })
        .build()
        .expect("host builds");
    host.submit(vec![misbehaving("evil", "loop")])
        .await
        .expect("contained");
    host.submit(vec![misbehaving("good", "things")])
        .await
        .expect("good");
    assert_eq!(host.stats().cooldown_waits, 0, "the neighbour never waits");
    host.submit(vec![misbehaving("evil", "things")])
        .await
        .expect("after its cool-down");
    let stats = host.stats();
    assert_eq!(stats.cooldown_waits, 1, "the looping tenant waited once");
    assert!(stats.cooldown_wait_ms > 0);
}

/// Invalidation without a rule (an operator, an admin endpoint): confined, cascaded and
/// counted like rule output; clear-all empties one tenant only.
#[tokio::test]
async fn manual_invalidation_and_clear_all_go_through_the_host() {
    let p = Platform::new("manifest-manual");
    let echo = sha(components::ECHO);
    for tenant in ["acme", "globex"] {
        p.manifest(
            &format!("{tenant}.toml"),
            &format!(
                "{}[relationships]\nedges = {{ user = [\"session\"] }}\n",
                one_rule(tenant, "echo.wasm", &echo, "")
            ),
        );
    }
    let host = host(p.tenants().expect("loads"));
    for tenant in ["acme", "globex"] {
        for (key, tag) in [
            ("profile", "user:1"),
            ("login", "session:1"),
            ("other", "x"),
        ] {
            host.cache()
                .set(entry(tenant, key, &[tag]))
                .await
                .expect("set");
        }
    }
    let report = host
        .invalidate("acme", vec![tagbust::Target::tag("user:1").cascading()])
        .await
        .expect("manual");
    assert_eq!((report.targets, report.keys_removed), (2, 2), "{report:?}");
    assert!(!present(&host, "acme", "login").await, "cascaded");
    assert!(present(&host, "globex", "profile").await);
    let records = host.explain().records();
    assert_eq!(records[0].origin.rule.name(), "(manual)");

    let err = host
        .invalidate("acme", vec![tagbust::Target::key("globex:profile")])
        .await
        .expect_err("confined");
    assert!(matches!(err, HostError::InvalidEvent { ref field, .. } if field == "targets[0]"));
    assert!(matches!(
        host.invalidate("nobody", vec![]).await,
        Err(HostError::UnknownTenant { .. })
    ));

    host.clear_tenant("acme").await.expect("clear all");
    assert!(!present(&host, "acme", "other").await);
    assert!(present(&host, "globex", "other").await, "one tenant only");
}
