//! Logging set-up (`TAGBUST_LOG`, default `warn`, to stderr) and, with the `otel` feature,
//! OpenTelemetry export of the host's spans (`tagbust.submit`, `tagbust.evaluate`,
//! `tagbust.apply`, `tagbust.flush`, with their tenant, rule and batch fields) over OTLP/HTTP
//! to `TAGBUST_OTLP_ENDPOINT` (e.g. `http://collector:4318/v1/traces`). The export has its
//! own filter, `TAGBUST_OTEL_FILTER` (default `tagbust=debug`: the spans are debug-level, and
//! the log filter must not hide them). Spans go out in batches from the exporter's own
//! thread; what is buffered is flushed when the command exits.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the exporter alive; dropping it flushes what is buffered.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

pub fn init() -> Telemetry {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("TAGBUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        );
    let registry = tracing_subscriber::registry().with(fmt);
    #[cfg(feature = "otel")]
    if let Ok(endpoint) = std::env::var("TAGBUST_OTLP_ENDPOINT") {
        match otel::layer(&endpoint) {
            Ok((layer, provider)) => {
                let filter = EnvFilter::try_from_env("TAGBUST_OTEL_FILTER")
                    .unwrap_or_else(|_| EnvFilter::new("tagbust=debug"));
                registry.with(layer.with_filter(filter)).init();
                return Telemetry {
                    provider: Some(provider),
                };
            }
            Err(e) => eprintln!("warning: TAGBUST_OTLP_ENDPOINT={endpoint}: no span export: {e}"),
        }
    }
    registry.init();
    Telemetry {
        #[cfg(feature = "otel")]
        provider: None,
    }
}

#[cfg(feature = "otel")]
impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: flushing spans at exit failed: {e}");
        }
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// The export layer for a subscriber `S`, and the provider to flush at exit.
    pub fn layer<S>(
        endpoint: &str,
    ) -> Result<
        (
            tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
            SdkTracerProvider,
        ),
        String,
    >
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| e.to_string())?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("tagbust").build())
            .build();
        let tracer = provider.tracer("tagbust");
        Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }
}
