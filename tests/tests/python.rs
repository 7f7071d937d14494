//! Python rules accepted like any rule: the Python twin of `task-controllers` (built from
//! `rules-examples-py/` by `scripts/build-python-rules.sh`) answers exactly as the Rust rule
//! does, `inspect` reports it, its memory need is measured through the host, per-rule limits
//! in a manifest give it what it needs, and a second load comes from the artifact cache.

use tagbust::{
    BoundRule, Engine, EngineOptions, Limits, LogLevel, Operation, Outcome, Rule, RuleConfig,
    RuleFailure, RuleSet, TargetKind, WriteEvent,
};
use tagbust_tests::{
    Scratch, artifact_dir, completed_task, components, engine, load, python_component,
    python_task_controllers,
};

fn controllers_config() -> RuleConfig {
    let json = serde_json::json!({
        "rules": {"build_climate": {"invalidates_cache": ["climate", "wepp"]},
                  "build_soils": {"invalidates_cache": ["soils"]}},
        "cache_keys": {"climate": "{run_id}:climate", "wepp": "{run_id}:wepp",
                       "soils": "{run_id}:soils"}
    });
    RuleConfig::from_json_object(json.as_object().expect("object"))
}

fn completed(tenant: &str, task: &str, run: &str, status: &str) -> WriteEvent {
    let mut e = completed_task(tenant, task, run);
    e.changes[0].new = Some(status.into());
    e
}

/// What a rule said about each event: its targets, or its failure code and message.
fn answers(rule: &Rule, config: RuleConfig, events: &[WriteEvent]) -> Vec<String> {
    let set = RuleSet::new(vec![BoundRule::new(rule.clone()).with_config(config)]);
    let evaluation = set.evaluate(events);
    evaluation
        .events
        .iter()
        .map(|e| match e.outcomes.first().map(|o| &o.result) {
            None => "not triggered".to_owned(),
            Some(Outcome::Ok { targets }) => {
                let t: Vec<String> = targets
                    .iter()
                    .map(|t| format!("{} {} {}", t.kind, t.value, t.strategy.as_str()))
                    .collect();
                t.join(", ")
            }
            Some(Outcome::Error { failure, message }) => format!("{}: {message}", failure.code()),
        })
        .collect()
}

#[test]
fn the_python_twin_answers_as_the_rust_rule_does() {
    let rust = load(components::TASK_CONTROLLERS);
    let python = python_task_controllers();
    assert_eq!(python.name(), rust.name());
    let mut bulk = completed("lab", "build_climate", "302", "completed");
    bulk.ids.push("build_soils".into());
    bulk.operation = Operation::BulkUpdate;
    let mut other = completed("lab", "build_climate", "300", "completed");
    other.resource = "runs".into();
    let events = vec![
        completed("lab", "build_climate", "300", "completed"),
        completed("lab", "build_soils", "301", "failed"),
        completed("lab", "export_report", "301", "completed"),
        bulk,
        other,
    ];
    let expected = answers(&rust, controllers_config(), &events);
    assert_eq!(
        expected[0],
        "key 300:climate immediate, key 300:wepp immediate"
    );
    assert_eq!(answers(&python, controllers_config(), &events), expected);

    // Without a table, and with a malformed one: the same config errors, word for word.
    let broken = RuleConfig::from_json_object(
        serde_json::json!({"rules": "{not json", "cache_keys": "{}"})
            .as_object()
            .expect("object"),
    );
    for config in [RuleConfig::default(), broken] {
        let event = [completed("lab", "build_climate", "300", "completed")];
        let want = answers(&rust, config.clone(), &event);
        assert!(want[0].starts_with("rule_error: "), "{want:?}");
        let got = answers(&python, config, &event);
        // The messages quote each language's own JSON parser after the colon.
        let head = |s: &str| s.split(": ").take(3).collect::<Vec<_>>().join(": ");
        assert_eq!(head(&got[0]), head(&want[0]), "{got:?} vs {want:?}");
    }
}

#[test]
fn a_missing_table_warns_and_fails_as_config() {
    let rule = python_task_controllers();
    let evaluation = RuleSet::new(vec![BoundRule::new(rule)]).evaluate(&[completed(
        "other",
        "build_climate",
        "300",
        "completed",
    )]);
    match &evaluation.events[0].outcomes[0].result {
        Outcome::Error {
            failure:
                RuleFailure::Rule {
                    kind: tagbust::RuleErrorKind::Config,
                    ..
                },
            ..
        } => {}
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(evaluation.events[0].plan.is_empty());
    assert_eq!(evaluation.runs[0].logs[0].level, LogLevel::Warn);
}

#[test]
fn inspect_reports_python_and_tolerates_componentize_py_exports() {
    let path = python_component(components::PY_TASK_CONTROLLERS);
    let bytes = std::fs::read(path).expect("read the component");
    let report = engine().inspect(path, &bytes);
    assert!(report.accepted, "{:?}", report.refusal);
    let sdk = report.sdk.as_ref().expect("stamped");
    assert_eq!(
        (sdk.language.as_str(), sdk.contract.as_str()),
        ("python", "0.1.0")
    );
    // componentize-py adds an export of its own beside the rule interface; the host's
    // contract check must not mistake it for a rule interface or refuse the component.
    let extra: Vec<&String> = report
        .exports
        .iter()
        .filter(|e| !e.starts_with("tagbust:rules/"))
        .collect();
    assert!(!extra.is_empty(), "exports: {:?}", report.exports);
    assert!(
        report
            .imports
            .iter()
            .all(|i| i.starts_with("tagbust:rules/")),
        "WASI stubbed out: {:?}",
        report.imports
    );
    assert_eq!(
        report.info.as_ref().map(|i| i.name.as_str()),
        Some("task-controllers")
    );
}

/// What a Python rule needs, measured through the host: the instance's peak linear memory.
#[test]
fn a_python_rule_needs_more_than_8_mib_and_fits_16() {
    let rule = python_task_controllers();
    let config = controllers_config();
    let batch: Vec<WriteEvent> = (0..256)
        .map(|i| completed("lab", "build_climate", &i.to_string(), "completed"))
        .collect();
    let batch = tagbust::Batch::new("lab", batch.iter()).expect("one tenant");
    let run = rule.evaluate(&batch, &config, &Limits::default());
    assert!(
        run.outcomes.iter().all(Result::is_ok),
        "{:?}",
        run.outcomes[0]
    );
    let mib = run.memory_bytes as f64 / f64::from(1 << 20);
    eprintln!("python rule, batch of 256: peak memory {mib:.1} MiB");
    assert!((8.0..=16.0).contains(&mib), "peak {mib:.1} MiB");

    let small = Limits {
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let run = rule.evaluate(&batch, &config, &small);
    assert!(
        matches!(run.outcomes[0], Err(RuleFailure::MemoryExceeded { .. })),
        "{:?}",
        run.outcomes[0]
    );
    let enough = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let run = rule.evaluate(&batch, &config, &enough);
    assert!(
        run.outcomes.iter().all(Result::is_ok),
        "{:?}",
        run.outcomes[0]
    );
    let rust = load(components::TASK_CONTROLLERS).evaluate(&batch, &config, &small);
    assert!(
        rust.outcomes.iter().all(Result::is_ok),
        "a Rust rule fits 8 MiB"
    );
    eprintln!(
        "rust rule, batch of 256: peak memory {:.1} MiB",
        rust.memory_bytes as f64 / f64::from(1 << 20)
    );
}

fn manifest(dir: &Scratch, rules: &str, limits: &str) -> std::path::PathBuf {
    let text = format!("tenant = \"lab\"\n[limits]\n{limits}\n{rules}");
    dir.file("lab.toml", text.as_bytes())
}

fn rule_entry(dir: &Scratch, name: &str, source: &str, extra: &str) -> String {
    let bytes = std::fs::read(source).expect("read component");
    dir.file(name, &bytes);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    format!("[[rule]]\npath = \"{name}\"\nsha256 = \"{sha}\"\n{extra}\n")
}

/// `[[rule]] memory_mib` / `deadline_ms` override the tenant's `[limits]` for that rule only.
#[test]
fn per_rule_limits_override_the_tenants() {
    let dir = Scratch::new("python-manifest");
    let python = python_component(components::PY_TASK_CONTROLLERS);
    let rules = rule_entry(
        &dir,
        "py.wasm",
        python,
        "memory_mib = 16\ndeadline_ms = 250",
    ) + &rule_entry(&dir, "rust.wasm", components::PUBLISHED_FEEDS, "");
    let path = manifest(&dir, &rules, "memory_mib = 4\ndeadline_ms = 50");
    let loaded = tagbust::tenant::manifest::load(engine(), &path).expect("manifest loads");
    let limits: Vec<(String, usize, u128)> = loaded
        .setup
        .rules
        .rules()
        .iter()
        .map(|b| {
            let l = &b.limits;
            (
                b.rule.name().to_owned(),
                l.memory_bytes >> 20,
                l.deadline.as_millis(),
            )
        })
        .collect();
    assert!(
        limits.contains(&("task-controllers".into(), 16, 250)),
        "{limits:?}"
    );
    assert!(
        limits.contains(&("published-feeds".into(), 4, 50)),
        "{limits:?}"
    );

    let events = [completed("lab", "build_climate", "300", "completed")];
    let mut setup_rules = loaded.setup.rules.rules().to_vec();
    for b in &mut setup_rules {
        b.config = controllers_config();
    }
    let plan = &RuleSet::new(setup_rules).evaluate(&events).events[0].plan;
    assert!(
        plan.iter().all(|p| p.kind == TargetKind::Key) && plan.len() == 2,
        "{plan:?}"
    );
}

#[test]
fn bad_per_rule_limits_are_refused_naming_the_field() {
    let dir = Scratch::new("python-manifest-bad");
    for (extra, limits, field, says) in [
        (
            "memory_mib = 0",
            "",
            "rule[0].memory_mib",
            "between 1 and 256",
        ),
        ("memory_mib = 4096", "", "rule[0].memory_mib", "got 4096"),
        ("deadline_ms = 0", "", "rule[0].deadline_ms", "at least 1"),
        (
            "memory_mib = \"lots\"",
            "",
            "rule[0].memory_mib",
            "expected u64",
        ),
        (
            "",
            "memory_mib = 0",
            "limits.memory_mib",
            "between 1 and 256",
        ),
    ] {
        let rules = rule_entry(&dir, "rust.wasm", components::PUBLISHED_FEEDS, extra);
        let path = manifest(&dir, &rules, limits);
        let err = match tagbust::tenant::manifest::load(engine(), &path) {
            Ok(_) => panic!("`{extra}` / `{limits}` was accepted"),
            Err(e) => e,
        };
        assert_eq!(err.field, field, "{err}");
        assert!(err.message.contains(says), "{err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }
}

/// The second engine on the same artifact directory loads the Python rule without compiling.
#[test]
fn a_second_load_comes_from_the_artifact_cache() {
    let _ = python_task_controllers(); // compiled (or read) and stored by the shared engine
    let path = python_component(components::PY_TASK_CONTROLLERS);
    let warm = Engine::new(EngineOptions {
        artifact_dir: Some(artifact_dir()),
        ..EngineOptions::default()
    })
    .expect("engine");
    let start = std::time::Instant::now();
    let rule = warm.load_file(path.as_ref()).expect("loads");
    eprintln!("python rule, warm load: {:?}", start.elapsed());
    let counts = warm.artifact_counts().expect("has a cache");
    assert_eq!((counts.hits, counts.compiled), (1, 0), "{counts:?}");
    let events = [completed("lab", "build_climate", "300", "completed")];
    assert_eq!(
        answers(&rule, controllers_config(), &events)[0],
        "key 300:climate immediate, key 300:wepp immediate"
    );
}
