//! Write events as the host receives them: serde types with the JSON shape users write.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What a write did. Bulk forms are first-class, so no rule can forget them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Upsert,
    BulkCreate,
    BulkUpdate,
    BulkDelete,
    BulkUpsert,
}

impl Operation {
    /// The snake_case name used in JSON (`bulk_delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Upsert => "upsert",
            Operation::BulkCreate => "bulk_create",
            Operation::BulkUpdate => "bulk_update",
            Operation::BulkDelete => "bulk_delete",
            Operation::BulkUpsert => "bulk_upsert",
        }
    }

    /// True for the bulk forms.
    pub fn is_bulk(self) -> bool {
        matches!(
            self,
            Operation::BulkCreate
                | Operation::BulkUpdate
                | Operation::BulkDelete
                | Operation::BulkUpsert
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One changed field; `old` is absent for a create, `new` for a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    pub field: String,
    #[serde(default)]
    pub old: Option<String>,
    #[serde(default)]
    pub new: Option<String>,
}

/// One write to the source of truth.
///
/// JSON: `{"tenant":"acme","resource":"posts","operation":"bulk_delete","ids":["1","2"],
/// "changes":[{"field":"status","old":"draft","new":"done"}],"context":{"run":"300"},
/// "transaction":"tx-9","timestamp_ms":0}`; everything after `operation` is optional, and
/// unknown fields are refused so a typo cannot silently drop data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteEvent {
    pub tenant: String,
    pub resource: String,
    pub operation: Operation,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub changes: Vec<FieldChange>,
    /// A key given twice is refused rather than silently keeping the last value.
    #[serde(default, deserialize_with = "unique_keys")]
    pub context: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    #[serde(default)]
    pub timestamp_ms: u64,
}

impl WriteEvent {
    /// A bare event; fill the public fields for the rest.
    pub fn new(tenant: &str, resource: &str, operation: Operation) -> Self {
        WriteEvent {
            tenant: tenant.to_owned(),
            resource: resource.to_owned(),
            operation,
            ids: Vec::new(),
            changes: Vec::new(),
            context: BTreeMap::new(),
            transaction: None,
            timestamp_ms: 0,
        }
    }
}

/// Deserializes a string map, refusing a key that appears twice (serde's own map impl keeps
/// the last value and drops the others without a word).
fn unique_keys<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of string values")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                if out.contains_key(&k) {
                    let k = crate::convert::truncate(&k, 64);
                    return Err(serde::de::Error::custom(format_args!(
                        "duplicate key `{k}`"
                    )));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    de.deserialize_map(Unique)
}
