//! The rule author's toolkit end to end: `tagbust test` (fixtures through the host, diffs,
//! JUnit, every bad input named by file and line) and `tagbust diff` (two versions over
//! recorded events, under-invalidation first, exit status for CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tagbust_tests::{Scratch, artifact_dir, components, python_component, tagbust_bin};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn tagbust(args: &[&str]) -> Output {
    Command::new(tagbust_bin())
        .arg("--cache-dir")
        .arg(artifact_dir())
        .args(args)
        .env("TAGBUST_LOG", "error")
        .output()
        .expect("run tagbust")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every example rule ships fixtures and passes them; the Python twin passes the Rust
/// rule's fixtures too. (CI runs the same through `.ci/run`.)
#[test]
fn every_example_rule_passes_its_fixtures() {
    let mut runs: Vec<(String, String)> = components::ALL
        .iter()
        .filter(|(name, _)| name.starts_with("rule-"))
        .map(|(name, path)| {
            let dir = repo(&format!("rules-examples/{}/fixtures", &name[5..]));
            assert!(
                dir.is_dir(),
                "{name} ships no fixtures in {}",
                dir.display()
            );
            (path.to_string(), dir.display().to_string())
        })
        .collect();
    let python = python_component(components::PY_TASK_CONTROLLERS);
    for dir in [
        "rules-examples/task-controllers/fixtures",
        "rules-examples-py/task-controllers/fixtures",
    ] {
        runs.push((python.to_owned(), repo(dir).display().to_string()));
    }
    for (component, fixtures) in runs {
        let out = tagbust(&["test", "--rules", &component, &fixtures]);
        let t = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{component} on {fixtures}:\n{t}"
        );
        assert!(t.contains(" passed, 0 failed"), "{t}");
    }
}

const EVENT: &str = r#"{ resource = "tasks", operation = "update", ids = ["build_climate"], context = { run_id = "300" }, changes = [{ field = "status", new = "completed" }] }"#;
const SETUP: &str = r#"[setup.task-controllers.config]
rules = { build_climate = { invalidates_cache = ["climate", "wepp"] } }
cache_keys = { climate = "{run_id}:climate", wepp = "{run_id}:wepp" }
"#;

fn fixture(dir: &Scratch, name: &str, body: &str) -> String {
    dir.file(name, body.as_bytes()).display().to_string()
}

#[test]
fn a_failing_case_prints_its_diff_and_exits_1() {
    let dir = Scratch::new("toolkit-fail");
    let file = fixture(
        &dir,
        "wrong.toml",
        &format!(
            "{SETUP}\n[[case]]\nname = \"passes\"\nevent = {EVENT}\nmatch = \"includes\"\nexpect = [{{ kind = \"key\", value = \"300:wepp\" }}]\n\n\
             [[case]]\nname = \"expects <soils> & not climate\"\nevent = {EVENT}\n\
             expect = [{{ kind = \"key\", value = \"300:soils\" }}, {{ kind = \"key\", value = \"300:wepp\", strategy = \"lazy\" }}]\n"
        ),
    );
    let out = tagbust(&["test", "--rules", components::TASK_CONTROLLERS, &file]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("ok    passes"), "{t}");
    assert!(t.contains("FAIL  expects <soils> & not climate"), "{t}");
    assert!(t.contains("- expected: key 300:soils"), "{t}");
    assert!(t.contains("- expected: key 300:wepp (lazy)"), "{t}");
    assert!(
        t.contains("+ not expected: key 300:climate (immediate) ← task-controllers"),
        "{t}"
    );
    assert!(t.contains("\n1 passed, 1 failed\n"), "{t}");

    let out = tagbust(&[
        "test",
        "--format",
        "junit",
        "--rules",
        components::TASK_CONTROLLERS,
        &file,
    ]);
    let xml = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"),
        "{xml}"
    );
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"expects &lt;soils&gt; &amp; not climate\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"- expected: key 300:soils\">"),
        "{xml}"
    );
    assert!(xml.contains("name=\"passes\" time="), "{xml}");
}

/// Each bad fixture is named by file, line and field; the good file beside it still runs,
/// and the exit status is 2.
#[test]
fn bad_fixtures_are_named_by_file_and_line() {
    let dir = Scratch::new("toolkit-bad");
    let case = |extra: &str| format!("{SETUP}\n[[case]]\nname = \"c\"\nevent = {EVENT}\n{extra}");
    let bad_event = r#"event = { resource = "tasks", operation = "updat" }"#;
    let json_rule = r#"{
  "case": [
    {"name": "j", "event": {"resource": "tasks", "operation": "update"},
     "failures": [{"rule": "nope", "code": "panic"}]}
  ]
}"#;
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "syntax.toml",
            format!("{SETUP}\n[[case]\nname = 1\n"),
            ":5:",
            "unclosed array table",
        ),
        (
            "missing-rule.toml",
            format!("[setup.task-controlers]\npriority = 1\n{}", case("")),
            ":1:",
            "no loaded rule is named `task-controlers` (loaded: task-controllers)",
        ),
        (
            "failure-rule.toml",
            case(r#"failures = [{ rule = "nope", code = "rule_error" }]"#),
            ":8:",
            "no loaded rule is named `nope`",
        ),
        (
            "bad-code.toml",
            case(r#"failures = [{ rule = "task-controllers", code = "rule_eror" }]"#),
            ":8:",
            "unknown failure code `rule_eror`",
        ),
        (
            "bad-event.toml",
            format!("{SETUP}\n[[case]]\nname = \"c\"\n{bad_event}\n"),
            ":7:",
            "event field `operation`: unknown variant `updat`",
        ),
        (
            "no-event.toml",
            format!("{SETUP}\n[[case]]\nname = \"lonely\"\nexpect = []\n"),
            ":5:",
            "case `lonely`: give `event` or `events`",
        ),
        (
            "unknown-key.toml",
            case("expected = []"),
            ":8:1:",
            "unknown field `expected`",
        ),
        (
            "bad.json",
            json_rule.to_owned(),
            ":4:",
            "no loaded rule is named `nope`",
        ),
        (
            "bad-syntax.json",
            "{\"case\": [\n{\"name\": \"j\",, }]}".to_owned(),
            ":2:14:",
            "field `case[0]`: key must be a string",
        ),
        ("empty.toml", SETUP.to_owned(), "", "missing field `case`"),
    ];
    for (name, body, at, says) in &cases {
        let file = fixture(&dir, name, body);
        let out = tagbust(&["test", "--rules", components::TASK_CONTROLLERS, &file]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {t}");
        assert!(
            t.contains(&format!("ERROR {file}{at}")),
            "{name}: wants {file}{at}\n{t}"
        );
        assert!(t.contains(says), "{name}: wants {says}\n{t}");
    }
    let good = fixture(
        &dir,
        "good.toml",
        &case(
            "expect = [{ kind = \"key\", value = \"300:climate\" }, { kind = \"key\", value = \"300:wepp\" }]",
        ),
    );
    let bad = dir.0.join("syntax.toml").display().to_string();
    let out = tagbust(&["test", "--rules", components::TASK_CONTROLLERS, &good, &bad]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("ok    c") && t.contains("1 passed, 1 failed"),
        "{t}"
    );

    // A missing fixture, or rules that are not components: errors before any case runs.
    let out = tagbust(&[
        "test",
        "--rules",
        components::TASK_CONTROLLERS,
        "no/such.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no/such.toml: cannot read fixture path"),
        "{}",
        text(&out)
    );
}

fn events(dir: &Scratch, lines: &[&str]) -> String {
    dir.file("recorded.jsonl", lines.join("\n").as_bytes())
        .display()
        .to_string()
}

fn completed(task: &str, run: &str, emit: &str) -> String {
    format!(
        r#"{{"tenant":"lab","resource":"tasks","operation":"update","ids":["{task}"],"context":{{"run_id":"{run}","emit":"{emit}"}},"changes":[{{"field":"status","new":"completed"}}]}}"#
    )
}

#[test]
fn diff_lists_under_invalidation_first_and_fails_on_it() {
    let dir = Scratch::new("toolkit-diff");
    let config = dir.file(
        "table.json",
        br#"{"rules":{"build_climate":{"invalidates_cache":["climate","wepp"]}},"cache_keys":{"climate":"{run_id}:climate","wepp":"{run_id}:wepp"}}"#,
    );
    let config = format!("task-controllers={}", config.display());
    let (a, b, c) = (
        completed("export_report", "1", "tag=report:1"),
        completed("build_climate", "300", "key=300:climate@lazy tag=extra"),
        completed("build_climate", "301", "key=301:climate key=301:wepp"),
    );
    let recorded = events(&dir, &[&a, "", &b, &c]);
    let args = |new: &str, extra: &[&str]| -> Output {
        let mut v = vec![
            "diff",
            "--old",
            components::TASK_CONTROLLERS,
            "--new",
            new,
            "--events",
            &recorded,
            "--config",
            &config,
        ];
        v.extend_from_slice(extra);
        tagbust(&v)
    };

    // The Python twin changes nothing on these events.
    let python = python_component(components::PY_TASK_CONTROLLERS);
    let out = args(python, &["--fail-on", "any"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("3 events, 0 differ; 0 under-invalidate"),
        "{}",
        text(&out)
    );

    // `echo` emits what each event says: it drops 300:wepp, delays 300:climate, adds tags.
    let out = args(components::ECHO, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "no --fail-on: {t}");
    let under = t.find(&format!("{recorded}:3")).expect("line 3 listed");
    let added_only = t.find(&format!("{recorded}:1")).expect("line 1 listed");
    assert!(under < added_only, "under-invalidation first:\n{t}");
    assert!(
        t.contains("  - key 300:wepp (immediate)   UNDER-INVALIDATES"),
        "{t}"
    );
    assert!(t.contains("  ~ key 300:climate (immediate → lazy)"), "{t}");
    assert!(t.contains("  + tag report:1 (immediate)"), "{t}");
    assert!(
        !t.contains(&format!("{recorded}:4")),
        "line 4 is the same in both:\n{t}"
    );
    assert!(t.contains("3 events, 2 differ; 1 under-invalidate. targets: 1 removed, 2 added, 1 changed strategy"), "{t}");
    assert_eq!(
        args(components::ECHO, &["--fail-on", "removed"])
            .status
            .code(),
        Some(1)
    );

    let out = args(components::ECHO, &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["total"]["under_invalidating"], 1);
    assert_eq!(json["events"][0]["at"], format!("{recorded}:3"));
    assert_eq!(json["events"][0]["removed"][0]["value"], "300:wepp");

    // Only additions: --fail-on removed passes, --fail-on any does not.
    let recorded = events(&dir, &[&a]);
    let only = |fail_on: &str| {
        tagbust(&[
            "diff",
            "--old",
            components::TASK_CONTROLLERS,
            "--new",
            components::ECHO,
            "--events",
            &recorded,
            "--config",
            &config,
            "--fail-on",
            fail_on,
        ])
    };
    assert_eq!(only("removed").status.code(), Some(0));
    assert_eq!(only("any").status.code(), Some(1));
}

/// `echo` against itself over `recorded`.
fn echo_diff(recorded: &str, extra: &[&str]) -> Output {
    let echo = components::ECHO;
    let mut args = vec!["diff", "--old", echo, "--new", echo, "--events", recorded];
    args.extend_from_slice(extra);
    tagbust(&args)
}

#[test]
fn diff_names_a_bad_line_and_an_unknown_config() {
    let dir = Scratch::new("toolkit-diff-bad");
    let good = completed("build_climate", "300", "");
    for (lines, says) in [
        (
            vec![
                good.as_str(),
                "",
                "{\"tenant\":\"lab\",\"resource\":\"tasks\"",
            ],
            ":3: truncated JSON",
        ),
        (
            vec![
                good.as_str(),
                "{\"tenant\":\"lab\",\"resource\":\"tasks\",\"operation\":\"updat\"}",
            ],
            ":2: field `operation`",
        ),
        (vec!["[1]"], ":1: expected one JSON object"),
        (vec!["", "  "], ": no events"),
    ] {
        let recorded = events(&dir, &lines);
        let out = echo_diff(&recorded, &[]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{t}");
        assert!(
            t.contains(&format!("{recorded}{says}")),
            "wants {says}:\n{t}"
        );
    }
    let recorded = events(&dir, &[&good]);
    let out = echo_diff(&recorded, &["--config", "nope=x.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--config names rule `nope`"),
        "{}",
        text(&out)
    );
}
