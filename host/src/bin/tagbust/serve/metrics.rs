//! The Prometheus exporter for the `metrics` facade the library records into. Rendered by
//! `GET /metrics`; the host's counters are recorded just before each render.

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;

use tagbust::sources::streams::StreamStats;
use tagbust::{Backend, Tagbust};

/// How often histogram samples are folded into their summaries when nobody scrapes.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process-wide recorder, and its upkeep: the exporter keeps every histogram
/// sample until it is rendered or upkept, so an unscraped daemon grew by every rule call
/// (the soak measured ~190 KiB a minute at 200 requests/s before this task existed).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the Prometheus metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Records the host's counters and gauges, and each stream source's (labelled by stream
/// and group). Per-tenant series come from the HTTP intake, when switched on.
pub fn record<B: Backend>(host: &Tagbust<B>, streams: &[(String, String, Arc<StreamStats>)]) {
    host.record_metrics();
    for (stream, group, stats) in streams {
        let s = stats.snapshot();
        let labels = [("stream", stream.clone()), ("group", group.clone())];
        let counters = [
            ("tagbust_stream_entries_read_total", s.entries_read),
            (
                "tagbust_stream_entries_redelivered_total",
                s.entries_redelivered,
            ),
            ("tagbust_stream_entries_claimed_total", s.entries_claimed),
            ("tagbust_stream_entries_acked_total", s.entries_acked),
            (
                "tagbust_stream_entries_not_applied_total",
                s.entries_not_applied,
            ),
            ("tagbust_stream_events_submitted_total", s.events_submitted),
            ("tagbust_stream_redis_errors_total", s.redis_errors),
            (
                "tagbust_stream_retries_total",
                s.retries_rate_limited + s.retries_backpressure + s.retries_other,
            ),
        ];
        for (name, value) in counters {
            metrics::counter!(name, &labels).absolute(value);
        }
        for (reason, n) in &s.dead_letters {
            let mut with_reason = labels.to_vec();
            with_reason.push(("reason", (*reason).to_owned()));
            metrics::counter!("tagbust_stream_dead_letters_total", &with_reason).absolute(*n);
        }
        metrics::gauge!("tagbust_stream_in_flight", &labels).set(s.in_flight as f64);
        metrics::gauge!("tagbust_stream_pending", &labels).set(s.pending as f64);
        metrics::gauge!("tagbust_stream_lag", &labels).set(s.lag as f64);
    }
}
