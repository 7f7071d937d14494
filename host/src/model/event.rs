//! Write events as the host receives them: serde types with the JSON shape users write.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub use tagbust_types::{FieldChange, Operation};

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
                    let k = crate::model::text::truncate(&k, 64);
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
