//! `tagbust demo`: the example rules over a scripted scenario, against a real cache.
//!
//! A service caches posts, feeds, treasury views, lab controllers and user data; writes come
//! in; the demo prints what each write invalidated and why (from the explain log), what the
//! cache holds afterwards, and the final stats.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tagbust::backend::{RedisBackend, RedisOptions, Topology};
use tagbust::{
    Backend, BoundRule, FieldChange, HostOptions, MemoryBackend, NewEntry, Operation,
    Relationships, RuleConfig, RuleSet, Tagbust, TenantSetup, Tenants, WriteEvent,
};

use super::rules::component_paths;

#[derive(Args)]
pub struct DemoArgs {
    /// The example rule components (.wasm files or directories of them).
    #[arg(long = "rules", required = true, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Print the final stats as JSON after the scenario.
    #[arg(long)]
    json_stats: bool,
    /// Run against Redis (`redis://HOST:PORT/DB`) instead of the in-memory cache; the
    /// entries and indexes are left there for inspection (keys `tb:{tenant}:…`).
    #[arg(long)]
    redis: Option<String>,
    /// `--redis` names nodes of a Redis Cluster (one or more URLs, comma-separated).
    #[arg(long, requires = "redis")]
    cluster: bool,
}

const EXPECTED: [&str; 4] = [
    "published-feeds",
    "table-patterns",
    "task-controllers",
    "user-sessions",
];

pub fn run(args: DemoArgs, cache: &super::engine::CacheArgs) -> anyhow::Result<()> {
    let engine = cache.engine()?;
    let mut rules = Vec::new();
    for path in component_paths(&args.rules)? {
        rules.push(engine.load_file(&path)?);
    }
    for name in EXPECTED {
        if !rules.iter().any(|r| r.name() == name) {
            bail!("the demo needs the example rule `{name}`; build it with scripts/demo.sh");
        }
    }
    rules.retain(|r| EXPECTED.contains(&r.name()));
    let table = serde_json::json!({
        "rules": {"build_climate": {"invalidates_cache": ["climate", "wepp"]}},
        "cache_keys": {"climate": "{run_id}:climate", "wepp": "{run_id}:wepp"}
    });
    let table = RuleConfig::from_json_object(table.as_object().context("table is an object")?);
    let relationships = Relationships::new().edges("user", &["session", "preferences"]);
    let bind = |config_for_tasks: Option<&RuleConfig>| {
        RuleSet::new(
            rules
                .iter()
                .map(|r| {
                    let bound = BoundRule::new(r.clone());
                    match (r.name(), config_for_tasks) {
                        ("task-controllers", Some(c)) => bound.with_config(c.clone()),
                        _ => bound,
                    }
                })
                .collect(),
        )
    };
    let tenants = Tenants::new(TenantSetup::new(bind(None)).with_relationships(relationships))
        .with_tenant("lab", TenantSetup::new(bind(Some(&table))));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match &args.redis {
            Some(url) => {
                let topology = if args.cluster {
                    Topology::Cluster(url.split(',').map(str::to_owned).collect())
                } else {
                    Topology::Single(url.clone())
                };
                let label = format!("Redis at {}", topology.describe());
                let backend = RedisBackend::connect_to(topology, RedisOptions::default()).await?;
                run_on(backend, &label, tenants, args.json_stats).await
            }
            None => {
                run_on(
                    MemoryBackend::new(),
                    "in-memory backend",
                    tenants,
                    args.json_stats,
                )
                .await
            }
        }
    })
}

async fn run_on<B: Backend>(
    backend: B,
    label: &str,
    tenants: Tenants,
    json_stats: bool,
) -> anyhow::Result<()> {
    let host = Tagbust::builder(Arc::new(backend))
        .tenants(tenants)
        .options(HostOptions::default())
        .build()?;
    println!("tagbust demo · {label} · rules: {}", EXPECTED.join(", "));
    scenario(&host).await?;
    host.shutdown().await?;
    let stats = host.stats();
    if json_stats {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print_stats(&stats);
    }
    Ok(())
}

fn event(tenant: &str, resource: &str, op: Operation, ids: &[&str]) -> WriteEvent {
    let mut e = WriteEvent::new(tenant, resource, op);
    e.ids = ids.iter().map(|s| (*s).to_owned()).collect();
    e
}

fn change(field: &str, old: Option<&str>, new: Option<&str>) -> FieldChange {
    FieldChange {
        field: field.into(),
        old: old.map(Into::into),
        new: new.map(Into::into),
    }
}

/// What the demo's service caches, per tenant: key and tags.
const CACHED: &[(&str, &str, &[&str])] = &[
    ("acme", "post:7", &[]),
    ("acme", "post:8", &[]),
    ("acme", "home", &["feed:home"]),
    ("acme", "author:42:feed", &["feed:author:42"]),
    ("acme", "user:42:profile", &["user:42"]),
    ("acme", "user:42:sessions", &["session:42"]),
    ("acme", "user:42:settings", &["preferences:42"]),
    ("acme", "user:43:profile", &["user:43"]),
    ("acme", "user:1:online", &["presence:1"]),
    ("acme", "user:2:online", &["presence:2"]),
    ("treasury", "hedge_positions:currency:USD:entity:E1", &[]),
    ("treasury", "hedge_positions:currency:EUR:entity:E1", &[]),
    ("treasury", "exposure_analysis:currency:USD", &[]),
    ("lab", "300:climate", &[]),
    ("lab", "300:wepp", &[]),
    ("lab", "300:soils", &[]),
];

async fn fill<B: Backend>(host: &Tagbust<B>) -> anyhow::Result<()> {
    for (tenant, key, tags) in CACHED {
        host.cache()
            .set(NewEntry {
                tenant: (*tenant).into(),
                key: (*key).into(),
                value: format!("<{key}>").into_bytes(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                ttl: Some(Duration::from_secs(3600)),
                depends_on: Vec::new(),
            })
            .await?;
    }
    // The home feed is derived from post 7: invalidating the post invalidates the feed.
    host.cache()
        .set(NewEntry {
            tenant: "acme".into(),
            key: "home:rendered".into(),
            value: b"<html>".to_vec(),
            tags: Vec::new(),
            ttl: Some(Duration::from_secs(3600)),
            depends_on: vec!["home".into()],
        })
        .await?;
    println!(
        "\ncached {} entries across tenants acme, treasury, lab (TTL 1 h)",
        CACHED.len() + 1
    );
    Ok(())
}

async fn write<B: Backend>(
    host: &Tagbust<B>,
    title: &str,
    events: Vec<WriteEvent>,
) -> anyhow::Result<()> {
    println!("\n── {title}");
    let before = host.explain().records().len();
    let report = host.submit(events).await?;
    println!(
        "   {} event(s) → {} target(s): {} applied now, {} batched, {} held for a transaction",
        report.events, report.targets, report.applied, report.batched, report.held
    );
    explain_since(host, before);
    Ok(())
}

fn explain_since<B: Backend>(host: &Tagbust<B>, before: usize) {
    let records = host.explain().records();
    let fresh = &records[before.min(records.len())..];
    // Records of one coalesced operation are adjacent: print each operation once.
    let mut i = 0;
    while i < fresh.len() {
        let r = &fresh[i];
        let same = fresh[i..]
            .iter()
            .take_while(|x| Arc::ptr_eq(&x.applied, &r.applied))
            .count();
        let o = &r.origin;
        let via = o
            .cascaded_from
            .as_ref()
            .map(|v| format!(" (cascade from {v})"))
            .unwrap_or_default();
        let events: Vec<String> = fresh[i..i + same]
            .iter()
            .take(4)
            .map(|x| format!("#{}", x.origin.event.seq))
            .collect();
        let a = &r.applied;
        let more = if a.coalesced > 4 { ", …" } else { "" };
        let keys = if a.keys.is_empty() {
            "nothing cached".to_owned()
        } else {
            a.keys.join(", ")
        };
        println!(
            "   ✗ {:?} {}{via} [{}] ← {}@{} for {} event(s) ({}{more}; {} {}): removed {keys}",
            a.op.kind,
            a.op.value,
            a.applied_as,
            o.rule,
            o.rule.version(),
            a.coalesced,
            events.join(", "),
            o.event.operation,
            o.event.resource
        );
        i += same;
    }
}

async fn show<B: Backend>(host: &Tagbust<B>, tenant: &str, keys: &[&str]) -> anyhow::Result<()> {
    let mut line = Vec::new();
    for key in keys {
        let hit = host.cache().get(tenant, key).await?.is_some();
        line.push(format!("{key} {}", if hit { "cached" } else { "gone" }));
    }
    println!("   now: {}", line.join(" · "));
    Ok(())
}

async fn scenario<B: Backend>(host: &Tagbust<B>) -> anyhow::Result<()> {
    fill(host).await?;

    let mut publish = event("acme", "posts", Operation::Update, &["7"]);
    publish
        .changes
        .push(change("status", Some("draft"), Some("published")));
    publish.context.insert("author_id".into(), "42".into());
    write(
        host,
        "acme publishes post 7 (conditional rule)",
        vec![publish],
    )
    .await?;
    show(host, "acme", &["post:7", "home", "home:rendered", "post:8"]).await?;

    let mut draft = event("acme", "posts", Operation::BulkUpdate, &["8"]);
    draft.changes.push(change("title", Some("a"), Some("b")));
    write(
        host,
        "acme edits a draft: only its own entry dies",
        vec![draft],
    )
    .await?;
    show(host, "acme", &["post:8", "user:43:profile"]).await?;

    let mut prefs = event("acme", "users", Operation::Update, &["42"]);
    prefs
        .changes
        .push(change("preferences", Some("{}"), Some("{\"dark\":true}")));
    write(
        host,
        "acme user 42 changes preferences (cascade user → session, preferences; lazy bump)",
        vec![prefs],
    )
    .await?;
    show(
        host,
        "acme",
        &[
            "user:42:profile",
            "user:42:sessions",
            "user:42:settings",
            "user:43:profile",
        ],
    )
    .await?;

    let storm: Vec<WriteEvent> = (0..200)
        .map(|i| {
            let id = ["1", "2"][i % 2];
            let mut e = event("acme", "users", Operation::Update, &[id]);
            e.changes
                .push(change("last_seen", None, Some(&i.to_string())));
            e
        })
        .collect();
    write(
        host,
        "a presence storm: 200 last_seen updates (batched)",
        storm,
    )
    .await?;
    show(host, "acme", &["user:1:online", "user:2:online"]).await?;
    let before = host.explain().records().len();
    host.flush().await?;
    println!("   flush: the window's operations go out once each");
    explain_since(host, before);
    show(host, "acme", &["user:1:online", "user:2:online"]).await?;

    let mut hedge = event(
        "treasury",
        "hedge_instructions",
        Operation::BulkCreate,
        &["h-1", "h-2"],
    );
    hedge.changes.push(change("currency", None, Some("USD")));
    hedge.transaction = Some("tx-9".into());
    write(
        host,
        "treasury books USD hedges inside transaction tx-9 (pattern rule)",
        vec![hedge],
    )
    .await?;
    show(
        host,
        "treasury",
        &["hedge_positions:currency:USD:entity:E1"],
    )
    .await?;
    let before = host.explain().records().len();
    host.commit("treasury", "tx-9").await?;
    println!("   commit tx-9: invalidation happens after commit, never before");
    explain_since(host, before);
    show(
        host,
        "treasury",
        &[
            "hedge_positions:currency:USD:entity:E1",
            "hedge_positions:currency:EUR:entity:E1",
            "exposure_analysis:currency:USD",
        ],
    )
    .await?;

    let mut rolled = event("treasury", "deal_bookings", Operation::Create, &["d-1"]);
    rolled.transaction = Some("tx-10".into());
    write(
        host,
        "treasury books a deal in tx-10, then rolls back",
        vec![rolled],
    )
    .await?;
    println!(
        "   rollback tx-10: {} held operation(s) dropped",
        host.rollback("treasury", "tx-10")
    );

    let mut task = event("lab", "tasks", Operation::Update, &["build_climate"]);
    task.changes
        .push(change("status", Some("running"), Some("completed")));
    task.context.insert("run_id".into(), "300".into());
    write(
        host,
        "lab finishes build_climate (table-driven rule, lab's own table)",
        vec![task],
    )
    .await?;
    show(host, "lab", &["300:climate", "300:wepp", "300:soils"]).await?;

    println!("\n── why was acme's home:rendered invalidated?");
    for r in host.explain().why("acme", "home:rendered") {
        println!(
            "   event #{} ({} {} {:?}) → rule {}@{} → {} {} → {} → removed {} key(s) incl. dependents",
            r.origin.event.seq,
            r.origin.event.tenant,
            r.origin.event.resource,
            r.origin.event.operation,
            r.origin.rule,
            r.origin.rule.version(),
            r.origin.target_kind,
            r.origin.target,
            r.origin.strategy,
            r.applied.keys_removed
        );
    }
    Ok(())
}

fn print_stats(s: &tagbust::StatsSnapshot) {
    println!("\n── stats");
    println!("   events {} (rejected {})", s.events, s.events_rejected);
    for (rule, r) in &s.rules {
        let failed: u64 = r.failures.values().sum();
        println!(
            "   rule {rule}: {} calls, {} events, {failed} failures",
            r.calls, r.events
        );
    }
    let targets: Vec<String> = s.targets.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("   targets: {}", targets.join(", "));
    let ops: Vec<String> = s
        .ops_applied
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("   operations applied: {}", ops.join(", "));
    println!(
        "   keys removed {} · cascaded tags {} · batched targets {} → {} operations (coalescing {:.1}×)",
        s.keys_removed,
        s.cascaded_tags,
        s.batched_targets,
        s.batched_ops_applied,
        s.coalescing_ratio
    );
    println!(
        "   transactions: {} committed, {} rolled back, {} timed out · cache hits {} misses {}",
        s.transactions_committed,
        s.transactions_rolled_back,
        s.transactions_timed_out,
        s.cache_hits,
        s.cache_misses
    );
}
