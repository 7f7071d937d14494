//! A batch: events of one tenant, converted once to their WIT form and shared by every rule
//! that evaluates them.

use std::sync::Arc;

use crate::model::event::{Operation, WriteEvent};
use crate::sandbox::bindings::wit;
use crate::sandbox::wit::{event_into_wit, event_to_wit};

/// Events of one tenant, ready to hand to rules.
#[derive(Clone)]
pub struct Batch {
    tenant: Arc<str>,
    events: Vec<wit::WriteEvent>,
    /// Resource and operation of each event, for routing without touching the WIT values.
    keys: Vec<(String, Operation)>,
}

/// The events given to [`Batch::new`] belong to more than one tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a batch holds events of one tenant: `{expected}`, but event {index} is for `{found}`")]
pub struct MixedTenants {
    pub expected: String,
    pub index: usize,
    pub found: String,
}

impl Batch {
    /// Builds a batch of `tenant`'s events; every event must carry that tenant.
    pub fn new<'a>(
        tenant: &str,
        events: impl IntoIterator<Item = &'a WriteEvent>,
    ) -> Result<Batch, MixedTenants> {
        let mut batch = Batch {
            tenant: Arc::from(tenant),
            events: Vec::new(),
            keys: Vec::new(),
        };
        for (index, event) in events.into_iter().enumerate() {
            if event.tenant != tenant {
                return Err(MixedTenants {
                    expected: tenant.to_owned(),
                    index,
                    found: event.tenant.clone(),
                });
            }
            batch.events.push(event_to_wit(event));
            batch.keys.push((event.resource.clone(), event.operation));
        }
        Ok(batch)
    }

    /// Builds a batch of `tenant`'s events, moving their strings instead of copying them.
    /// The caller guarantees every event is `tenant`'s (as [`crate::RuleSet`] does).
    pub(crate) fn from_owned(tenant: &str, events: Vec<WriteEvent>) -> Batch {
        let mut batch = Batch {
            tenant: Arc::from(tenant),
            events: Vec::with_capacity(events.len()),
            keys: Vec::with_capacity(events.len()),
        };
        for event in events {
            batch.keys.push((event.resource.clone(), event.operation));
            batch.events.push(event_into_wit(event));
        }
        batch
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Resource and operation of event `i`.
    pub fn key(&self, i: usize) -> (&str, Operation) {
        let (r, op) = &self.keys[i];
        (r.as_str(), *op)
    }

    pub(crate) fn tenant_arc(&self) -> Arc<str> {
        self.tenant.clone()
    }

    pub(crate) fn wit_events(&self) -> &[wit::WriteEvent] {
        &self.events
    }

    /// The events at `indices`, as a batch of their own (for rules that match only some).
    pub fn subset(&self, indices: &[usize]) -> Batch {
        Batch {
            tenant: self.tenant.clone(),
            events: indices.iter().map(|&i| self.events[i].clone()).collect(),
            keys: indices.iter().map(|&i| self.keys[i].clone()).collect(),
        }
    }
}
