//! The glue [`export_rule!`](crate::export_rule) expands to: adapts a [`Rule`] to the
//! generated `Guest` trait. Public only so the macro can name it; not part of the API.

use tagbust_types::packed::Writer;

use crate::bindings::{info_to_wit, tagbust::rules::types as wit};
use crate::packed::{decode_events, refuse, write_error, write_result};
use crate::{Context, Rule};

pub use crate::bindings::exports::tagbust::rules::rule::Guest;
pub use wit::RuleInfo as WitRuleInfo;

/// The SDK and contract versions, stamped into every exported component as the custom section
/// `tagbust:sdk`, so the host can name the SDK that built a rule and refuse a contract it does
/// not speak before running anything.
pub const STAMP_TEXT: &str = concat!(
    "sdk=",
    env!("CARGO_PKG_VERSION"),
    ";contract=",
    "0.2.0",
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

/// Bytes reserved per event for the results buffer up front (a few short targets), so it
/// rarely grows.
const RESULT_BYTES_PER_EVENT: usize = 96;

/// `evaluate` for rule `R` over a packed events buffer: one `init` per batch, then one
/// `evaluate` per event; the answer is the packed results buffer.
pub fn evaluate<R: Rule>(events: &[u8]) -> Vec<u8> {
    let events = match decode_events(events) {
        Ok(events) => events,
        Err(e) => return refuse(events, &e),
    };
    let mut out = Writer::with_capacity(4 + events.len() * RESULT_BYTES_PER_EVENT);
    out.len(events.len());
    let ctx = &Context::host();
    let rule = match R::init(ctx) {
        Ok(rule) => rule,
        Err(e) => {
            for _ in &events {
                write_error(&mut out, &e);
            }
            return out.buf;
        }
    };
    let default = R::info().default_strategy;
    for event in &events {
        write_result(&mut out, &rule.evaluate(event, ctx), default);
    }
    out.buf
}
