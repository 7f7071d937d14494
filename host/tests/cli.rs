//! `tagbust eval` on bad input: each refusal exits non-zero with a message naming the file
//! (and the field, where one is to blame). Tests needing built rule components live in the
//! `tagbust-tests` crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tagbust-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn eval(rules: &Path, event: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tagbust"))
        .arg("eval")
        .arg("--rules")
        .arg(rules)
        .arg("--event")
        .arg(event)
        .output()
        .expect("run tagbust")
}

fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout when refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GOOD_EVENT: &[u8] = br#"{"tenant":"acme","resource":"posts","operation":"update"}"#;

#[test]
fn truncated_json_names_the_file() {
    let s = Scratch::new("truncated");
    let rule = s.file("r.wasm", b"\0asm\x01\0\0\0");
    let event = s.file("ev.json", br#"{"tenant":"acme","resource":"po"#);
    let err = refused(&eval(&rule, &event));
    assert!(err.contains("ev.json: truncated JSON"), "{err}");
}

#[test]
fn unknown_operation_names_the_field() {
    let s = Scratch::new("operation");
    let rule = s.file("r.wasm", b"\0asm\x01\0\0\0");
    let event = s.file(
        "ev.json",
        br#"[{"tenant":"acme","resource":"posts","operation":"obliterate"}]"#,
    );
    let err = refused(&eval(&rule, &event));
    assert!(err.contains("ev.json: field `[0].operation`"), "{err}");
    assert!(err.contains("obliterate"), "{err}");
}

#[test]
fn missing_files_are_named() {
    let s = Scratch::new("missing");
    let event = s.file("ev.json", GOOD_EVENT);
    let err = refused(&eval(&s.0.join("nope.wasm"), &event));
    assert!(err.contains("nope.wasm"), "{err}");
    let rule = s.file("r.wasm", b"\0asm\x01\0\0\0");
    let err = refused(&eval(&rule, &s.0.join("absent.json")));
    assert!(err.contains("absent.json: cannot read"), "{err}");
}

#[test]
fn random_bytes_and_core_modules_are_not_components() {
    let s = Scratch::new("notwasm");
    let event = s.file("ev.json", GOOD_EVENT);
    let random = s.file("random.wasm", &[0x13; 512]);
    let err = refused(&eval(&random, &event));
    assert!(
        err.contains("random.wasm: not a WebAssembly component"),
        "{err}"
    );
    let core = s.file("core.wasm", b"\0asm\x01\0\0\0");
    let err = refused(&eval(&core, &event));
    assert!(
        err.contains("core.wasm: is a core WebAssembly module"),
        "{err}"
    );
}

#[test]
fn an_empty_rule_directory_is_refused() {
    let s = Scratch::new("emptydir");
    let event = s.file("ev.json", GOOD_EVENT);
    let rules = s.0.join("rules");
    std::fs::create_dir_all(&rules).expect("dir");
    let err = refused(&eval(&rules, &event));
    assert!(err.contains("no .wasm rule components"), "{err}");
}

#[test]
fn oversized_inputs_are_refused_before_they_are_read() {
    let s = Scratch::new("oversized");
    // A sparse 1 GiB event file and a sparse 1 GiB "component": refused by their size, so
    // the run ends at once and never holds them in memory.
    let giant = s.0.join("giant.json");
    std::fs::File::create(&giant)
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse file");
    let rule = s.file("r.wasm", b"\0asm\x01\0\0\0");
    let err = refused(&eval(&rule, &giant));
    assert!(
        err.contains("giant.json: 1073741824 bytes, more than the limit of 67108864 bytes"),
        "{err}"
    );
    let huge_rule = s.0.join("huge.wasm");
    std::fs::File::create(&huge_rule)
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse file");
    let event = s.file("ev.json", GOOD_EVENT);
    let err = refused(&eval(&huge_rule, &event));
    assert!(
        err.contains(
            "huge.wasm: 1073741824 bytes, more than the 67108864 bytes a rule component may have"
        ),
        "{err}"
    );
}
