//! `[[source.postgres]]`: the PostgreSQL commit-log sources of `tagbust serve`, their keys
//! (unknown ones refused, every refusal naming the key), their metrics and readiness.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use tagbust::sources::postgres::{PgConfig, PgStats, TableConfig, TenantFrom};

/// One `[[source.postgres]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgFile {
    host: String,
    port: Option<u16>,
    user: String,
    /// A file holding the password (never the password itself in the configuration).
    password_file: Option<PathBuf>,
    database: String,
    slot: String,
    publication: String,
    #[serde(default)]
    create: bool,
    tenant: Option<String>,
    #[serde(default)]
    tenant_from_schema: bool,
    tenant_column: Option<String>,
    #[serde(default)]
    qualified: bool,
    max_in_flight: Option<usize>,
    status_interval_ms: Option<u64>,
    drain_timeout_ms: Option<u64>,
    /// `/readyz` fails while the oldest unapplied commit is older than this.
    max_lag_ms: Option<u64>,
    #[serde(default)]
    table: Vec<TableFile>,
}

/// Where the tenant comes from: at most one of the three.
struct TenantKeys {
    tenant: Option<String>,
    tenant_from_schema: bool,
    tenant_column: Option<String>,
}

/// One `[[source.postgres.table]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    table: String,
    resource: Option<String>,
    #[serde(default)]
    ids: Vec<String>,
    tenant: Option<String>,
    #[serde(default)]
    tenant_from_schema: bool,
    tenant_column: Option<String>,
}

impl TenantKeys {
    fn resolve(self, key: &str) -> anyhow::Result<Option<TenantFrom>> {
        match (self.tenant, self.tenant_from_schema, self.tenant_column) {
            (None, false, None) => Ok(None),
            (Some(t), false, None) => Ok(Some(TenantFrom::Fixed(t))),
            (None, true, None) => Ok(Some(TenantFrom::Schema)),
            (None, false, Some(c)) => Ok(Some(TenantFrom::Column(c))),
            _ => bail!(
                "`{key}`: give one of `tenant`, `tenant_from_schema`, `tenant_column`, not several"
            ),
        }
    }
}

/// A source as configured, with its readiness bound.
#[derive(Debug, Clone)]
pub struct PgSource {
    pub config: PgConfig,
    pub max_lag: Option<Duration>,
}

impl PgFile {
    /// The source `[[source.postgres]]` number `i` describes; every refusal names its key.
    pub fn resolve(self, i: usize) -> anyhow::Result<PgSource> {
        let key = format!("source.postgres[{i}]");
        let mut c = PgConfig::new(
            &self.host,
            &self.user,
            &self.database,
            &self.slot,
            &self.publication,
        );
        if let Some(port) = self.port {
            c.port = port;
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("`{key}.password_file`: cannot read {}", path.display())
            })?;
            c.password = text.trim_end_matches(['\n', '\r']).to_owned();
        }
        c.create = self.create;
        c.qualified = self.qualified;
        let tenant = TenantKeys {
            tenant: self.tenant,
            tenant_from_schema: self.tenant_from_schema,
            tenant_column: self.tenant_column,
        };
        if let Some(t) = tenant.resolve(&key)? {
            c.tenant = t;
        }
        let ms = Duration::from_millis;
        if let Some(v) = self.max_in_flight {
            c.max_in_flight = v;
        }
        if let Some(v) = self.status_interval_ms {
            if v == 0 {
                bail!("`{key}.status_interval_ms` must be more than 0");
            }
            c.status_interval = ms(v);
        }
        if let Some(v) = self.drain_timeout_ms {
            c.drain_timeout = ms(v);
        }
        for (j, t) in self.table.into_iter().enumerate() {
            let mut table = TableConfig::new(&t.table);
            table.resource = t.resource;
            table.ids = t.ids;
            let tenant = TenantKeys {
                tenant: t.tenant,
                tenant_from_schema: t.tenant_from_schema,
                tenant_column: t.tenant_column,
            };
            table.tenant = tenant.resolve(&format!("{key}.table[{j}]"))?;
            c.tables.push(table);
        }
        c.check().with_context(|| format!("`{key}`"))?;
        Ok(PgSource {
            config: c,
            max_lag: self.max_lag_ms.map(ms),
        })
    }
}

/// What `/metrics` and `/readyz` know of one running source.
pub struct PgHandle {
    pub slot: String,
    pub max_lag: Option<Duration>,
    pub stats: Arc<PgStats>,
    /// Set when the source stopped for good (its error, for `/readyz`).
    pub failed: Arc<std::sync::Mutex<Option<String>>>,
}

/// Records each source's counters and gauges, labelled by slot.
pub fn record(sources: &[PgHandle]) {
    for h in sources {
        let s = h.stats.snapshot();
        let labels = [("slot", h.slot.clone())];
        let counters = [
            ("tagbust_pg_transactions_total", s.transactions),
            ("tagbust_pg_rows_total", s.rows),
            ("tagbust_pg_truncates_total", s.truncates),
            ("tagbust_pg_messages_total", s.messages),
            ("tagbust_pg_events_submitted_total", s.events_submitted),
            ("tagbust_pg_events_refused_total", s.events_refused),
            ("tagbust_pg_rows_skipped_total", s.rows_skipped),
            ("tagbust_pg_transactions_acked_total", s.transactions_acked),
            (
                "tagbust_pg_transactions_replayed_total",
                s.transactions_replayed,
            ),
            ("tagbust_pg_keepalives_acked_total", s.keepalives_acked),
            ("tagbust_pg_not_applied_total", s.not_applied),
            ("tagbust_pg_connects_total", s.connects),
            ("tagbust_pg_connection_errors_total", s.connection_errors),
            ("tagbust_pg_decode_errors_total", s.decode_errors),
        ];
        for (name, value) in counters {
            metrics::counter!(name, &labels).absolute(value);
        }
        metrics::gauge!("tagbust_pg_in_flight", &labels).set(s.in_flight as f64);
        metrics::gauge!("tagbust_pg_lag_bytes", &labels).set(s.lag_bytes as f64);
        metrics::gauge!("tagbust_pg_lag_seconds", &labels).set(s.lag_seconds);
        metrics::gauge!("tagbust_pg_confirmed_lsn", &labels).set(s.confirmed_lsn as f64);
        metrics::gauge!("tagbust_pg_connected", &labels).set(if s.connected { 1.0 } else { 0.0 });
    }
}

/// Why a source makes the daemon not ready, if it does; and every source's lag.
pub fn readiness(sources: &[PgHandle]) -> (Vec<String>, Vec<serde_json::Value>) {
    let mut reasons = Vec::new();
    let mut lag = Vec::new();
    for h in sources {
        let s = h.stats.snapshot();
        lag.push(serde_json::json!({
            "slot": h.slot,
            "connected": s.connected,
            "lag_bytes": s.lag_bytes,
            "lag_seconds": s.lag_seconds,
        }));
        let failed = h.failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(e) = failed {
            reasons.push(format!("postgres source `{}` stopped: {e}", h.slot));
        } else if !s.connected {
            reasons.push(format!("postgres source `{}` is not connected", h.slot));
        }
        if let Some(max) = h.max_lag
            && s.lag_seconds > max.as_secs_f64()
        {
            reasons.push(format!(
                "postgres source `{}` lags {:.1} s (more than max_lag_ms)",
                h.slot, s.lag_seconds
            ));
        }
    }
    (reasons, lag)
}
