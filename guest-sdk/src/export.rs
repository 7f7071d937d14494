//! The glue [`export_rule!`](crate::export_rule) expands to: adapts a [`Rule`] to the
//! generated `Guest` trait. Public only so the macro can name it; not part of the API.

use crate::bindings::{
    decision_to_wit, error_to_wit, event_from_wit, info_to_wit, tagbust::rules::types as wit,
};
use crate::{Context, Rule};

pub use crate::bindings::exports::tagbust::rules::rule::Guest;
pub use wit::WriteEvent as WitWriteEvent;
pub use wit::{RuleError as WitRuleError, RuleInfo as WitRuleInfo, Target as WitTarget};

/// The SDK and contract versions, stamped into every exported component as the custom section
/// `tagbust:sdk`, so the host can name the SDK that built a rule and refuse a contract it does
/// not speak before running anything.
pub const STAMP_TEXT: &str = concat!(
    "sdk=",
    env!("CARGO_PKG_VERSION"),
    ";contract=",
    "0.1.0",
    ";language=rust"
);
pub const STAMP_LEN: usize = STAMP_TEXT.len();
pub const STAMP: [u8; STAMP_LEN] = {
    let bytes = STAMP_TEXT.as_bytes();
    let mut out = [0u8; STAMP_LEN];
    let mut i = 0;
    while i < STAMP_LEN {
        out[i] = bytes[i];
        i += 1;
    }
    out
};

/// `describe` for rule `R`.
pub fn describe<R: Rule>() -> WitRuleInfo {
    info_to_wit(R::info())
}

/// `evaluate` for rule `R`: one `init` per batch, then one `evaluate` per event.
pub fn evaluate<R: Rule>(events: Vec<WitWriteEvent>) -> Vec<Result<Vec<WitTarget>, WitRuleError>> {
    let ctx = &Context::host();
    let default = R::info().default_strategy;
    let rule = match R::init(ctx) {
        Ok(rule) => rule,
        Err(e) => {
            let e = error_to_wit(e);
            return events.iter().map(|_| Err(e.clone())).collect();
        }
    };
    events
        .into_iter()
        .map(|e| {
            let event = event_from_wit(e);
            rule.evaluate(&event, ctx)
                .map(|d| decision_to_wit(d, default))
                .map_err(error_to_wit)
        })
        .collect()
}
