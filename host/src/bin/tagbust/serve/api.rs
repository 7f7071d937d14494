//! Errors as HTTP responses: a status, and a JSON body naming what is wrong (the event index
//! and field for a bad event). Every refusal is counted in the metrics by its reason.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tagbust::{HostError, IngestError};

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, message: String) -> ApiError {
        metrics::counter!("tagbust_http_refused_total", "reason" => error).increment(1);
        ApiError {
            status,
            body: ErrorBody {
                error,
                message,
                index: None,
                field: None,
            },
            retry_after: None,
        }
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message.to_owned())
    }

    pub fn forbidden(message: String) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn bad_request(message: String) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: String) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: String) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn at(mut self, index: Option<usize>, field: Option<String>) -> ApiError {
        self.body.index = index;
        self.body.field = field;
        self
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        let message = e.to_string();
        match e {
            IngestError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            IngestError::Field { field, .. } => {
                // `[3].ids[0]` → index 3, field `ids[0]`.
                let (index, field) = match field.strip_prefix('[').and_then(|f| f.split_once("]."))
                {
                    Some((i, rest)) => (i.parse().ok(), rest.to_owned()),
                    None => (Some(0), field),
                };
                ApiError::bad_request(message).at(index, Some(field))
            }
            _ => ApiError::bad_request(message),
        }
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> ApiError {
        let message = e.to_string();
        match e {
            HostError::InvalidEvent { index, field, .. } => {
                ApiError::bad_request(message).at(Some(index), Some(field))
            }
            HostError::UnknownTenant { index, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_tenant", message)
                    .at(Some(index), Some("tenant".into()))
            }
            HostError::RateLimited { .. } => {
                let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
                err.retry_after = Some(1);
                err
            }
            HostError::Backpressure { .. } => {
                let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "backpressure", message);
                err.retry_after = Some(1);
                err
            }
            HostError::ShutDown => ApiError::unavailable(message),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
