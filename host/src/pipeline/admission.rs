//! What is refused before any work is done, and the cool-down a failing tenant owes.
//!
//! Every refusal here means "not accepted, nothing of it will happen", and is counted.

use std::collections::HashMap;
use std::time::Duration;

use super::options::MAX_OWED;
use super::{HostError, Tagbust, lock};
use crate::backend::Backend;
use crate::model::WriteEvent;
use crate::model::ingest::check_event;
use crate::tenant::Tenants;

impl<B: Backend> Tagbust<B> {
    /// Refuses a submission that is invalid, names an unknown tenant, exceeds a tenant's
    /// rate, or finds the pending queue full. Nothing of a refused submission is applied.
    pub(super) fn admit(&self, tenants: &Tenants, events: &[WriteEvent]) -> Result<(), HostError> {
        let inner = &self.inner;
        let n = events.len() as u64;
        if inner.shutdown.is_cancelled() {
            return Err(HostError::ShutDown);
        }
        if let Some((index, e)) = events.iter().enumerate().find_map(|(i, e)| {
            check_event(e, &inner.options.event_limits)
                .err()
                .map(|r| (i, r))
        }) {
            inner.stats.update(|s| s.events_rejected += n);
            return Err(HostError::InvalidEvent {
                index,
                field: e.field,
                message: e.message,
            });
        }
        let unknown = if tenants.has_default() {
            None
        } else {
            events.iter().position(|e| tenants.get(&e.tenant).is_none())
        };
        if let Some(index) = unknown {
            inner.stats.update(|s| {
                s.events_rejected += n;
                s.events_unknown_tenant += 1;
            });
            return Err(HostError::UnknownTenant {
                index,
                tenant: events[index].tenant.clone(),
            });
        }
        self.take_rate(tenants, events)?;
        let pending = lock(&inner.batcher).len();
        if pending >= inner.options.max_pending_ops {
            inner.stats.update(|s| s.events_refused_backpressure += n);
            return Err(HostError::Backpressure { pending });
        }
        Ok(())
    }

    fn take_rate(&self, tenants: &Tenants, events: &[WriteEvent]) -> Result<(), HostError> {
        if !tenants.any_rate() {
            return Ok(());
        }
        let mut per_tenant: HashMap<&str, usize> = HashMap::new();
        for e in events {
            if tenants.get(&e.tenant).is_some_and(|t| t.rate.is_some()) {
                *per_tenant.entry(e.tenant.as_str()).or_default() += 1;
            }
        }
        for (tenant, count) in per_tenant {
            let Some(rate) = tenants.get(tenant).and_then(|t| t.rate.as_ref()) else {
                continue;
            };
            if !rate.try_take(count) {
                let n = events.len() as u64;
                self.inner.stats.update(|s| s.events_rate_limited += n);
                return Err(HostError::RateLimited {
                    tenant: tenant.to_owned(),
                    limit: rate.per_window(),
                });
            }
        }
        Ok(())
    }

    /// Waits until every tenant of `events` has finished its cool-down.
    pub(super) async fn cool_down(&self, events: &[WriteEvent]) {
        let until = {
            let mut cooling = lock(&self.inner.cooling);
            if cooling.is_empty() {
                return;
            }
            let now = tokio::time::Instant::now();
            cooling.retain(|_, until| *until > now);
            events
                .iter()
                .filter_map(|e| cooling.get(&e.tenant).copied())
                .max()
        };
        if let Some(until) = until {
            let waited = until.saturating_duration_since(tokio::time::Instant::now());
            self.inner.stats.update(|s| {
                s.cooldown_waits += 1;
                s.cooldown_wait_ms += u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            });
            tokio::time::sleep_until(until).await;
        }
    }

    /// Adds what tenants' failed rule calls burned to their cool-down.
    pub(super) fn owe(&self, burned: &[(String, Duration)]) {
        let factor = self.inner.options.failure_cooldown;
        // NaN and non-positive factors turn it off.
        if burned.is_empty() || factor.is_nan() || factor <= 0.0 {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut cooling = lock(&self.inner.cooling);
        for (tenant, time) in burned {
            let owed = Duration::try_from_secs_f64(time.as_secs_f64() * factor)
                .map_or(MAX_OWED, |d| d.min(MAX_OWED));
            let until = cooling.entry(tenant.clone()).or_insert(now);
            *until = (*until).max(now) + owed;
        }
    }
}
