//! The host side of the `tagbust:rules` WIT contract, one `bindgen!` per version the host
//! speaks, and nothing else. The import implementations live in [`crate::sandbox::imports`]
//! (written once, against 0.1); [`crate::sandbox::v0_2`] adapts 0.2 to them.
//!
//! Everything is synchronous: rules are CPU-bound and never wait on the host, so there is no
//! fiber per call, and imports cannot trap (they only read config and write logs).

/// Contract 0.1: typed events and decisions (`wit/rules.wit`).
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "rule-component",
    });
}

/// Contract 0.2: the packed batch encoding (`wit/0.2/rules.wit`).
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2",
        world: "rule-component",
    });
}

pub use self::v0_1::tagbust::rules::types as wit;

/// The contract versions this host speaks. WIT semver: `0.x.y` guests are compatible with
/// `0.x.z`.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1", "0.2"];

/// The exported interface every rule must provide, without its version.
pub const RULE_INTERFACE: &str = "tagbust:rules/rule";
