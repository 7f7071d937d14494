//! Shared helpers for tagbust's integration tests and benchmarks.
//!
//! The build script compiles every guest component from source; [`components`] holds their
//! paths (`components::PUBLISHED_FEEDS`, …, and `components::ALL`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tagbust::{Engine, EngineOptions, Operation, Rule, WriteEvent};

/// Paths of the built guest components.
pub mod bench;

pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

/// One engine shared by every test in a binary, as in a real process.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineOptions::default()).expect("engine builds"))
}

/// Loads a built component with the shared engine.
pub fn load(path: &str) -> Rule {
    engine()
        .load_file(Path::new(path))
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

/// An event for tests.
pub fn event(tenant: &str, resource: &str, operation: Operation) -> WriteEvent {
    WriteEvent::new(tenant, resource, operation)
}

/// The `tagbust` binary of this build (built because the `tagbust` package has integration
/// tests; run the suite with `cargo test --workspace`).
pub fn tagbust_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps");
    let bin = dir.join(format!("tagbust{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` so the binary is built",
        bin.display()
    );
    bin
}

/// A host whose every tenant runs the `echo` test rule with `relationships`, on a fresh
/// in-memory backend.
pub fn echo_host(
    relationships: tagbust::Relationships,
    options: tagbust::HostOptions,
) -> tagbust::Tagbust<tagbust::MemoryBackend> {
    let echo = load(components::ECHO);
    let rules = tagbust::RuleSet::new(vec![tagbust::BoundRule::new(echo)]);
    let tenants =
        tagbust::Tenants::new(tagbust::TenantSetup::new(rules).with_relationships(relationships));
    tagbust::Tagbust::builder(std::sync::Arc::new(tagbust::MemoryBackend::new()))
        .tenants(tenants)
        .options(options)
        .build()
}

/// An event for the `echo` rule: it emits what `emit` says (see tests/guests/echo).
pub fn emit(tenant: &str, emit: &str) -> WriteEvent {
    let mut e = WriteEvent::new(tenant, "things", Operation::Update);
    e.context.insert("emit".into(), emit.into());
    e
}

/// An entry with tags and no TTL.
pub fn entry(tenant: &str, key: &str, tags: &[&str]) -> tagbust::NewEntry {
    tagbust::NewEntry {
        tenant: tenant.into(),
        key: key.into(),
        value: format!("value of {key}").into_bytes(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ttl: None,
        depends_on: Vec::new(),
    }
}

/// A temporary directory for one test, removed when dropped (even when the test fails).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tagbust-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Writes `bytes` to `name` inside the directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}
