//! Which rules and relationships apply to which tenant.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::event::WriteEvent;
use crate::relations::Relationships;
use crate::ruleset::{Evaluation, RuleSet};

/// One tenant's rules and relationship graph.
#[derive(Clone, Default)]
pub struct TenantSetup {
    pub rules: RuleSet,
    pub relationships: Relationships,
}

impl TenantSetup {
    pub fn new(rules: RuleSet) -> TenantSetup {
        TenantSetup {
            rules,
            relationships: Relationships::default(),
        }
    }

    pub fn with_relationships(mut self, relationships: Relationships) -> TenantSetup {
        self.relationships = relationships;
        self
    }
}

/// Tenant setups, with a default for tenants that have none of their own.
#[derive(Clone, Default)]
pub struct Tenants {
    default: Arc<TenantSetup>,
    by_id: HashMap<String, Arc<TenantSetup>>,
}

impl Tenants {
    /// Every tenant gets `setup`, unless given its own.
    pub fn new(default: TenantSetup) -> Tenants {
        Tenants {
            default: Arc::new(default),
            by_id: HashMap::new(),
        }
    }

    pub fn with_tenant(mut self, tenant: &str, setup: TenantSetup) -> Tenants {
        self.by_id.insert(tenant.to_owned(), Arc::new(setup));
        self
    }

    pub fn get(&self, tenant: &str) -> &Arc<TenantSetup> {
        self.by_id.get(tenant).unwrap_or(&self.default)
    }

    /// Evaluates events of any tenants, each with its tenant's rules; the reports come back
    /// in input order.
    pub fn evaluate<E: Borrow<WriteEvent>>(&self, events: &[E]) -> Evaluation {
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            groups
                .entry(e.borrow().tenant.as_str())
                .or_default()
                .push(i);
        }
        let mut reports = vec![None; events.len()];
        let mut runs = Vec::new();
        for (tenant, indices) in groups {
            let group: Vec<&WriteEvent> = indices.iter().map(|&i| events[i].borrow()).collect();
            let evaluation = self.get(tenant).rules.evaluate(&group);
            for (&i, report) in indices.iter().zip(evaluation.events) {
                reports[i] = Some(report);
            }
            runs.extend(evaluation.runs);
        }
        Evaluation {
            events: reports.into_iter().flatten().collect(),
            runs,
        }
    }
}
