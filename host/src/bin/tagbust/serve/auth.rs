//! Who may do what. A tenant's token (its manifest names the token's sha256) acts for that
//! tenant only: submit, commit, roll back, invalidate, read explain. The admin token (from a
//! file) may do everything, and alone reloads, clears and reads stats. Health, readiness and
//! metrics need no token. With no token configured at all, the daemon listens on loopback
//! only (unless `--insecure`) and lets every request through. Tokens are compared by hash
//! and never logged; every refusal is counted.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use tagbust::{Backend, Tagbust};

use super::api::ApiError;

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No tokens are configured: loopback-only service, everything allowed.
    Open,
    Admin,
    Tenant(String),
}

impl Caller {
    /// Refuses a caller that may not act for `tenant`.
    pub fn may_act_for(&self, tenant: &str) -> Result<(), ApiError> {
        match self {
            Caller::Open | Caller::Admin => Ok(()),
            Caller::Tenant(own) if own == tenant => Ok(()),
            Caller::Tenant(_) => Err(ApiError::forbidden(format!(
                "this token does not act for tenant `{tenant}`"
            ))),
        }
    }

    /// Refuses a caller that is not the admin.
    pub fn must_be_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Open | Caller::Admin => Ok(()),
            Caller::Tenant(_) => Err(ApiError::forbidden(
                "this endpoint needs the admin token".to_owned(),
            )),
        }
    }
}

/// The admin token's hash, if one is configured.
#[derive(Clone)]
pub struct Auth {
    admin_sha256: Option<[u8; 32]>,
}

impl Auth {
    pub fn new(admin_token: Option<&str>) -> Auth {
        Auth {
            admin_sha256: admin_token.map(|t| Sha256::digest(t.as_bytes()).into()),
        }
    }

    /// True when any token (admin or tenant) is configured: requests must then present one.
    pub fn required<B: Backend>(&self, host: &Tagbust<B>) -> bool {
        self.admin_sha256.is_some() || host.any_tenant_token()
    }

    /// Who the request's `Authorization: Bearer …` token acts as.
    pub fn caller<B: Backend>(
        &self,
        headers: &HeaderMap,
        host: &Tagbust<B>,
    ) -> Result<Caller, ApiError> {
        if !self.required(host) {
            return Ok(Caller::Open);
        }
        let Some(token) = bearer(headers) else {
            return Err(ApiError::unauthorized(
                "an `Authorization: Bearer` token is required",
            ));
        };
        if let Some(admin) = &self.admin_sha256 {
            let presented: [u8; 32] = Sha256::digest(token).into();
            let diff = admin
                .iter()
                .zip(&presented)
                .fold(0u8, |d, (a, b)| d | (a ^ b));
            if diff == 0 {
                return Ok(Caller::Admin);
            }
        }
        match host.tenant_for_token(token) {
            Some(tenant) => Ok(Caller::Tenant(tenant)),
            None => Err(ApiError::unauthorized("the token is not valid")),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
    let token = value.strip_prefix(b"Bearer ")?;
    (!token.is_empty()).then_some(token)
}
