//! How a rule introduces itself: what its `describe()` returned. Defined once, in
//! `tagbust-types`, for the SDK that builds it and the host that reads it. And how the host
//! names one build of a rule in everything it produced ([`RuleRef`]).

use std::fmt;
use std::sync::Arc;

use serde::ser::{SerializeStruct, Serializer};

pub use tagbust_types::RuleInfo;

/// Which rule said something, and which build of it: name, version, and the sha256 of its
/// component in lower-case hex.
///
/// Made once per loaded rule and shared by every outcome, plan entry and origin the rule
/// produces. The three strings sit behind one reference count: each of those values is
/// cloned and dropped per target, on two threads, and three counts to touch cost a measured
/// share of the pipeline's work (ARCHITECTURE.md, Performance notes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RuleRef(Arc<Ident>);

#[derive(PartialEq, Eq, Hash)]
struct Ident {
    name: Box<str>,
    version: Box<str>,
    sha256: Box<str>,
}

impl RuleRef {
    pub fn new(name: &str, version: &str, sha256: &str) -> RuleRef {
        RuleRef(Arc::new(Ident {
            name: name.into(),
            version: version.into(),
            sha256: sha256.into(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn version(&self) -> &str {
        &self.0.version
    }

    /// The sha256 of the rule's component, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.0.sha256
    }

    /// Serialises as the fields `rule`, `version` and `sha256` (a rule's outcome); use with
    /// `#[serde(flatten, serialize_with = ...)]`.
    pub fn as_outcome_fields<S: Serializer>(r: &RuleRef, s: S) -> Result<S::Ok, S::Error> {
        r.fields(s, ["rule", "version", "sha256"])
    }

    /// Serialises as the fields `rule`, `rule_version` and `rule_sha256` (a plan entry or
    /// an origin, where `version` alone would be ambiguous).
    pub fn as_target_fields<S: Serializer>(r: &RuleRef, s: S) -> Result<S::Ok, S::Error> {
        r.fields(s, ["rule", "rule_version", "rule_sha256"])
    }

    fn fields<S: Serializer>(&self, s: S, names: [&'static str; 3]) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RuleRef", 3)?;
        st.serialize_field(names[0], self.name())?;
        st.serialize_field(names[1], self.version())?;
        st.serialize_field(names[2], self.sha256())?;
        st.end()
    }
}

impl fmt::Debug for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} ({})", self.name(), self.version(), self.sha256())
    }
}

/// The rule's name (for logs).
impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Outcome {
        #[serde(flatten, serialize_with = "RuleRef::as_outcome_fields")]
        rule: RuleRef,
        n: u8,
    }

    #[derive(Serialize)]
    struct Target {
        n: u8,
        #[serde(flatten, serialize_with = "RuleRef::as_target_fields")]
        rule: RuleRef,
    }

    #[test]
    fn flattens_under_either_naming_in_place() {
        let rule = RuleRef::new("feeds", "1.2.0", "ab");
        let outcome = serde_json::to_string(&Outcome {
            rule: rule.clone(),
            n: 1,
        })
        .unwrap();
        assert_eq!(
            outcome,
            r#"{"rule":"feeds","version":"1.2.0","sha256":"ab","n":1}"#
        );
        let target = serde_json::to_string(&Target { n: 1, rule }).unwrap();
        assert_eq!(
            target,
            r#"{"n":1,"rule":"feeds","rule_version":"1.2.0","rule_sha256":"ab"}"#
        );
    }

    #[test]
    fn equal_by_value_not_only_by_pointer() {
        assert_eq!(RuleRef::new("a", "1", "00"), RuleRef::new("a", "1", "00"));
        assert_ne!(RuleRef::new("a", "1", "00"), RuleRef::new("a", "1", "01"));
    }
}
