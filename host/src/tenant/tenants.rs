//! Which rules and relationships apply to which tenant.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::event::WriteEvent;
use crate::tenant::relations::Relationships;
use crate::tenant::ruleset::{Evaluation, RuleSet};

/// One tenant's rules, relationship graph and admission limit.
#[derive(Clone, Default)]
pub struct TenantSetup {
    pub rules: RuleSet,
    pub relationships: Relationships,
    /// Where the setup came from, when it came from a manifest.
    pub manifest: Option<ManifestInfo>,
    /// Most events per second the tenant may submit; `None`: unlimited (the default).
    pub rate: Option<RateLimit>,
    /// sha256 of each API token that acts for this tenant (a service checks a presented
    /// token by hashing it; the token itself is never stored).
    pub token_sha256: Vec<[u8; 32]>,
}

/// The manifest a tenant's setup was loaded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestInfo {
    pub path: String,
    pub sha256: String,
}

/// A token bucket: `per_window` events per `window`, refilled continuously, bursting up to
/// one window's worth. Shared by every clone of the setup.
#[derive(Clone)]
pub struct RateLimit {
    per_window: u32,
    window: Duration,
    bucket: Arc<Mutex<(f64, Instant)>>,
}

impl RateLimit {
    pub fn new(per_window: u32, window: Duration) -> RateLimit {
        RateLimit {
            per_window,
            window,
            bucket: Arc::new(Mutex::new((f64::from(per_window), Instant::now()))),
        }
    }

    /// The configured rate, in events per window.
    pub fn per_window(&self) -> u32 {
        self.per_window
    }

    /// Takes `n` events' worth of tokens if there are enough; otherwise takes none.
    pub fn try_take(&self, n: usize) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let cap = f64::from(self.per_window);
        let refill = now.duration_since(bucket.1).as_secs_f64() / self.window.as_secs_f64();
        bucket.0 = (bucket.0 + refill * cap).min(cap);
        bucket.1 = now;
        let n = n as f64;
        if bucket.0 >= n {
            bucket.0 -= n;
            true
        } else {
            false
        }
    }
}

/// A rule in force for a tenant, as stats show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInForce {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// A tenant's rules in force and the manifest they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantInForce {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestInfo>,
    pub rules: Vec<RuleInForce>,
}

impl TenantSetup {
    pub fn new(rules: RuleSet) -> TenantSetup {
        TenantSetup {
            rules,
            ..TenantSetup::default()
        }
    }

    /// True when `presented` (the sha256 of a token) is one of this tenant's, compared in
    /// constant time. The caller hashes the token once, however many tenants it asks.
    pub fn accepts_token_sha256(&self, presented: &[u8; 32]) -> bool {
        self.token_sha256.iter().fold(false, |found, known| {
            let diff = known
                .iter()
                .zip(presented)
                .fold(0u8, |d, (a, b)| d | (a ^ b));
            found | (diff == 0)
        })
    }

    pub fn in_force(&self) -> TenantInForce {
        TenantInForce {
            manifest: self.manifest.clone(),
            rules: self
                .rules
                .rules()
                .iter()
                .map(|b| RuleInForce {
                    name: b.rule.name().to_owned(),
                    version: b.rule.info().version.clone(),
                    sha256: b.rule.sha256_hex(),
                })
                .collect(),
        }
    }

    pub fn with_relationships(mut self, relationships: Relationships) -> TenantSetup {
        self.relationships = relationships;
        self
    }
}

/// Tenant setups, with an optional default for tenants that have none of their own.
#[derive(Clone, Default)]
pub struct Tenants {
    default: Option<Arc<TenantSetup>>,
    by_id: HashMap<String, Arc<TenantSetup>>,
    /// Whether any setup has a rate limit (so admission can skip the per-event lookups).
    any_rate: bool,
}

impl Tenants {
    /// Every tenant gets `setup`, unless given its own.
    pub fn new(default: TenantSetup) -> Tenants {
        Tenants {
            any_rate: default.rate.is_some(),
            default: Some(Arc::new(default)),
            by_id: HashMap::new(),
        }
    }

    /// Only the tenants added with [`Tenants::with_tenant`] exist; the host refuses events of
    /// any other tenant (as a platform loading manifests wants).
    pub fn none() -> Tenants {
        Tenants::default()
    }

    pub fn with_tenant(mut self, tenant: &str, setup: TenantSetup) -> Tenants {
        self.set(tenant, Arc::new(setup));
        self
    }

    /// Replaces (or adds) one tenant's setup in place.
    pub fn set(&mut self, tenant: &str, setup: Arc<TenantSetup>) {
        let adds_rate = setup.rate.is_some();
        let replaced = self.by_id.insert(tenant.to_owned(), setup);
        if adds_rate {
            self.any_rate = true;
        } else if replaced.is_some_and(|old| old.rate.is_some()) {
            // The only rescan: a rate went away.
            self.any_rate = self
                .default
                .iter()
                .chain(self.by_id.values())
                .any(|t| t.rate.is_some());
        }
    }

    /// The tenant's setup, the default one, or `None` for an unknown tenant.
    pub fn get(&self, tenant: &str) -> Option<&Arc<TenantSetup>> {
        self.by_id.get(tenant).or(self.default.as_ref())
    }

    /// The tenant's own setup (not the default).
    pub fn get_own(&self, tenant: &str) -> Option<&Arc<TenantSetup>> {
        self.by_id.get(tenant)
    }

    /// Whether tenants without a setup of their own get the default one.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// Whether any tenant has a rate limit.
    pub fn any_rate(&self) -> bool {
        self.any_rate
    }

    /// Tenants with a setup of their own.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Evaluates events of any tenants, each with its tenant's rules; the reports come back
    /// in input order. An unknown tenant's events get empty reports (no rule ran).
    pub fn evaluate<E: Borrow<WriteEvent>>(&self, events: &[E]) -> Evaluation {
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            groups
                .entry(e.borrow().tenant.as_str())
                .or_default()
                .push(i);
        }
        let mut reports = vec![None; events.len()];
        let mut runs = Vec::new();
        for (tenant, indices) in groups {
            let group: Vec<&WriteEvent> = indices.iter().map(|&i| events[i].borrow()).collect();
            let evaluation = match self.get(tenant) {
                Some(setup) => setup.rules.evaluate(&group),
                None => RuleSet::default().evaluate(&group),
            };
            for (&i, report) in indices.iter().zip(evaluation.events) {
                reports[i] = Some(report);
            }
            runs.extend(evaluation.runs);
        }
        Evaluation {
            events: reports.into_iter().flatten().collect(),
            runs,
        }
    }
}
