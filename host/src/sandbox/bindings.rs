//! The host side of the `tagbust:rules` WIT contract. This module runs `bindgen!` and nothing
//! else; the import implementations live in [`crate::imports`], one file per interface.
//!
//! Everything is synchronous: rules are CPU-bound and never wait on the host, so there is no
//! fiber per call, and imports cannot trap (they only read config and write logs).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "rule-component",
});

pub use self::tagbust::rules::types as wit;

/// The contract versions this host speaks. WIT semver: `0.1.x` guests are all compatible.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1"];

/// The exported interface every rule must provide, without its version.
pub const RULE_INTERFACE: &str = "tagbust:rules/rule";
