//! The glue [`export_rule!`](crate::export_rule) expands to: adapts a [`Rule`] to the
//! generated `Guest` trait. Public only so the macro can name it; not part of the API.

use tagbust_types::packed::Writer;

use crate::bindings::{info_to_wit, tagbust::rules::types as wit};
use crate::packed::{decode_events, decode_events_in_place, refuse, result_len, write_result};
use crate::{Context, Decision, Rule, RuleError};

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

/// `evaluate` for rule `R` over a packed events buffer: one `init` per batch, then one
/// `evaluate` per event; the answer is the packed results buffer, sized exactly before it is
/// written (no growth copies: a large answer needs its own size once more, not twice).
///
/// Inside a component the buffer is kept until the instance is dropped (the host runs every
/// batch in a fresh one), so the events read their strings in place from it.
pub fn evaluate<R: Rule>(events: Vec<u8>) -> Vec<u8> {
    let decoded = if cfg!(target_arch = "wasm32") {
        let kept: &'static [u8] = events.leak();
        decode_events_in_place(kept).map_err(|e| refuse(kept, &e))
    } else {
        decode_events(&events).map_err(|e| refuse(&events, &e))
    };
    let events = match decoded {
        Ok(events) => events,
        Err(refusal) => return refusal,
    };
    let ctx = &Context::host();
    let results: Vec<Result<Decision, RuleError>> = match R::init(ctx) {
        Ok(rule) => events.iter().map(|e| rule.evaluate(e, ctx)).collect(),
        Err(e) => events.iter().map(|_| Err(e.clone())).collect(),
    };
    release(events);
    let size = 4 + results.iter().map(result_len).sum::<usize>();
    let mut out = Writer::with_capacity(size);
    out.len(results.len());
    let default = R::info().default_strategy;
    for result in &results {
        write_result(&mut out, result, default);
    }
    release(results);
    out.buf
}

/// Drops what a batch no longer needs. With the arena, whose memory is never reused within a
/// batch and dies with the instance, freeing thousands of small strings one by one is pure
/// cost, so they are left in place.
fn release<T>(value: T) {
    if cfg!(all(target_arch = "wasm32", feature = "arena")) {
        std::mem::forget(value);
    } else {
        drop(value);
    }
}
