//! The precompiled-artifact cache (`host/src/sandbox/artifacts.rs`): a second engine on the
//! same directory loads without compiling, and nothing the host did not write itself — a
//! flipped byte, a truncated file, a file from another cache, an artifact renamed to another
//! component — is ever deserialized. A directory open to other users is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tagbust::{
    ArtifactCounts, BoundRule, Engine, EngineError, EngineOptions, Operation, RuleSet, WriteEvent,
};
use tagbust_tests::{Scratch, components};

fn engine_at(dir: &Path) -> Engine {
    Engine::new(EngineOptions {
        artifact_dir: Some(dir.to_owned()),
        ..EngineOptions::default()
    })
    .expect("engine with an artifact cache")
}

/// Loads `component` with a fresh engine on `dir`; returns what the cache did and the keys
/// the rule plans for a published post.
fn load_once(dir: &Path, component: &str) -> (ArtifactCounts, Vec<String>) {
    let engine = engine_at(dir);
    let rule = engine.load_file(component.as_ref()).expect("loads");
    let mut event = WriteEvent::new("acme", "posts", Operation::Update);
    event.ids.push("7".into());
    let plan = RuleSet::new(vec![BoundRule::new(rule)]).evaluate(&[event]);
    let values = plan.events[0]
        .plan
        .iter()
        .map(|p| p.value.clone())
        .collect();
    (engine.artifact_counts().expect("has a cache"), values)
}

fn counts(hits: u64, compiled: u64, rejected: u64) -> ArtifactCounts {
    ArtifactCounts {
        hits,
        compiled,
        rejected,
        write_errors: 0,
    }
}

fn artifact_of(dir: &Path, component: &str) -> PathBuf {
    let sha: [u8; 32] = Sha256::digest(std::fs::read(component).expect("read")).into();
    engine_at(dir).artifact_path(&sha).expect("has a cache")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn a_second_engine_loads_without_compiling() {
    let scratch = Scratch::new("artifacts-warm");
    let dir = scratch.0.join("cache");
    let (cold, want) = load_once(&dir, components::PUBLISHED_FEEDS);
    assert_eq!(cold, counts(0, 1, 0));
    let (warm, got) = load_once(&dir, components::PUBLISHED_FEEDS);
    assert_eq!(warm, counts(1, 0, 0));
    assert_eq!(
        got, want,
        "the deserialized rule answers as the compiled one"
    );
    assert_eq!(got, vec!["post:7"]);
    let artifact = artifact_of(&dir, components::PUBLISHED_FEEDS);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("key")), 0o600);
    assert_eq!(mode(&artifact), 0o600);
}

#[test]
fn a_changed_artifact_is_rejected_and_rewritten() {
    let scratch = Scratch::new("artifacts-tampered");
    let dir = scratch.0.join("cache");
    load_once(&dir, components::PUBLISHED_FEEDS);
    let artifact = artifact_of(&dir, components::PUBLISHED_FEEDS);
    let good = std::fs::read(&artifact).expect("read artifact");

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    for bad in [flipped, good[..good.len() / 2].to_vec(), b"TBART1".to_vec()] {
        std::fs::write(&artifact, &bad).expect("tamper");
        let (c, plan) = load_once(&dir, components::PUBLISHED_FEEDS);
        assert_eq!(c, counts(0, 1, 1), "rejected, compiled again");
        assert_eq!(plan, vec!["post:7"]);
        assert_eq!(
            std::fs::read(&artifact).expect("rewritten").len(),
            good.len()
        );
        assert_eq!(
            load_once(&dir, components::PUBLISHED_FEEDS).0,
            counts(1, 0, 0)
        );
    }
}

#[test]
fn an_artifact_from_another_cache_or_renamed_is_rejected() {
    let scratch = Scratch::new("artifacts-foreign");
    let (ours, theirs) = (scratch.0.join("ours"), scratch.0.join("theirs"));
    load_once(&theirs, components::PUBLISHED_FEEDS);
    load_once(&ours, components::TABLE_PATTERNS);
    // Same engine, same component, valid wasmtime bytes: but another directory's key.
    let foreign = artifact_of(&theirs, components::PUBLISHED_FEEDS);
    let ours_feeds = artifact_of(&ours, components::PUBLISHED_FEEDS);
    std::fs::copy(&foreign, &ours_feeds).expect("copy in");
    assert_eq!(
        load_once(&ours, components::PUBLISHED_FEEDS).0,
        counts(0, 1, 1)
    );

    // Our own valid artifact of table-patterns, renamed to be published-feeds'.
    let patterns = artifact_of(&ours, components::TABLE_PATTERNS);
    std::fs::copy(&patterns, &ours_feeds).expect("rename");
    let (c, plan) = load_once(&ours, components::PUBLISHED_FEEDS);
    assert_eq!(c, counts(0, 1, 1));
    assert_eq!(plan, vec!["post:7"], "published-feeds, not table-patterns");
}

#[test]
fn a_directory_open_to_others_or_a_bad_key_is_refused() {
    let scratch = Scratch::new("artifacts-open");
    let dir = scratch.0.join("cache");
    load_once(&dir, components::PUBLISHED_FEEDS);
    let refusal = |dir: &Path| match Engine::new(EngineOptions {
        artifact_dir: Some(dir.to_owned()),
        ..EngineOptions::default()
    }) {
        Err(EngineError::Artifacts { dir: named, detail }) => (named, detail),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("{} was accepted", dir.display()),
    };

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (named, detail) = refusal(&dir);
    assert_eq!(named, dir.display().to_string());
    assert!(
        detail.contains("open to other users (mode 755)"),
        "{detail}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");

    let key = dir.join("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(refusal(&dir).1.contains("key file is open"));
    std::fs::write(&key, b"short").expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(refusal(&dir).1.contains("this file has 5"));

    let file = scratch.file("not-a-dir", b"x");
    assert!(refusal(&file).1.contains("cannot create"));
}
