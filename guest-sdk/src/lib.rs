//! # tagbust-guest: write cache-invalidation rules in plain Rust
//!
//! A rule looks at one database write event and says which cached data must die. You implement
//! [`Rule`] with ordinary Rust types, export it with one macro, and build the crate for
//! `wasm32-wasip2`; the result is a WebAssembly component the tagbust host runs sandboxed.
//!
//! ```
//! use tagbust_guest::{Context, Decision, Operation, Rule, RuleError, RuleInfo, WriteEvent};
//!
//! pub struct PublishedFeeds;
//!
//! impl Rule for PublishedFeeds {
//!     fn info() -> RuleInfo {
//!         RuleInfo::new("published-feeds", "1.0.0").resources(["posts"])
//!     }
//!     fn init(_: &Context) -> Result<Self, RuleError> {
//!         Ok(PublishedFeeds)
//!     }
//!     fn evaluate(&self, event: &WriteEvent, _: &Context) -> Result<Decision, RuleError> {
//!         if event.changed_to("status", "published") {
//!             return Ok(Decision::new().tag("feed:home"));
//!         }
//!         Ok(Decision::new())
//!     }
//! }
//!
//! tagbust_guest::export_rule!(PublishedFeeds);
//!
//! // The same logic, tested natively: no wasm needed.
//! let event = WriteEvent::new("acme", "posts", Operation::Update)
//!     .with_change("status", Some("draft"), Some("published"));
//! let decision = PublishedFeeds.evaluate(&event, &Context::empty()).unwrap();
//! assert_eq!(decision.targets()[0].value, "feed:home");
//! ```
//!
//! Build the component with `cargo build --target wasm32-wasip2 --release` (a `cdylib` crate).
//!
//! ## Layout
//!
//! - [`event`]: [`WriteEvent`], [`Operation`], [`FieldChange`].
//! - [`text`]: [`Text`], the event's strings that a component reads in place.
//! - [`decision`]: [`Decision`] (a deduplicating builder), [`Target`], [`Strategy`].
//! - [`rule`]: the [`Rule`] trait, [`RuleInfo`], [`RuleError`], and the host [`Context`].
//! - [`template`]: key templates such as `"{run_id}:summary"`.
//! - `arena` (wasm only, feature `arena`): the bump allocator every batch's fresh instance
//!   uses.
//! - `bindings`, `export`, `packed`: wit-bindgen output (contract 0.2), the glue
//!   [`export_rule!`] expands to, and the packed batch encoding; rule authors never touch
//!   wit-bindgen or the encoding.

extern crate self as tagbust_guest;

#[cfg(all(target_arch = "wasm32", feature = "arena"))]
mod arena;

#[doc(hidden)]
pub mod bindings;
pub mod decision;
pub mod event;
mod export;
#[doc(hidden)]
pub mod packed;
pub mod rule;
pub mod template;
pub mod text;

pub use decision::{Decision, Strategy, Target, TargetKind};
pub use event::{FieldChange, Operation, WriteEvent};
pub use rule::{Context, Level, LogRecord, Rule, RuleError, RuleInfo};
pub use text::Text;

/// The version of the `tagbust:rules` WIT contract this SDK builds against.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The SDK's own version, stamped into every component it exports.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Not part of the API: what [`export_rule!`] expands to needs these paths.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::export::*;
    pub use wit_bindgen;
}

/// Exports a [`Rule`] as the component's `tagbust:rules/rule` implementation.
///
/// Use it once per crate, at the top level: `tagbust_guest::export_rule!(MyRule);`. On the
/// native target it only checks that the type is a [`Rule`], so the crate still unit-tests with
/// plain `cargo test`.
///
/// A type that is not a rule is a compile error at the type:
///
/// ```compile_fail
/// struct NotARule;
/// tagbust_guest::export_rule!(NotARule);
/// ```
///
/// So is a call without exactly one type:
///
/// ```compile_fail
/// tagbust_guest::export_rule!();
/// ```
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        const _: () = {
            const fn must_implement_tagbust_guest_rule<R: $crate::Rule>() {}
            must_implement_tagbust_guest_rule::<$rule>();
        };
        $crate::__export_component!($rule);
    };
    () => {
        ::core::compile_error!(
            "export_rule! takes the rule type: `tagbust_guest::export_rule!(MyRule);`"
        );
    };
    ($($other:tt)+) => {
        ::core::compile_error!(
            "export_rule! takes exactly one type that implements tagbust_guest::Rule"
        );
    };
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($rule:ty) => {
        const _: () = {
            struct TagbustRuleExport;

            impl $crate::__private::Guest for TagbustRuleExport {
                fn describe() -> $crate::__private::WitRuleInfo {
                    $crate::__private::describe::<$rule>()
                }

                fn evaluate(events: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                    $crate::__private::evaluate::<$rule>(events)
                }
            }

            $crate::__private::bindings::__export_rule_component!(
                TagbustRuleExport with_types_in $crate::__private::bindings
            );

            #[used]
            #[unsafe(link_section = "tagbust:sdk")]
            static TAGBUST_SDK_STAMP: [u8; $crate::__private::STAMP_LEN] = $crate::__private::STAMP;
        };
    };
}

#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($rule:ty) => {};
}
