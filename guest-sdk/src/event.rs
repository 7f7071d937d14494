//! The write event a rule sees: ordinary Rust, identical on wasm and on the native target.

pub use tagbust_types::{FieldChange, Operation};

/// One write to the source of truth, as the host hands it to a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteEvent {
    pub tenant: String,
    pub resource: String,
    pub operation: Operation,
    pub ids: Vec<String>,
    pub changes: Vec<FieldChange>,
    pub context: Vec<(String, String)>,
    pub transaction: Option<String>,
    pub timestamp_ms: u64,
}

impl WriteEvent {
    /// A bare event, for tests and examples; fill the rest with the `with_*` methods.
    pub fn new(tenant: &str, resource: &str, operation: Operation) -> Self {
        WriteEvent {
            tenant: tenant.to_owned(),
            resource: resource.to_owned(),
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
        self.context.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The change to `field`, if the write touched it.
    pub fn change(&self, field: &str) -> Option<&FieldChange> {
        self.changes.iter().find(|c| c.field == field)
    }

    /// True when the write changed `field` at all (its old and new values differ).
    pub fn changed(&self, field: &str) -> bool {
        self.change(field).is_some_and(|c| c.old != c.new)
    }

    /// True when the write moved `field` to `value` from something else.
    pub fn changed_to(&self, field: &str, value: &str) -> bool {
        self.change(field)
            .is_some_and(|c| c.new.as_deref() == Some(value) && c.old.as_deref() != Some(value))
    }

    /// The writer's context value under `key`.
    pub fn context(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when the event stands for every row of its resource rather than for its ids
    /// (a `TRUNCATE` from the PostgreSQL source: a bulk delete naming no ids, marked with
    /// context `tagbust.scope = resource`).
    pub fn is_whole_resource(&self) -> bool {
        tagbust_types::is_whole_resource(|k| self.context(k))
    }
}
