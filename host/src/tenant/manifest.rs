//! Tenant manifests: one TOML file per tenant naming its rule components (each with the
//! sha256 it must have), their configuration, priority overrides and failure policies, the
//! tenant's limits, and its relationship graph.
//!
//! ```toml
//! tenant = "acme"
//!
//! [limits]                      # every key optional; defaults in `Limits` / below
//! deadline_ms = 50
//! memory_mib = 16
//! fuel = 5_000_000              # needs an engine built with fuel
//! max_targets = 256
//! max_bytes = 16384
//! max_events_per_second = 5000  # default: unlimited
//!
//! [[rule]]
//! path = "rules/published_feeds.wasm"   # relative to this file
//! sha256 = "9f86d0…"                    # of the component bytes; required
//! priority = 20                         # default: the rule's own
//! on_failure = "fallback"               # fallback (default) | skip | fail
//! fallback = "resource"                 # resource (default) | tenant
//! memory_mib = 64                       # this rule only: over [limits] (a Python rule)
//! deadline_ms = 200                     # this rule only: over [limits]
//! [rule.config]                         # strings as they are, other values as JSON text
//! feeds = "home,sports"
//!
//! [auth]                        # who may act for this tenant through `tagbust serve`
//! token_sha256 = ["5e8848…"]    # sha256 (hex) of each API token; never the token itself
//!
//! [relationships]
//! max_depth = 2
//! edges = { user = ["session", "preferences"] }
//! bidirectional = [["post", "comment"]]
//! ```
//!
//! Unknown keys are refused, as are a missing component and a sha256 mismatch; every error
//! names the file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::sandbox::engine::Engine;
use crate::sandbox::imports::RuleConfig;
use crate::sandbox::limits::Limits;
use crate::tenant::policy::{FailurePolicy, FallbackScope};
use crate::tenant::relations::Relationships;
use crate::tenant::ruleset::{BoundRule, RuleSet};
use crate::tenant::tenants::{ManifestInfo, RateLimit, TenantSetup, Tenants};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    tenant: String,
    #[serde(default)]
    limits: LimitsSpec,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSpec>,
    #[serde(default)]
    relationships: RelationshipsSpec,
    #[serde(default)]
    auth: AuthSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSpec {
    #[serde(default)]
    token_sha256: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSpec {
    deadline_ms: Option<u64>,
    memory_mib: Option<u64>,
    fuel: Option<u64>,
    max_targets: Option<usize>,
    max_bytes: Option<usize>,
    max_events_per_second: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    path: PathBuf,
    sha256: String,
    priority: Option<i32>,
    #[serde(default)]
    on_failure: FailurePolicy,
    #[serde(default)]
    fallback: FallbackScope,
    /// This rule's memory cap and deadline, over the tenant's `[limits]`.
    memory_mib: Option<u64>,
    deadline_ms: Option<u64>,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
}

/// A `[relationships]` table, as manifests and `tagbust test` fixtures write it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipsSpec {
    pub max_depth: Option<usize>,
    pub max_fanout: Option<usize>,
    #[serde(default)]
    pub edges: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub bidirectional: Vec<[String; 2]>,
}

impl RelationshipsSpec {
    /// The relationship graph this table describes.
    pub fn build(&self) -> Relationships {
        let mut relationships = Relationships::new();
        for (from, to) in &self.edges {
            for to in to {
                relationships = relationships.edge(from, to);
            }
        }
        for [a, b] in &self.bidirectional {
            relationships = relationships.bidirectional(a, b);
        }
        if let Some(depth) = self.max_depth {
            relationships = relationships.max_depth(depth);
        }
        if let Some(fanout) = self.max_fanout {
            relationships = relationships.max_fanout(fanout);
        }
        relationships
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", field_prefix(.field))]
pub struct ManifestError {
    pub file: String,
    /// The field to blame (`rule[1].sha256`), empty when the file as a whole is.
    pub field: String,
    pub message: String,
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// A tenant loaded from its manifest.
pub struct LoadedTenant {
    pub tenant: String,
    pub setup: TenantSetup,
}

/// Loads one manifest, compiling its rules with `engine` (identical component bytes are
/// compiled once per engine).
pub fn load(engine: &Engine, path: &Path) -> Result<LoadedTenant, ManifestError> {
    let file = path.display().to_string();
    let fail = |field: &str, message: String| ManifestError {
        file: file.clone(),
        field: field.to_owned(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| fail("", format!("cannot read: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| fail("", format!("not UTF-8 text: {e}")))?;
    let manifest = parse(text).map_err(|(field, message)| fail(&field, message))?;
    if let Err(message) = crate::model::ingest::check_tenant(&manifest.tenant) {
        return Err(fail("tenant", message));
    }
    let limits =
        limits(engine, &manifest.limits).map_err(|(f, m)| fail(&format!("limits.{f}"), m))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut rules = Vec::with_capacity(manifest.rules.len());
    for (i, spec) in manifest.rules.iter().enumerate() {
        let field = |name: &str| format!("rule[{i}].{name}");
        let component = dir.join(&spec.path);
        let bytes = std::fs::read(&component).map_err(|e| {
            fail(
                &field("path"),
                format!("cannot read {}: {e}", component.display()),
            )
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(spec.sha256.trim()) {
            return Err(fail(
                &field("sha256"),
                format!(
                    "{} has sha256 {actual}, the manifest expects {}",
                    component.display(),
                    spec.sha256
                ),
            ));
        }
        let rule = engine
            .load_bytes(&component.display().to_string(), &bytes)
            .map_err(|e| fail(&field("path"), e.to_string()))?;
        let config =
            config(&spec.config).map_err(|(key, e)| fail(&format!("rule[{i}].config.{key}"), e))?;
        let mut bound = BoundRule::new(rule).with_config(config);
        if let Some(priority) = spec.priority {
            bound.priority = priority;
        }
        bound.limits = limits.clone();
        override_time_and_memory(engine, &mut bound.limits, spec.deadline_ms, spec.memory_mib)
            .map_err(|(f, m)| fail(&field(f), m))?;
        bound.on_failure = spec.on_failure;
        bound.fallback = spec.fallback;
        rules.push(bound);
    }
    let relationships = manifest.relationships.build();
    let mut setup = TenantSetup::new(RuleSet::new(rules)).with_relationships(relationships);
    setup.manifest = Some(ManifestInfo {
        path: file.clone(),
        sha256: hex::encode(Sha256::digest(&bytes)),
    });
    setup.rate = manifest
        .limits
        .max_events_per_second
        .map(|n| RateLimit::new(n, Duration::from_secs(1)));
    for (i, hash) in manifest.auth.token_sha256.iter().enumerate() {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hash.trim(), &mut digest).map_err(|_| {
            fail(
                &format!("auth.token_sha256[{i}]"),
                "must be 64 hex digits: the sha256 of the token, not the token".to_owned(),
            )
        })?;
        setup.token_sha256.push(digest);
    }
    Ok(LoadedTenant {
        tenant: manifest.tenant,
        setup,
    })
}

/// Loads every `*.toml` manifest in `dir`, in name order. The result has no default setup:
/// events of a tenant without a manifest are refused. Two manifests naming the same tenant
/// are an error.
pub fn load_dir(engine: &Engine, dir: &Path) -> Result<Tenants, ManifestError> {
    let listing = std::fs::read_dir(dir).map_err(|e| ManifestError {
        file: dir.display().to_string(),
        field: String::new(),
        message: format!("cannot list manifests: {e}"),
    })?;
    let mut paths: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut tenants = Tenants::none();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for path in paths {
        let loaded = load(engine, &path)?;
        let file = path.display().to_string();
        if let Some(first) = seen.insert(loaded.tenant.clone(), file.clone()) {
            return Err(ManifestError {
                file,
                field: "tenant".into(),
                message: format!("tenant `{}` is already defined by {first}", loaded.tenant),
            });
        }
        tenants = tenants.with_tenant(&loaded.tenant, loaded.setup);
    }
    Ok(tenants)
}

/// Parses a manifest; an error names the field (`rule[0].sha256`) and says what is wrong.
fn parse(text: &str) -> Result<Manifest, (String, String)> {
    let de = toml::Deserializer::parse(text).map_err(|e| (String::new(), toml_message(&e)))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        (field, toml_message(e.inner()))
    })
}

fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().to_owned()
}

/// The tenant's limits: each given value over the engine's defaults. An error names the key
/// (`fuel`) and says what is wrong.
fn limits(engine: &Engine, spec: &LimitsSpec) -> Result<Limits, (&'static str, String)> {
    let mut limits = engine.options().default_limits.clone();
    override_time_and_memory(engine, &mut limits, spec.deadline_ms, spec.memory_mib)?;
    if let Some(fuel) = spec.fuel {
        if !engine.options().fuel {
            return Err((
                "fuel",
                "this engine runs without fuel metering (EngineOptions::fuel)".into(),
            ));
        }
        limits.fuel = Some(fuel);
    }
    if let Some(n) = spec.max_targets {
        limits.max_targets = n;
    }
    if let Some(n) = spec.max_bytes {
        limits.max_target_bytes = n;
    }
    Ok(limits)
}

/// Sets the deadline and memory cap: the tenant's, or one rule's over the tenant's.
fn override_time_and_memory(
    engine: &Engine,
    limits: &mut Limits,
    deadline_ms: Option<u64>,
    memory_mib: Option<u64>,
) -> Result<(), (&'static str, String)> {
    if let Some(ms) = deadline_ms {
        limits.set_deadline_ms(ms).map_err(|m| ("deadline_ms", m))?;
    }
    if let Some(mib) = memory_mib {
        let max = engine.options().max_memory_bytes;
        limits
            .set_memory_mib(mib, max)
            .map_err(|m| ("memory_mib", m))?;
    }
    Ok(())
}

/// A rule's configuration: strings as they are, other TOML values as their JSON text.
/// A value JSON cannot hold (a NaN or infinite float) is an error naming its key.
fn config(table: &BTreeMap<String, toml::Value>) -> Result<RuleConfig, (String, String)> {
    let mut object = serde_json::Map::new();
    for (k, v) in table {
        let json = serde_json::to_value(v).map_err(|e| (k.clone(), e.to_string()))?;
        if contains_null(&json) {
            return Err((
                k.clone(),
                "not representable as JSON (NaN or infinity)".into(),
            ));
        }
        object.insert(k.clone(), json);
    }
    Ok(RuleConfig::from_json_object(&object))
}

/// TOML has no null: a null after conversion is a float JSON cannot hold.
fn contains_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(contains_null),
        serde_json::Value::Object(o) => o.values().any(contains_null),
        _ => false,
    }
}
