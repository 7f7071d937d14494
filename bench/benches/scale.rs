//! Scale: 1,000 tenants × 3 rules, each rule loaded from its file per tenant as a platform
//! would (read, hash, compile-cache lookup, link, `describe`), identical bytes compiled once.
//! Prints the load time and the resident memory it added (VmRSS, and the peak VmHWM), then
//! evaluates one event per tenant and rule to show every tenant works. Targets: ≤ 10 s and
//! ≤ 512 MiB.
//!
//! Run: `cargo bench --locked -p tagbust-bench --bench scale` (`TAGBUST_BENCH_TENANTS=N` for
//! another tenant count).

use std::path::Path;
use std::time::Instant;

use tagbust::{
    BoundRule, Engine, EngineOptions, Operation, Outcome, RuleSet, TenantSetup, Tenants, WriteEvent,
};
use tagbust_tests::components;

/// Each rule, and a resource it triggers on.
const RULES: [(&str, &str); 3] = [
    (components::PUBLISHED_FEEDS, "posts"),
    (components::TABLE_PATTERNS, "deal_bookings"),
    (components::USER_SESSIONS, "users"),
];

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let tenants: usize = std::env::var("TAGBUST_BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let engine = Engine::new(EngineOptions::default()).expect("engine");
    let (rss_before, _) = memory();

    let start = Instant::now();
    let mut first = None;
    let mut setups = Tenants::default();
    for t in 0..tenants {
        let rules = RULES
            .iter()
            .map(|(path, _)| {
                let rule = engine.load_file(Path::new(path)).expect("rule loads");
                BoundRule::new(rule)
            })
            .collect();
        setups = setups.with_tenant(&format!("t{t}"), TenantSetup::new(RuleSet::new(rules)));
        // The first tenant compiles the three components; the others find them cached.
        first.get_or_insert_with(|| start.elapsed());
    }
    let load = start.elapsed();
    let (rss_loaded, hwm_loaded) = memory();

    let events: Vec<WriteEvent> = (0..tenants)
        .flat_map(|t| {
            RULES.iter().map(move |(_, resource)| {
                let mut e = WriteEvent::new(&format!("t{t}"), resource, Operation::Update);
                e.ids = vec![t.to_string()];
                e
            })
        })
        .collect();
    let start = Instant::now();
    let evaluation = setups.evaluate(&events);
    let eval = start.elapsed();
    let ok = evaluation
        .events
        .iter()
        .filter(|e| e.outcomes.len() == 1 && matches!(e.outcomes[0].result, Outcome::Ok { .. }))
        .count();
    assert_eq!(ok, events.len(), "every tenant's every rule answered");
    let (rss_after, hwm_after) = memory();

    println!(
        "tagbust scale benchmark: {tenants} tenants × {} rules loaded from files, {} distinct \
         component(s) compiled\n",
        RULES.len(),
        engine.compiled_count()
    );
    let first = first.unwrap_or_default();
    println!(
        "load                     {:>8.2} s   (first tenant, compiling: {:.0} ms; then {:.0} µs per rule)",
        load.as_secs_f64(),
        first.as_secs_f64() * 1e3,
        (load - first).as_secs_f64() * 1e6
            / (tenants.saturating_sub(1).max(1) * RULES.len()) as f64
    );
    println!("resident before loading  {rss_before:>8.1} MiB");
    println!(
        "resident after loading   {rss_loaded:>8.1} MiB   (+{:.1} MiB, {:.1} KiB per tenant; peak {hwm_loaded:.1} MiB)",
        rss_loaded - rss_before,
        (rss_loaded - rss_before) * 1024.0 / tenants as f64
    );
    println!(
        "one event per tenant and rule: {} events, all answered, in {:.2} s; resident {rss_after:.1} MiB (peak {hwm_after:.1} MiB)",
        events.len(),
        eval.as_secs_f64()
    );
}
