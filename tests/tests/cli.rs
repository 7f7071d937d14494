//! `tagbust eval` end to end with real rule components.

use std::process::Command;

use tagbust_tests::{Scratch, components, tagbust_bin};

fn example_event() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events/writes.json")
}

#[test]
fn eval_prints_outcomes_and_an_ordered_plan() {
    let out = Command::new(tagbust_bin())
        .args([
            "eval",
            "--rules",
            components::PUBLISHED_FEEDS,
            components::MISBEHAVE,
        ])
        .arg("--event")
        .arg(example_event())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let first = &json["events"][0];
    assert_eq!(first["outcomes"][0]["rule"], "published-feeds");
    assert_eq!(first["outcomes"][0]["status"], "ok");
    let plan = first["plan"].as_array().expect("plan");
    assert_eq!(plan[0]["kind"], "key");
    assert_eq!(plan[0]["value"], "post:7");
    assert_eq!(plan[0]["priority"], 10);
    assert_eq!(plan[0]["rule"], "published-feeds");
    assert_eq!(plan[1]["value"], "feed:home");
    assert_eq!(plan[1]["strategy"], "immediate");
}

#[test]
fn a_failing_rule_still_exits_zero_with_the_failure_in_the_output() {
    let dir = Scratch::new("cli-panic");
    let event = dir.file(
        "panic.json",
        br#"{"tenant":"t","resource":"panic","operation":"create"}"#,
    );
    let out = Command::new(tagbust_bin())
        .args(["eval", "--format", "text", "--rules", components::MISBEHAVE])
        .arg("--event")
        .arg(&event)
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED: rule panicked"), "{text}");
    assert!(text.contains("rule exploded on purpose"), "{text}");
}

#[test]
fn wrong_contract_exits_non_zero_naming_file_and_version() {
    let out = Command::new(tagbust_bin())
        .args(["eval", "--rules", components::WRONG_CONTRACT])
        .arg("--event")
        .arg(example_event())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong_contract.wasm"), "{err}");
    assert!(err.contains("tagbust:rules@0.9.0"), "{err}");
}

#[test]
fn per_tenant_config_reaches_only_that_tenant() {
    let dir = Scratch::new("cli-config");
    let config = dir.file(
        "lab.json",
        br#"{"rules":{"build_climate":{"invalidates_cache":["climate"]}},"cache_keys":{"climate":"{run_id}:climate"}}"#,
    );
    let one = |tenant: &str| {
        format!(
            r#"{{"tenant":"{tenant}","resource":"tasks","operation":"update","ids":["build_climate"],"changes":[{{"field":"status","old":"running","new":"completed"}}],"context":{{"run_id":"300"}}}}"#
        )
    };
    let events = dir.file(
        "events.json",
        format!("[{},{}]", one("lab"), one("other")).as_bytes(),
    );
    let out = Command::new(tagbust_bin())
        .args(["eval", "--rules", components::TASK_CONTROLLERS])
        .arg("--config")
        .arg(format!("task-controllers@lab={}", config.display()))
        .arg("--event")
        .arg(&events)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["events"][0]["plan"][0]["value"], "300:climate");
    assert_eq!(json["events"][1]["outcomes"][0]["status"], "error");
    assert_eq!(
        json["events"][1]["outcomes"][0]["failure"]["kind"],
        "config"
    );
}

#[test]
fn demo_runs_the_scenario_on_the_in_memory_cache() {
    let out = Command::new(tagbust_bin())
        .args(["demo", "--rules"])
        .args([
            components::PUBLISHED_FEEDS,
            components::TABLE_PATTERNS,
            components::TASK_CONTROLLERS,
            components::USER_SESSIONS,
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "removed home, home:rendered",
        "Tag session:42 (cascade from user:42)",
        "for 100 event(s)",
        "now: hedge_positions:currency:USD:entity:E1 cached",
        "rollback tx-10: 2 held operation(s) dropped",
        "now: 300:climate gone · 300:wepp gone · 300:soils cached",
        "coalescing 100.0×",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn demo_refuses_without_the_example_rules() {
    let out = Command::new(tagbust_bin())
        .args(["demo", "--rules", components::PUBLISHED_FEEDS])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the example rule"));
}

#[test]
fn eval_explain_shows_cascades_and_when_they_apply() {
    let dir = Scratch::new("cli-explain");
    let event = dir.file(
        "user.json",
        br#"{"tenant":"t","resource":"users","operation":"update","ids":["4"],"transaction":"tx-1"}"#,
    );
    let out = Command::new(tagbust_bin())
        .args(["eval", "--explain", "--relate", "user=session", "--rules"])
        .arg(components::USER_SESSIONS)
        .arg("--event")
        .arg(&event)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let explain = json["explain"].as_array().expect("explain");
    assert_eq!(explain[1]["op"]["value"], "session:4");
    assert_eq!(explain[1]["cascaded_from"], "user:4");
    assert_eq!(explain[1]["rule"], "user-sessions");
    assert_eq!(explain[1]["when"], "at commit of tx-1");
}

fn demo_rules() -> [&'static str; 4] {
    [
        components::PUBLISHED_FEEDS,
        components::TABLE_PATTERNS,
        components::TASK_CONTROLLERS,
        components::USER_SESSIONS,
    ]
}

#[test]
fn demo_runs_against_redis_and_leaves_its_entries() {
    // Database 13 is this test's; its `tb:` keys are removed afterwards.
    let url = "redis://127.0.0.1:6379/13";
    let out = Command::new(tagbust_bin())
        .args(["demo", "--redis", url, "--rules"])
        .args(demo_rules())
        .output()
        .expect("run");
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_connection()
        .expect("a Redis server on loopback (see .ci/run)");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("tb:*")
        .query(&mut conn)
        .expect("keys");
    if !keys.is_empty() {
        let () = redis::cmd("UNLINK")
            .arg(&keys)
            .query(&mut conn)
            .expect("unlink");
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Redis at redis://127.0.0.1:6379/13"),
        "{text}"
    );
    assert!(text.contains("removed home, home:rendered"), "{text}");
    assert!(text.contains("coalescing 100.0×"), "{text}");
    assert!(
        keys.iter().any(|k| k.starts_with("tb:{acme}:e:")),
        "{keys:?}"
    );
}

#[test]
fn demo_against_an_unreachable_redis_names_the_url() {
    let out = Command::new(tagbust_bin())
        .args(["demo", "--redis", "redis://127.0.0.1:1/0", "--rules"])
        .args(demo_rules())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis://127.0.0.1:1/0"), "{err}");
}

fn inspect(path: &std::path::Path, format: &str) -> std::process::Output {
    Command::new(tagbust_bin())
        .args(["inspect", "--format", format])
        .arg(path)
        .output()
        .expect("run")
}

#[test]
fn inspect_reports_an_accepted_rule() {
    let path = std::path::Path::new(components::PUBLISHED_FEEDS);
    let out = inspect(path, "json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rule = tagbust_tests::load(components::PUBLISHED_FEEDS);
    assert_eq!(json["accepted"], true);
    assert_eq!(json["sha256"], rule.sha256_hex());
    assert_eq!(json["size"], std::fs::metadata(path).expect("stat").len());
    assert_eq!(json["sdk"]["sdk"], "0.1.0");
    assert_eq!(json["contract"], "0.2.0");
    assert_eq!(json["info"]["name"], "published-feeds");
    assert_eq!(json["info"]["resources"][0], "posts");
    let imports: Vec<&str> = json["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("tagbust:rules/types@")),
        "{imports:?}"
    );
    let text = inspect(path, "text");
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("verdict    accepted"), "{text}");
    assert!(text.contains("describe   published-feeds 1.0.0"), "{text}");
}

/// Inspecting `path` must print a report, exit 1 and give a reason containing `reason`.
fn refused(path: &std::path::Path, reason: &str) -> serde_json::Value {
    let out = inspect(path, "json");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(reason), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["accepted"], false);
    assert!(
        json["refusal"].as_str().is_some_and(|r| r.contains(reason)),
        "{json}"
    );
    json
}

#[test]
fn inspect_refuses_what_the_host_would_refuse() {
    let json = refused(
        std::path::Path::new(components::WRONG_CONTRACT),
        "tagbust:rules@0.9.0",
    );
    assert_eq!(json["contract"], "0.9.0");
    refused(
        std::path::Path::new(components::MISSING_EXPORT),
        "does not export",
    );
    let dir = Scratch::new("cli-inspect");
    let core = refused(
        &dir.file("core.wasm", b"\0asm\x01\0\0\0"),
        "core WebAssembly module",
    );
    assert!(core["sdk"].is_null() && core["info"].is_null());
    refused(
        &dir.file("notes.wasm", b"hello"),
        "not a WebAssembly component",
    );
    let out = inspect(&dir.0.join("absent.wasm"), "text");
    assert_eq!(
        out.status.code(),
        Some(2),
        "unreadable is an error, not a verdict"
    );
}
