//! `tagbust serve`: the host as a service. HTTP intake (and, configured, Redis Streams),
//! authentication per tenant, metrics, hot reload, and a shutdown that loses nothing it
//! accepted: stop intake, finish what is in flight, flush, flip readiness, close HTTP.

mod api;
mod auth;
pub mod config;
mod http;
mod metrics;
mod postgres;
mod record;
mod reload;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use tagbust::backend::RedisBackend;
use tagbust::sources::streams::{self, StreamStats};
use tagbust::tenant::manifest;
use tagbust::{
    Backend, BoundRule, Engine, EventLimits, HostOptions, MemoryBackend, RuleSet, Tagbust,
    TenantSetup, Tenants,
};
use tokio_util::sync::CancellationToken;

use config::{BackendKind, Config, ServeArgs};

pub fn run(args: ServeArgs, cache: &crate::engine::CacheArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    // Precompiled components from the artifact cache: a restart or reload does not compile
    // again (a Python rule takes seconds to compile, milliseconds to load).
    let engine = cache.engine()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(start(config, engine))
}

async fn start(config: Config, engine: Engine) -> anyhow::Result<ExitCode> {
    let tenants = match (&config.manifests, config.rules.is_empty()) {
        (Some(dir), _) => {
            let (engine, dir) = (engine.clone(), dir.clone());
            tokio::task::spawn_blocking(move || manifest::load_dir(&engine, &dir))
                .await
                .context("loading the manifests was interrupted")??
        }
        (None, _) => {
            let mut rules = Vec::new();
            for path in crate::rules::component_paths(&config.rules)? {
                rules.push(BoundRule::new(engine.load_file(&path)?));
            }
            Tenants::new(TenantSetup::new(RuleSet::new(rules)))
        }
    };
    match config.backend.clone() {
        BackendKind::Memory => serve_with(MemoryBackend::new(), engine, tenants, config).await,
        BackendKind::Redis { url, options } => {
            let backend = RedisBackend::connect(&url, options)
                .await
                .with_context(|| format!("`backend.url`: cannot connect to {url}"))?;
            serve_with(backend, engine, tenants, config).await
        }
        BackendKind::Cluster { nodes, options } => {
            let backend = RedisBackend::connect_cluster(&nodes, options)
                .await
                .with_context(|| {
                    format!("`backend.url`: cannot connect to the cluster {nodes:?}")
                })?;
            serve_with(backend, engine, tenants, config).await
        }
    }
}

async fn serve_with<B: Backend>(
    backend: B,
    engine: Engine,
    tenants: Tenants,
    config: Config,
) -> anyhow::Result<ExitCode> {
    let mut options = HostOptions {
        batch_window: config.batch_window,
        ..HostOptions::default()
    };
    if let Some(n) = config.max_pending_ops {
        options.max_pending_ops = n;
    }
    if let Some(t) = config.transaction_timeout {
        options.transaction_timeout = t;
    }
    let limits = EventLimits {
        max_input_bytes: config.max_body_bytes,
        ..EventLimits::default()
    };
    options.event_limits = limits.clone();
    let host = Tagbust::builder(Arc::new(backend))
        .engine(engine)
        .tenants(tenants)
        .options(options)
        .build()?;
    let auth = auth::Auth::new(config.admin_token.as_deref());
    if !auth.required(&host) && !config.listen.ip().is_loopback() && !config.insecure {
        bail!(
            "refusing to listen on {} without any token configured (anyone could submit and \
             clear): listen on loopback, configure tokens (`admin_token_file`, \
             `[auth] token_sha256` in manifests), or pass --insecure",
            config.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("`listen`: cannot bind {}", config.listen))?;
    let local: SocketAddr = listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(true));
    let state = http::AppState {
        host: host.clone(),
        auth,
        limits,
        ready: ready.clone(),
        prometheus: metrics::install()?,
        manifests: config.manifests.clone(),
        per_tenant_metrics: config.per_tenant_metrics,
        streams: Arc::new(Vec::new()),
        postgres: Arc::new(Vec::new()),
        recorder: match &config.record {
            Some((path, rate, max)) => Some(record::Recorder::start(path.clone(), *rate, *max)?),
            None => None,
        },
    };
    let stop_intake = CancellationToken::new();
    let stop_sources = CancellationToken::new();
    let mut sources = tokio::task::JoinSet::new();
    let mut stream_stats = Vec::new();
    for stream in config.streams.clone() {
        let stats = Arc::new(StreamStats::default());
        stream_stats.push((stream.stream.clone(), stream.group.clone(), stats.clone()));
        let (host, stop) = (host.clone(), stop_sources.clone());
        sources.spawn(async move {
            let name = stream.stream.clone();
            if let Err(e) = streams::run(host, stream, stop, stats).await {
                tracing::error!(stream = %name, error = %e, "stream source stopped");
            }
        });
    }
    let mut pg_handles = Vec::new();
    for source in config.postgres.clone() {
        let handle = postgres::PgHandle {
            slot: source.config.slot.clone(),
            max_lag: source.max_lag,
            stats: Arc::new(tagbust::sources::postgres::PgStats::default()),
            failed: Arc::default(),
        };
        let (stats, failed) = (handle.stats.clone(), handle.failed.clone());
        pg_handles.push(handle);
        let (host, stop) = (host.clone(), stop_sources.clone());
        sources.spawn(async move {
            let slot = source.config.slot.clone();
            if let Err(e) = tagbust::sources::postgres::run(host, source.config, stop, stats).await
            {
                tracing::error!(slot = %slot, error = %e, "postgres source stopped");
                eprintln!("tagbust serve: postgres source `{slot}` stopped: {e}");
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
        });
    }
    let state = http::AppState {
        streams: Arc::new(stream_stats),
        postgres: Arc::new(pg_handles),
        ..state
    };
    let app = http::router(state, config.max_body_bytes);
    tokio::spawn(signals(
        host.clone(),
        config.manifests.clone(),
        stop_intake.clone(),
    ));
    // Stdout's first line says where to reach it (tests and scripts read it).
    println!("tagbust serve: listening on http://{local}");
    tracing::info!(%local, "serving");
    let server = {
        let stop = stop_intake.clone();
        let host = host.clone();
        let ready = ready.clone();
        axum::serve(listener, app).with_graceful_shutdown(async move {
            stop.cancelled().await;
            // Intake stops: stream sources stop reading, new submissions are refused; what
            // is in flight finishes and everything pending is flushed (which resolves the
            // entries waiting on it, so the sources acknowledge them) before readiness flips
            // and HTTP closes.
            stop_sources.cancel();
            let outcome = host.shutdown().await;
            while sources.join_next().await.is_some() {}
            ready.store(false, Ordering::Relaxed);
            report_shutdown(outcome);
        })
    };
    server.await.context("the HTTP server failed")?;
    Ok(ExitCode::SUCCESS)
}

fn report_shutdown(
    outcome: Result<tagbust::pipeline::ShutdownReport, tagbust::pipeline::ShutdownError>,
) {
    match outcome {
        Ok(report) => tracing::info!(?report, "shut down; everything accepted was applied"),
        Err(e) => {
            // Handed back by the host: printed whole so an operator can replay them.
            tracing::error!(error = %e, "shut down with invalidations the backend did not take");
            if let Ok(json) = serde_json::to_string(&e.unapplied) {
                eprintln!("tagbust serve: unapplied at shutdown: {json}");
            }
        }
    }
}

/// SIGTERM / SIGINT: a graceful stop (a second one exits at once); SIGHUP: reload manifests.
async fn signals<B: Backend>(
    host: Tagbust<B>,
    manifests: Option<std::path::PathBuf>,
    stop: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {
                if let Some(dir) = &manifests {
                    let outcome = reload::reload_dir(&host, dir).await;
                    tracing::info!(?outcome, "SIGHUP: manifests reloaded");
                }
                continue;
            }
        }
        if stop.is_cancelled() {
            eprintln!("tagbust serve: second signal, exiting now");
            std::process::exit(130);
        }
        tracing::info!("stopping: intake closed, flushing what was accepted");
        stop.cancel();
    }
}
