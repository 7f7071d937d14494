//! The write event a rule sees: ordinary Rust, identical on wasm and on the native target.

pub use tagbust_types::{FieldChange, Operation};

use crate::Text;

/// One write to the source of truth, as the host hands it to a rule.
///
/// The tenant, resource, context and transaction are [`Text`]: inside a component, views of
/// the batch the host sent (nothing copied); they read like `&str`. Ids and changes are
/// `String`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteEvent {
    pub tenant: Text,
    pub resource: Text,
    pub operation: Operation,
    pub ids: Vec<String>,
    pub changes: Vec<FieldChange>,
    pub context: Vec<(Text, Text)>,
    pub transaction: Option<Text>,
    pub timestamp_ms: u64,
}

impl WriteEvent {
    /// A bare event, for tests and examples; fill the rest with the `with_*` methods.
    pub fn new(tenant: &str, resource: &str, operation: Operation) -> Self {
        WriteEvent {
            tenant: tenant.into(),
            resource: resource.into(),
            operation,
            ids: Vec::new(),
            changes: Vec::new(),
            context: Vec::new(),
            transaction: None,
            timestamp_ms: 0,
        }
    }

    /// Adds affected ids.
    pub fn with_ids<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.ids.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Adds a changed field.
    pub fn with_change(mut self, field: &str, old: Option<&str>, new: Option<&str>) -> Self {
        self.changes.push(FieldChange {
            field: field.to_owned(),
            old: old.map(str::to_owned),
            new: new.map(str::to_owned),
        });
        self
    }

    /// Adds a context pair.
    pub fn with_context(mut self, key: &str, value: &str) -> Self {
        self.context.push((key.into(), value.into()));
        self
    }

    /// The change to `field`, if the write touched it.
    pub fn change(&self, field: &str) -> Option<&FieldChange> {
        self.changes.iter().find(|c| same(&c.field, field))
    }

    /// True when the write changed `field` at all (its old and new values differ).
    pub fn changed(&self, field: &str) -> bool {
        self.change(field)
            .is_some_and(|c| !same_opt(c.old.as_deref(), c.new.as_deref()))
    }

    /// True when the write moved `field` to `value` from something else.
    pub fn changed_to(&self, field: &str, value: &str) -> bool {
        self.change(field).is_some_and(|c| {
            same_opt(c.new.as_deref(), Some(value)) && !same_opt(c.old.as_deref(), Some(value))
        })
    }

    /// The writer's context value under `key`.
    pub fn context(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| same(k, key))
            .map(|(_, v)| v.as_str())
    }

    /// True when the event stands for every row of its resource rather than for its ids
    /// (a `TRUNCATE` from the PostgreSQL source: a bulk delete naming no ids, marked with
    /// context `tagbust.scope = resource`).
    pub fn is_whole_resource(&self) -> bool {
        tagbust_types::is_whole_resource(|k| self.context(k))
    }
}

/// String equality without a call to `memcmp`. The helpers above compare short field names
/// and values; compiled to wasm, `memcmp` is a byte loop behind a call, about 200 host
/// instructions for a 9-byte key (callgrind, published-feeds), against a few for the inline
/// word compare here.
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut a8 = a.chunks_exact(8);
    let mut b8 = b.chunks_exact(8);
    for (x, y) in (&mut a8).zip(&mut b8) {
        if word(x) != word(y) {
            return false;
        }
    }
    a8.remainder()
        .iter()
        .zip(b8.remainder())
        .all(|(x, y)| x == y)
}

#[inline]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_ne_bytes(w)
}

#[inline]
fn same_opt(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_agrees_with_eq() {
        let words = [
            "",
            "a",
            "status",
            "publishe",
            "published",
            "publishee",
            "author_id!",
            "é✓",
        ];
        for a in words {
            for b in words {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
                assert_eq!(same_opt(Some(a), Some(b)), a == b);
            }
            assert!(!same_opt(Some(a), None));
        }
        assert!(same_opt(None, None));
        let long = "x".repeat(40);
        assert!(same(&long, &"x".repeat(40)));
        assert!(!same(&long, &format!("{}y", "x".repeat(39))));
    }
}
