//! Shared helpers for tagbust's integration tests and benchmarks.
//!
//! The build script compiles every guest component from source; [`components`] holds their
//! paths (`components::PUBLISHED_FEEDS`, …, and `components::ALL`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tagbust::{Engine, EngineOptions, Operation, Rule, WriteEvent};

/// Paths of the built guest components.
pub mod bench;
pub mod daemon;
pub mod hooked;
pub mod peer;
pub mod postgres;

pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

/// One engine shared by every test in a binary, as in a real process, with the precompiled
/// artifact cache in [`artifact_dir`] (as the `tagbust` command has one): the Python rule
/// compiles once per build directory, not once per test binary.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineOptions {
            artifact_dir: Some(artifact_dir()),
            ..EngineOptions::default()
        })
        .expect("engine builds")
    })
}

/// `<target>/tagbust-artifacts`: the artifact cache the tests and benchmarks share.
pub fn artifact_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("test binaries live in <target>/<profile>/deps")
        .join("tagbust-artifacts")
}

/// An engine that meters fuel, shared like [`engine`], for the tests of fuel budgets.
pub fn fuel_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineOptions {
            fuel: true,
            ..EngineOptions::default()
        })
        .expect("fuel engine builds")
    })
}

/// Loads a built component with the shared engine.
pub fn load(path: &str) -> Rule {
    load_with(engine(), path)
}

/// Loads a built component with `engine`.
pub fn load_with(engine: &Engine, path: &str) -> Rule {
    engine
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
    echo_host_on(tagbust::MemoryBackend::new(), relationships, options)
}

/// [`echo_host`] on any backend.
pub fn echo_host_on<B: tagbust::Backend>(
    backend: B,
    relationships: tagbust::Relationships,
    options: tagbust::HostOptions,
) -> tagbust::Tagbust<B> {
    let echo = load(components::ECHO);
    let rules = tagbust::RuleSet::new(vec![tagbust::BoundRule::new(echo)]);
    let tenants =
        tagbust::Tenants::new(tagbust::TenantSetup::new(rules).with_relationships(relationships));
    tagbust::Tagbust::builder(std::sync::Arc::new(backend))
        .tenants(tenants)
        .options(options)
        .build()
        .expect("host builds")
}

/// A host where only the named tenants exist (no default setup, so confinement knows who
/// else there is), each running the `echo` rule.
pub fn named_echo_host<B: tagbust::Backend>(backend: B, names: &[&str]) -> tagbust::Tagbust<B> {
    let echo = load(components::ECHO);
    let setup =
        tagbust::TenantSetup::new(tagbust::RuleSet::new(vec![tagbust::BoundRule::new(echo)]));
    let tenants = names.iter().fold(tagbust::Tenants::default(), |t, name| {
        t.with_tenant(name, setup.clone())
    });
    tagbust::Tagbust::builder(std::sync::Arc::new(backend))
        .tenants(tenants)
        .build()
        .expect("host builds")
}

/// An event for the `echo` rule: it emits what `emit` says (see tests/guests/echo).
pub fn emit(tenant: &str, emit: &str) -> WriteEvent {
    let mut e = WriteEvent::new(tenant, "things", Operation::Update);
    e.context.insert("emit".into(), emit.into());
    e
}

/// Seed 002's event: task `task` of run `run` (context `run_id`) became `completed`.
pub fn completed_task(tenant: &str, task: &str, run: &str) -> WriteEvent {
    let mut e = WriteEvent::new(tenant, "tasks", Operation::Update);
    e.ids = vec![task.into()];
    e.context.insert("run_id".into(), run.into());
    e.changes.push(tagbust::FieldChange {
        field: "status".into(),
        old: Some("running".into()),
        new: Some("completed".into()),
    });
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

/// A private `redis-server` on a loopback port, for tests that kill connections or restart
/// the server. Persistence (AOF, fsync always) lives in its own directory, so a restarted
/// server comes back with its data. Killed on drop.
pub struct TestRedis {
    pub port: u16,
    dir: Scratch,
    child: Option<std::process::Child>,
}

impl TestRedis {
    pub fn start(name: &str, port: u16) -> TestRedis {
        let mut server = TestRedis {
            port,
            dir: Scratch::new(&format!("redis-{name}")),
            child: None,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("these tests start their own redis-server ({e}); .ci/run installs it")
            });
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("url");
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Stops the server abruptly (no save beyond the AOF it already wrote).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills every normal client connection of this server.
    pub fn kill_clients(&self) {
        kill_clients(&self.url());
    }
}

/// Kills every normal client connection of the Redis at `url` (not the one doing it).
pub fn kill_clients(url: &str) {
    let client = redis::Client::open(url).expect("url");
    if let Ok(mut conn) = client.get_connection() {
        let _: Result<i64, _> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query(&mut conn);
    }
}

impl TestRedis {
    /// A backend on this server with short timeouts and few retries, so a test can take the
    /// server away under it and see the host degrade quickly.
    pub async fn fast_failing_backend(&self) -> tagbust::backend::RedisBackend {
        tagbust::backend::RedisBackend::connect(
            &self.url(),
            tagbust::backend::RedisOptions {
                timeout: std::time::Duration::from_millis(300),
                attempts: 2,
                backoff: std::time::Duration::from_millis(10),
                ..tagbust::backend::RedisOptions::default()
            },
        )
        .await
        .expect("connect to the private redis-server")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The path of a built Python example component (`components::PY_TASK_CONTROLLERS`), or a
/// failure naming the script that builds it.
pub fn python_component(built: Option<&'static str>) -> &'static str {
    built.unwrap_or_else(|| {
        panic!(
            "the Python example rules are not built: install them with \
             scripts/build-python-rules.sh (it installs the pinned componentize-py with pip), \
             then rebuild the tests"
        )
    })
}

/// The Python twin of `task-controllers`, loaded once per test binary with the shared
/// engine: compiling it takes seconds, and tests running in parallel would each compile it.
pub fn python_task_controllers() -> Rule {
    static RULE: OnceLock<Rule> = OnceLock::new();
    RULE.get_or_init(|| load(python_component(components::PY_TASK_CONTROLLERS)))
        .clone()
}

/// A key prefix of its own (`<name>-<pid>`) on a shared Redis; its keys are removed on drop,
/// even when the test fails.
pub struct SharedRedis {
    url: String,
    prefix: String,
}

impl SharedRedis {
    pub fn new(url: &str, name: &str) -> SharedRedis {
        SharedRedis {
            url: url.to_owned(),
            prefix: format!("{name}-{}", std::process::id()),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A backend on this prefix.
    pub async fn connect(&self) -> tagbust::backend::RedisBackend {
        let options = tagbust::backend::RedisOptions {
            prefix: self.prefix.clone(),
            ..tagbust::backend::RedisOptions::default()
        };
        tagbust::backend::RedisBackend::connect(&self.url, options)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs Redis at {} ({e}); .ci/run starts one",
                    self.url
                )
            })
    }

    /// Every key under the prefix.
    pub fn keys(&self) -> Vec<String> {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return Vec::new();
        };
        let Ok(mut conn) = client.get_connection() else {
            return Vec::new();
        };
        redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default()
    }
}

impl Drop for SharedRedis {
    fn drop(&mut self) {
        let keys = self.keys();
        if keys.is_empty() {
            return;
        }
        if let Ok(client) = redis::Client::open(self.url.as_str())
            && let Ok(mut conn) = client.get_connection()
        {
            let _: Result<(), _> = redis::cmd("UNLINK").arg(&keys).query(&mut conn);
        }
    }
}
