//! `tagbust serve` with the rule author's tools: the Python rule end to end through the
//! daemon, and `--record` feeding `tagbust diff`.

use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tagbust_tests::daemon::Daemon;
use tagbust_tests::{Scratch, components, python_component, tagbust_bin};

const COMPLETED: &str = r#"{"tenant":"lab","resource":"tasks","operation":"update","ids":["build_climate"],"context":{"run_id":"301"},"changes":[{"field":"status","old":"running","new":"completed"}]}"#;

#[test]
fn the_python_rule_serves_end_to_end_through_the_daemon() {
    let component = python_component(components::PY_TASK_CONTROLLERS);
    let dir = Scratch::new("serve-python");
    let bytes = std::fs::read(component).expect("python component");
    dir.file("tc.wasm", &bytes);
    let manifest = format!(
        "tenant = \"lab\"\n[[rule]]\npath = \"tc.wasm\"\nsha256 = \"{}\"\nmemory_mib = 32\n\
         [rule.config]\nrules = '{{\"build_climate\": {{\"invalidates_cache\": [\"climate\", \"wepp\"]}}}}'\n\
         cache_keys = '{{\"climate\": \"{{run_id}}:climate\", \"wepp\": \"{{run_id}}:wepp\"}}'\n",
        hex::encode(Sha256::digest(&bytes))
    );
    let manifests = Scratch::new("serve-python-manifests");
    manifests.file(
        "lab.toml",
        manifest
            .replace("tc.wasm", &dir.0.join("tc.wasm").display().to_string())
            .as_bytes(),
    );
    let d = Daemon::start(&[
        "--listen",
        "127.0.0.1:0",
        "--manifests",
        &manifests.0.display().to_string(),
    ]);
    let r = d.post("/v1/events?wait=applied", None, COMPLETED.as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(
        (report["rule_failures"].as_u64(), report["targets"].as_u64()),
        (Some(0), Some(2)),
        "{report}"
    );
    let stats = d.get("/v1/stats", None).json();
    assert_eq!(stats["ops_applied"]["key"], 2, "{stats}");
    assert_eq!(stats["rules"]["task-controllers"]["events"], 1, "{stats}");
    assert_eq!(
        stats["tenants"]["lab"]["rules"][0]["name"],
        "task-controllers"
    );
}

#[test]
fn serve_records_a_sample_that_tagbust_diff_replays() {
    let dir = Scratch::new("serve-record");
    let recording = dir.0.join("events.jsonl");
    let d = Daemon::start(&[
        "--rules",
        components::ECHO,
        "--listen",
        "127.0.0.1:0",
        "--record",
        &recording.display().to_string(),
        "--sample-rate",
        "1",
    ]);
    for i in 0..3 {
        let event = format!(
            r#"{{"tenant":"acme","resource":"things","operation":"update","context":{{"emit":"key=k{i}"}}}}"#
        );
        assert_eq!(d.post("/v1/events", None, event.as_bytes()).status, 200);
    }
    // A refused request is not recorded.
    assert_eq!(d.post("/v1/events", None, b"{\"tenant\":").status, 400);
    let mut lines = 0;
    for _ in 0..50 {
        lines = std::fs::read_to_string(&recording)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lines, 3, "every accepted event sampled at rate 1");
    let out = Command::new(tagbust_bin())
        .args([
            "diff",
            "--old",
            components::ECHO,
            "--new",
            components::ECHO,
            "--events",
        ])
        .arg(&recording)
        .args(["--fail-on", "any"])
        .output()
        .expect("diff");
    assert!(
        out.status.success(),
        "the same rule changes nothing: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = Daemon::try_start(&[
        "--rules",
        components::ECHO,
        "--listen",
        "127.0.0.1:0",
        "--record",
        &recording.display().to_string(),
        "--sample-rate",
        "1.5",
    ])
    .err()
    .expect("refused");
    assert!(err.contains("--sample-rate"), "{err}");
}
