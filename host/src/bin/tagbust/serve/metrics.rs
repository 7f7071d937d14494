//! The Prometheus exporter for the `metrics` facade the library records into. Rendered by
//! `GET /metrics`; the host's counters are recorded just before each render.

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tagbust::{Backend, Tagbust};

/// Installs the process-wide recorder.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the Prometheus metrics recorder")
}

/// Records the host's counters and gauges (per-tenant series come from the intake, when
/// switched on).
pub fn record<B: Backend>(host: &Tagbust<B>, _per_tenant: bool) {
    host.record_metrics();
}
