//! Invalidations without a rule: an operator's "clear this", an admin endpoint, a migration.
//! They take the same path as what rules return — confinement, cascade, strategy, batching,
//! stats and explain — under the rule name `(manual)`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::operations::{EventOrigin, EventRef, Origin, Routed, route};
use super::split::Sorter;
use super::{HostError, SubmitReport, Tagbust, confine};
use crate::backend::{Backend, Op, OpKind};
use crate::model::RuleRef;
use crate::model::event::{Operation, WriteEvent};
use crate::model::ingest::check_tenant;
use crate::model::target::{Strategy, Target, TargetKind};
use crate::tenant::plan::PlannedTarget;

/// The rule name manual invalidations are credited to in stats and explain.
pub const MANUAL: &str = "(manual)";

impl<B: Backend> Tagbust<B> {
    /// Invalidates `targets` of `tenant` by their strategies, cascading through the tenant's
    /// relationships. A target outside the tenant's namespace refuses the call, as an
    /// invalid event does.
    pub async fn invalidate(
        &self,
        tenant: &str,
        targets: Vec<Target>,
    ) -> Result<SubmitReport, HostError> {
        let (origin, tenants) = self.manual_origin(tenant)?;
        let mut plan = Vec::with_capacity(targets.len());
        for (i, t) in targets.into_iter().enumerate() {
            if let Err(violation) = confine::check(tenant, &tenants, t.kind, &t.value) {
                self.inner.stats.update(|s| s.confinement_violations += 1);
                return Err(HostError::InvalidEvent {
                    index: 0,
                    field: format!("targets[{i}]"),
                    message: violation.to_string(),
                });
            }
            plan.push(PlannedTarget {
                kind: t.kind,
                value: t.value,
                strategy: t.strategy,
                cascade: t.cascade,
                priority: 0,
                rule: RuleRef::new(MANUAL, "", ""),
                fallback: false,
            });
        }
        let relationships = tenants
            .get(tenant)
            .map(|setup| setup.relationships.clone())
            .unwrap_or_default();
        let routed = route(origin, plan, &relationships);
        self.inner.stats.update(|s| {
            s.cascaded_tags += routed.cascaded;
            s.cascades_truncated += routed.truncated;
        });
        self.send_manual(routed.routed).await
    }

    /// Invalidates every entry of `tenant` at once (clear all).
    pub async fn clear_tenant(&self, tenant: &str) -> Result<SubmitReport, HostError> {
        let (origin, _) = self.manual_origin(tenant)?;
        let routed = Routed {
            op: Op {
                tenant: origin.tenant.clone(),
                kind: OpKind::Tenant,
                value: String::new(),
            },
            strategy: Strategy::Immediate,
            origin: Origin {
                event: origin,
                rule: RuleRef::new(MANUAL, "", ""),
                fallback: false,
                target_kind: TargetKind::Pattern,
                target: "*".into(),
                strategy: Strategy::Immediate,
                cascaded_from: None,
            },
            ticket: None,
        };
        self.send_manual(vec![routed]).await
    }

    fn manual_origin(
        &self,
        tenant: &str,
    ) -> Result<(EventRef, Arc<crate::tenant::tenants::Tenants>), HostError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(HostError::ShutDown);
        }
        check_tenant(tenant).map_err(|message| HostError::InvalidEvent {
            index: 0,
            field: "tenant".into(),
            message,
        })?;
        let tenants = self.tenants();
        if tenants.get(tenant).is_none() {
            return Err(HostError::UnknownTenant {
                index: 0,
                tenant: tenant.to_owned(),
            });
        }
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let event = WriteEvent::new(tenant, MANUAL, Operation::Update);
        Ok((EventRef::new(EventOrigin::new(seq, &event)), tenants))
    }

    async fn send_manual(&self, routed: Vec<Routed>) -> Result<SubmitReport, HostError> {
        let _in_flight = self.inner.tracker.token();
        if self.inner.shutdown.is_cancelled() {
            return Err(HostError::ShutDown);
        }
        self.inner.stats.update(|s| {
            for r in &routed {
                s.target(r.origin.target_kind, r.strategy);
            }
        });
        let report = SubmitReport {
            events: 1,
            ..SubmitReport::default()
        };
        let mut sorter = Sorter::new(routed.len(), None);
        for r in routed {
            sorter.route(r);
        }
        Ok(self.dispatch(report, sorter.finish(), None).await)
    }
}
