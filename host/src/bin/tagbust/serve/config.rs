//! `tagbust serve`'s configuration: one TOML file (`--config`), every key also a flag and an
//! environment variable (`TAGBUST_…`); flags and variables win over the file. Unknown keys
//! and invalid values are refused at start, naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use tagbust::backend::{MAX_LISTED_KEYS, RedisOptions};

/// Flags of `tagbust serve` (each also read from the environment variable named).
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// The configuration file (TOML); every key below may also be set there.
    #[arg(long, env = "TAGBUST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on. Default 127.0.0.1:7878.
    #[arg(long, env = "TAGBUST_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Rule components (.wasm) or directories of them, given to every tenant (quick start).
    #[arg(long, num_args = 1.., env = "TAGBUST_RULES", value_delimiter = ',')]
    pub rules: Vec<PathBuf>,
    /// A directory of tenant manifests (`*.toml`); only those tenants exist.
    #[arg(long, env = "TAGBUST_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    /// A file holding the admin token (reload, clear, stats).
    #[arg(long, env = "TAGBUST_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Listen beyond loopback even though no token is configured.
    #[arg(long, env = "TAGBUST_INSECURE")]
    pub insecure: bool,
    /// The backend: `memory` (default), `redis` or `cluster`.
    #[arg(long, env = "TAGBUST_BACKEND")]
    pub backend: Option<String>,
    /// Redis URL (`redis://HOST:PORT/DB`), or the Cluster's node URLs, comma-separated.
    #[arg(long, env = "TAGBUST_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every backend key. Default `tb`.
    #[arg(long, env = "TAGBUST_BACKEND_PREFIX")]
    pub backend_prefix: Option<String>,
    /// Removed keys listed per operation for explain (0–64; counts stay exact either way,
    /// and 0 spares Redis one existence check per listed key). Default 64.
    #[arg(long, env = "TAGBUST_BACKEND_LISTED_KEYS")]
    pub backend_listed_keys: Option<usize>,
    /// Entries one Redis script call may remove (a write call takes a quarter): what bounds
    /// how long one call blocks Redis. Default 256.
    #[arg(long, env = "TAGBUST_BACKEND_ENTRIES_PER_CALL")]
    pub backend_entries_per_call: Option<usize>,
    /// Pending operations past which submissions are refused (backpressure). Default 100,000.
    #[arg(long, env = "TAGBUST_MAX_PENDING_OPS")]
    pub max_pending_ops: Option<usize>,
    /// How long a transaction may stay open before it is applied anyway, in ms. Default 30,000.
    #[arg(long, env = "TAGBUST_TRANSACTION_TIMEOUT_MS")]
    pub transaction_timeout_ms: Option<u64>,
    /// Largest request body, in bytes. Default 64 MiB.
    #[arg(long, env = "TAGBUST_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Batch window in milliseconds (10–5000). Default 100.
    #[arg(long, env = "TAGBUST_BATCH_WINDOW_MS")]
    pub batch_window_ms: Option<u64>,
    /// Label metrics by tenant (one series per tenant). Default off.
    #[arg(long, env = "TAGBUST_PER_TENANT_METRICS")]
    pub per_tenant_metrics: bool,
    /// This process's consumer name in every stream's group (keep it stable across
    /// restarts: a restarted consumer re-reads its own pending entries). Default: the host
    /// name.
    #[arg(long, env = "TAGBUST_CONSUMER")]
    pub consumer: Option<String>,
    /// Record a sample of the accepted events to this JSONL file (for `tagbust diff`).
    #[arg(long, env = "TAGBUST_RECORD")]
    pub record: Option<PathBuf>,
    /// Fraction of events recorded, in (0, 1]. Default 0.01.
    #[arg(long, env = "TAGBUST_SAMPLE_RATE", requires = "record")]
    pub sample_rate: Option<f64>,
    /// Size past which the recording rotates to PATH.1. Default 64 MiB.
    #[arg(long, env = "TAGBUST_RECORD_MAX_BYTES", requires = "record")]
    pub record_max_bytes: Option<u64>,
}

/// The file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    #[serde(default)]
    rules: Vec<PathBuf>,
    manifests: Option<PathBuf>,
    admin_token_file: Option<PathBuf>,
    #[serde(default)]
    insecure: bool,
    max_body_bytes: Option<usize>,
    #[serde(default)]
    per_tenant_metrics: bool,
    #[serde(default)]
    backend: BackendFile,
    #[serde(default)]
    host: HostFile,
    #[serde(default)]
    source: SourceFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    #[serde(default)]
    redis_stream: Vec<StreamFile>,
    #[serde(default)]
    postgres: Vec<super::postgres::PgFile>,
}

/// One `[[source.redis_stream]]`: keys named after `StreamConfig`'s fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamFile {
    url: String,
    stream: String,
    group: String,
    consumer: Option<String>,
    batch: Option<usize>,
    block_ms: Option<u64>,
    claim_idle_ms: Option<u64>,
    max_deliveries: Option<u64>,
    dead_letter: Option<String>,
    max_entry_bytes: Option<usize>,
    max_in_flight: Option<usize>,
    drain_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendFile {
    kind: Option<String>,
    url: Option<String>,
    prefix: Option<String>,
    listed_keys: Option<usize>,
    entries_per_call: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    batch_window_ms: Option<u64>,
    max_pending_ops: Option<usize>,
    transaction_timeout_ms: Option<u64>,
}

/// Which cache the daemon applies to, with its settings.
#[derive(Debug, Clone)]
pub enum BackendKind {
    Memory,
    Redis {
        url: String,
        options: RedisOptions,
    },
    Cluster {
        nodes: Vec<String>,
        options: RedisOptions,
    },
}

/// The configuration in force, after file, environment and flags.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub rules: Vec<PathBuf>,
    pub manifests: Option<PathBuf>,
    /// The admin token itself (read from its file); compared by hash, never logged.
    pub admin_token: Option<String>,
    pub insecure: bool,
    pub max_body_bytes: usize,
    pub per_tenant_metrics: bool,
    pub backend: BackendKind,
    pub batch_window: Duration,
    pub max_pending_ops: Option<usize>,
    pub transaction_timeout: Option<Duration>,
    pub streams: Vec<tagbust::sources::streams::StreamConfig>,
    pub postgres: Vec<super::postgres::PgSource>,
    /// Where to record a sample of accepted events, at what rate, up to what size.
    pub record: Option<(PathBuf, f64, u64)>,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

impl Config {
    /// Reads the file (if any) and applies the flags over it. Every refusal names the key.
    pub fn load(args: ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let rules = if args.rules.is_empty() {
            file.rules
        } else {
            args.rules
        };
        let manifests = args.manifests.or(file.manifests);
        if rules.is_empty() && manifests.is_none() {
            bail!(
                "no tenants: give `rules` (every tenant gets them) or `manifests` (a directory of tenant manifests)"
            );
        }
        if !rules.is_empty() && manifests.is_some() {
            bail!("`rules` and `manifests` are exclusive: manifests name each tenant's rules");
        }
        // The admin token itself may come from the environment (a secret store injects it),
        // else from a file; never from a flag, where `ps` would show it.
        let admin_token = match std::env::var("TAGBUST_ADMIN_TOKEN") {
            Ok(token) => Some(check_token(token.trim().to_owned(), "TAGBUST_ADMIN_TOKEN")?),
            Err(_) => match args.admin_token_file.or(file.admin_token_file) {
                Some(path) => Some(read_token(&path)?),
                None => None,
            },
        };
        let kind = args
            .backend
            .or(file.backend.kind)
            .unwrap_or_else(|| "memory".to_owned());
        let url = args.redis_url.or(file.backend.url);
        let prefix = args.backend_prefix.or(file.backend.prefix);
        let listed_keys = args.backend_listed_keys.or(file.backend.listed_keys);
        let entries_per_call = args
            .backend_entries_per_call
            .or(file.backend.entries_per_call);
        let mut options = RedisOptions::default();
        if let Some(prefix) = prefix {
            options.prefix = prefix;
        }
        if let Some(n) = listed_keys {
            if n > MAX_LISTED_KEYS {
                bail!("`backend.listed_keys`: {n} is more than {MAX_LISTED_KEYS}");
            }
            options.listed_keys = n;
        }
        if let Some(n) = entries_per_call {
            if !(1..=100_000).contains(&n) {
                bail!("`backend.entries_per_call`: {n} is outside 1..=100000");
            }
            options.entries_per_call = n;
        }
        let backend = match (kind.as_str(), url) {
            ("memory", None) => {
                if listed_keys.is_some() || entries_per_call.is_some() {
                    bail!(
                        "`backend.listed_keys` and `backend.entries_per_call` are Redis settings, but `backend.kind` is memory"
                    );
                }
                BackendKind::Memory
            }
            ("memory", Some(_)) => bail!("`backend.url` is set but `backend.kind` is memory"),
            ("redis", Some(url)) => BackendKind::Redis { url, options },
            ("cluster", Some(urls)) => BackendKind::Cluster {
                nodes: urls.split(',').map(|s| s.trim().to_owned()).collect(),
                options,
            },
            ("redis" | "cluster", None) => bail!("`backend.url` is required for backend `{kind}`"),
            (other, _) => bail!("`backend.kind`: `{other}` is not one of memory, redis, cluster"),
        };
        let window = args
            .batch_window_ms
            .or(file.host.batch_window_ms)
            .unwrap_or(100);
        if !(10..=5000).contains(&window) {
            bail!("`host.batch_window_ms`: {window} is outside 10..=5000");
        }
        let max_body_bytes = args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(64 << 20);
        if max_body_bytes == 0 {
            bail!("`max_body_bytes` must be more than 0");
        }
        let listen = match args.listen.or(file.listen) {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let consumer = args
            .consumer
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "tagbust".to_owned());
        let mut streams = Vec::new();
        for (i, f) in file.source.redis_stream.into_iter().enumerate() {
            let name = f.consumer.clone().unwrap_or_else(|| consumer.clone());
            let mut c =
                tagbust::sources::streams::StreamConfig::new(&f.url, &f.stream, &f.group, &name);
            let ms = Duration::from_millis;
            if let Some(v) = f.batch {
                c.batch = v;
            }
            if let Some(v) = f.block_ms {
                c.block = ms(v);
            }
            if let Some(v) = f.claim_idle_ms {
                c.claim_idle = ms(v);
            }
            if let Some(v) = f.max_deliveries {
                c.max_deliveries = v;
            }
            if let Some(v) = f.dead_letter {
                c.dead_letter = v;
            }
            if let Some(v) = f.max_entry_bytes {
                c.max_entry_bytes = v;
            }
            if let Some(v) = f.max_in_flight {
                c.max_in_flight = v;
            }
            if let Some(v) = f.drain_timeout_ms {
                c.drain_timeout = ms(v);
            }
            c.check()
                .with_context(|| format!("`source.redis_stream[{i}]`"))?;
            streams.push(c);
        }
        let mut postgres = Vec::new();
        for (i, f) in file.source.postgres.into_iter().enumerate() {
            postgres.push(f.resolve(i)?);
        }
        Ok(Config {
            listen,
            rules,
            manifests,
            admin_token,
            insecure: args.insecure || file.insecure,
            max_body_bytes,
            per_tenant_metrics: args.per_tenant_metrics || file.per_tenant_metrics,
            backend,
            batch_window: Duration::from_millis(window),
            max_pending_ops: args.max_pending_ops.or(file.host.max_pending_ops),
            transaction_timeout: args
                .transaction_timeout_ms
                .or(file.host.transaction_timeout_ms)
                .map(Duration::from_millis),
            streams,
            postgres,
            record: args.record.map(|path| {
                (
                    path,
                    args.sample_rate.unwrap_or(0.01),
                    args.record_max_bytes.unwrap_or(64 << 20),
                )
            }),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the configuration", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml names the key and the line; keep its message whole.
        anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end())
    })
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the admin token", path.display()))?;
    check_token(
        token.trim().to_owned(),
        &format!("{}: `admin_token_file`", path.display()),
    )
}

fn check_token(token: String, source: &str) -> anyhow::Result<String> {
    if token.len() < 16 {
        bail!("{source}: the admin token must be at least 16 characters");
    }
    Ok(token)
}
