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
