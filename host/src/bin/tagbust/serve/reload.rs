//! Reloading every manifest of the directory: on `SIGHUP` and `POST /v1/admin/reload`. A
//! broken manifest leaves its tenant's old version live and is reported by file and field.

use std::path::Path;

use serde::Serialize;
use tagbust::{Backend, Tagbust};

#[derive(Debug, Default, Serialize)]
pub struct ReloadOutcome {
    /// Tenants whose manifest was reloaded.
    pub reloaded: Vec<String>,
    /// Manifests refused, with why (their tenants keep the old version).
    pub failed: Vec<String>,
}

pub async fn reload_dir<B: Backend>(host: &Tagbust<B>, dir: &Path) -> ReloadOutcome {
    let mut outcome = ReloadOutcome::default();
    let mut paths: Vec<_> = match std::fs::read_dir(dir) {
        Ok(listing) => listing
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            outcome
                .failed
                .push(format!("{}: cannot list manifests: {e}", dir.display()));
            return outcome;
        }
    };
    paths.sort();
    for path in paths {
        match host.reload(&path).await {
            Ok(reloaded) => outcome.reloaded.push(reloaded.tenant),
            Err(e) => outcome.failed.push(e.to_string()),
        }
    }
    metrics::counter!("tagbust_reloads_total").increment(outcome.reloaded.len() as u64);
    metrics::counter!("tagbust_reloads_failed_total").increment(outcome.failed.len() as u64);
    if !outcome.failed.is_empty() {
        tracing::warn!(failed = ?outcome.failed, "some manifests were refused; their tenants keep the old version");
    }
    outcome
}
