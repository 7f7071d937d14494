//! A batch: events of one tenant, converted at most once to each contract version's form
//! (0.1's WIT values, 0.2's packed buffer) and shared by every rule that evaluates them.

use std::sync::{Arc, OnceLock};

use crate::model::event::{Operation, WriteEvent};
use crate::sandbox::bindings::wit;
use crate::sandbox::v0_2::encode_events;
use crate::sandbox::wit::event_to_wit;

/// Events of one tenant, ready to hand to rules.
#[derive(Clone)]
pub struct Batch {
    tenant: Arc<str>,
    events: Vec<WriteEvent>,
    /// Contract 0.1's form, built when a 0.1 rule first needs it.
    wit: OnceLock<Vec<wit::WriteEvent>>,
    /// Contract 0.2's packed form, built when a 0.2 rule first needs it.
    packed: OnceLock<Vec<u8>>,
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
        let mut owned = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            if event.tenant != tenant {
                return Err(MixedTenants {
                    expected: tenant.to_owned(),
                    index,
                    found: event.tenant.clone(),
                });
            }
            owned.push(event.clone());
        }
        Ok(Batch::from_owned(tenant, owned))
    }

    /// Builds a batch of `tenant`'s events, taking them over instead of copying them.
    /// The caller guarantees every event is `tenant`'s (as [`crate::RuleSet`] does).
    pub(crate) fn from_owned(tenant: &str, events: Vec<WriteEvent>) -> Batch {
        Batch {
            tenant: Arc::from(tenant),
            events,
            wit: OnceLock::new(),
            packed: OnceLock::new(),
        }
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
        let e = &self.events[i];
        (e.resource.as_str(), e.operation)
    }

    pub(crate) fn tenant_arc(&self) -> Arc<str> {
        self.tenant.clone()
    }

    /// The events as contract 0.1's WIT values.
    pub(crate) fn wit_events(&self) -> &[wit::WriteEvent] {
        self.wit
            .get_or_init(|| self.events.iter().map(event_to_wit).collect())
    }

    /// The events as contract 0.2's packed buffer.
    pub(crate) fn packed(&self) -> &[u8] {
        self.packed
            .get_or_init(|| encode_events(self.events.iter()))
    }

    /// The events at `indices`, as a batch of their own (for rules that match only some).
    pub fn subset(&self, indices: &[usize]) -> Batch {
        Batch::from_owned(
            &self.tenant,
            indices.iter().map(|&i| self.events[i].clone()).collect(),
        )
    }
}
