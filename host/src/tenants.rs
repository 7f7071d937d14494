//! Which rules and relationships apply to which tenant.

use std::collections::HashMap;
use std::sync::Arc;

use crate::relations::Relationships;
use crate::ruleset::RuleSet;

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
}
