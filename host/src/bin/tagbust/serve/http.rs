//! The HTTP API, versioned under `/v1` (JSON in and out), plus `/metrics`, `/healthz` and
//! `/readyz`. Every handler authenticates first (see `auth.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use tagbust::{Backend, EventLimits, Strategy, Tagbust, Target, TargetKind, parse_events};

use super::api::ApiError;
use super::auth::Auth;

/// What every handler shares.
pub struct AppState<B: Backend> {
    pub host: Tagbust<B>,
    pub auth: Auth,
    pub limits: EventLimits,
    /// False once shutdown has begun (readiness flips before intake closes).
    pub ready: Arc<AtomicBool>,
    pub prometheus: PrometheusHandle,
    pub manifests: Option<PathBuf>,
    pub per_tenant_metrics: bool,
    /// Each stream source's (stream, group, counters), for `/metrics`.
    pub streams: Arc<Vec<(String, String, Arc<tagbust::sources::streams::StreamStats>)>>,
    /// Each PostgreSQL source's counters and readiness, for `/metrics` and `/readyz`.
    pub postgres: Arc<Vec<super::postgres::PgHandle>>,
    /// `--record`: a sample of accepted events for `tagbust diff`.
    pub recorder: Option<super::record::Recorder>,
}

impl<B: Backend> Clone for AppState<B> {
    fn clone(&self) -> Self {
        AppState {
            host: self.host.clone(),
            auth: self.auth.clone(),
            limits: self.limits.clone(),
            ready: self.ready.clone(),
            prometheus: self.prometheus.clone(),
            manifests: self.manifests.clone(),
            per_tenant_metrics: self.per_tenant_metrics,
            streams: self.streams.clone(),
            postgres: self.postgres.clone(),
            recorder: self.recorder.clone(),
        }
    }
}

pub fn router<B: Backend>(state: AppState<B>, max_body_bytes: usize) -> axum::Router {
    axum::Router::new()
        .route("/v1/events", post(submit::<B>))
        .route(
            "/v1/transactions/{tenant}/{tx}/{action}",
            post(close_transaction::<B>),
        )
        .route("/v1/invalidate", post(invalidate::<B>))
        .route("/v1/tenants/{tenant}/clear", post(clear::<B>))
        .route("/v1/explain", get(explain::<B>))
        .route("/v1/stats", get(stats::<B>))
        .route("/v1/admin/reload", post(reload::<B>))
        .route("/metrics", get(metrics::<B>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<B>))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::map_response(count_body_limit))
        .with_state(state)
}

/// A body past the cap is refused by axum's own limit (413) before a handler runs; it is
/// counted here like every other refusal.
async fn count_body_limit(response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        metrics::counter!("tagbust_http_refused_total", "reason" => "too_large").increment(1);
    }
    response
}

#[derive(Deserialize)]
struct SubmitQuery {
    /// `applied`: answer only once every invalidation of the request is applied.
    wait: Option<String>,
    /// How long `wait=applied` may take, in milliseconds (default 30,000).
    timeout_ms: Option<u64>,
}

async fn submit<B: Backend>(
    State(state): State<AppState<B>>,
    Query(query): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = state.auth.caller(&headers, &state.host)?;
    let events = parse_events("request body", &body, &state.limits)?;
    for (i, e) in events.iter().enumerate() {
        caller
            .may_act_for(&e.tenant)
            .map_err(|err| err.at(Some(i), Some("tenant".into())))?;
    }
    count_events(&state, &events);
    let sample = state.recorder.as_ref().map(|r| (r.clone(), events.clone()));
    let recorded = |accepted: bool| {
        if let (true, Some((recorder, events))) = (accepted, &sample) {
            recorder.offer(events);
        }
    };
    match query.wait.as_deref() {
        None => {
            let report = state.host.submit(events).await;
            recorded(report.is_ok());
            let report = report?;
            Ok(Json(report).into_response())
        }
        Some("applied") => {
            let tracked = state.host.submit_tracked(events).await;
            recorded(tracked.is_ok());
            let (report, applied) = tracked?;
            let limit = Duration::from_millis(query.timeout_ms.unwrap_or(30_000));
            match tokio::time::timeout(limit, applied).await {
                Ok(Ok(())) => Ok(Json(report).into_response()),
                Ok(Err(not_applied)) => Err(ApiError::unavailable(not_applied.to_string())),
                Err(_) => Ok((
                    StatusCode::ACCEPTED,
                    Json(serde_json::json!({
                        "report": report,
                        "applied": false,
                        "message": "accepted, not yet applied within the timeout; it will be",
                    })),
                )
                    .into_response()),
            }
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "`wait`: `{other}` is not `applied`"
        ))),
    }
}

fn count_events<B: Backend>(state: &AppState<B>, events: &[tagbust::WriteEvent]) {
    if state.per_tenant_metrics {
        for e in events {
            metrics::counter!("tagbust_http_events_total", "tenant" => e.tenant.clone())
                .increment(1);
        }
    } else {
        metrics::counter!("tagbust_http_events_total").increment(events.len() as u64);
    }
}

/// `POST /v1/transactions/{tenant}/{tx}/commit` and `/rollback`.
async fn close_transaction<B: Backend>(
    State(state): State<AppState<B>>,
    Path((tenant, tx, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .caller(&headers, &state.host)?
        .may_act_for(&tenant)?;
    match action.as_str() {
        "commit" => Ok(Json(state.host.commit(&tenant, &tx).await?).into_response()),
        "rollback" => {
            let dropped = state.host.rollback(&tenant, &tx);
            Ok(Json(serde_json::json!({ "dropped": dropped })).into_response())
        }
        other => Err(ApiError::not_found(format!(
            "`{other}`: a transaction is closed by `commit` or `rollback`"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidateRequest {
    tenant: String,
    targets: Vec<TargetRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetRequest {
    kind: TargetKind,
    value: String,
    #[serde(default = "immediate")]
    strategy: Strategy,
    #[serde(default)]
    cascade: bool,
}

fn immediate() -> Strategy {
    Strategy::Immediate
}

async fn invalidate<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = state.auth.caller(&headers, &state.host)?;
    let request: InvalidateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    caller.may_act_for(&request.tenant)?;
    let targets = request
        .targets
        .into_iter()
        .map(|t| Target {
            kind: t.kind,
            value: t.value,
            strategy: t.strategy,
            cascade: t.cascade,
        })
        .collect();
    let report = state.host.invalidate(&request.tenant, targets).await?;
    Ok(Json(report).into_response())
}

async fn clear<B: Backend>(
    State(state): State<AppState<B>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.auth.caller(&headers, &state.host)?.must_be_admin()?;
    Ok(Json(state.host.clear_tenant(&tenant).await?).into_response())
}

#[derive(Deserialize)]
struct ExplainQuery {
    tenant: String,
    key: String,
}

async fn explain<B: Backend>(
    State(state): State<AppState<B>>,
    Query(query): Query<ExplainQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .auth
        .caller(&headers, &state.host)?
        .may_act_for(&query.tenant)?;
    Ok(Json(state.host.explain().why(&query.tenant, &query.key)).into_response())
}

async fn stats<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.auth.caller(&headers, &state.host)?.must_be_admin()?;
    Ok(Json(state.host.stats()).into_response())
}

async fn reload<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.auth.caller(&headers, &state.host)?.must_be_admin()?;
    let Some(dir) = &state.manifests else {
        return Err(ApiError::not_found(
            "this daemon serves `rules`, not a manifests directory: nothing to reload".into(),
        ));
    };
    let outcome = super::reload::reload_dir(&state.host, dir).await;
    let status = if outcome.failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(outcome)).into_response())
}

async fn metrics<B: Backend>(State(state): State<AppState<B>>) -> Response {
    super::metrics::record(&state.host, &state.streams);
    super::postgres::record(&state.postgres);
    state.prometheus.render().into_response()
}

async fn readyz<B: Backend>(State(state): State<AppState<B>>) -> Response {
    let mut reasons: Vec<String> = Vec::new();
    if !state.ready.load(Ordering::Relaxed) || state.host.is_shutting_down() {
        reasons.push("shutting down".into());
    }
    if state.host.is_degraded() {
        reasons.push("the backend is failing".into());
    }
    let (pg_reasons, lag) = super::postgres::readiness(&state.postgres);
    reasons.extend(pg_reasons);
    match (reasons.is_empty(), lag.is_empty()) {
        (true, true) => (StatusCode::OK, "ready\n").into_response(),
        (true, false) => (
            StatusCode::OK,
            Json(serde_json::json!({ "ready": true, "postgres": lag })),
        )
            .into_response(),
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "ready": false, "reasons": reasons, "postgres": lag })),
        )
            .into_response(),
    }
}
