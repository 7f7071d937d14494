//! How a rule introduces itself: what its `describe()` returned. Defined once, in
//! `tagbust-types`, for the SDK that builds it and the host that reads it.

pub use tagbust_types::RuleInfo;
