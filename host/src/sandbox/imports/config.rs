//! `tagbust:rules/config`: read-only per-tenant configuration of a rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::sandbox::bindings::v0_1::tagbust::rules::config::Host;
use crate::sandbox::store::StoreState;

/// One tenant's configuration of one rule: string keys to string values (structured values
/// are JSON text the rule parses). Shared, read-only, cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleConfig {
    entries: Arc<BTreeMap<String, String>>,
}

impl RuleConfig {
    pub fn new(entries: BTreeMap<String, String>) -> Self {
        RuleConfig {
            entries: Arc::new(entries),
        }
    }

    /// Builds a config from a JSON object: string values are kept as they are, any other
    /// value is stored as its JSON text.
    pub fn from_json_object(object: &serde_json::Map<String, serde_json::Value>) -> Self {
        let entries = object
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect();
        RuleConfig::new(entries)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Host for StoreState {
    fn get(&mut self, key: String) -> Option<String> {
        self.guest.config.get(&key).map(str::to_owned)
    }

    fn keys(&mut self) -> Vec<String> {
        self.guest.config.keys().map(str::to_owned).collect()
    }
}
