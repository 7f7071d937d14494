//! Turning a failed call into the typed reason a person can act on ([`RuleFailure`]).

use wasmtime::{Store, Trap};

use super::limits::{Limits, MAX_PANIC_MESSAGE};
use super::store::StoreState;
use crate::model::RuleFailure;
use crate::model::text::truncate;

/// Maps a failed call to the reason a person can act on.
pub(crate) fn classify(
    store: &Store<StoreState>,
    error: wasmtime::Error,
    limits: &Limits,
) -> RuleFailure {
    if store.data().limiter.denied {
        return RuleFailure::MemoryExceeded {
            limit_bytes: limits.memory_bytes as u64,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RuleFailure::Timeout {
            deadline_ms: u64::try_from(limits.deadline.as_millis()).unwrap_or(u64::MAX),
        },
        Some(Trap::StackOverflow) => RuleFailure::StackOverflow,
        Some(Trap::MemoryOutOfBounds) => RuleFailure::OutOfBounds,
        Some(Trap::OutOfFuel) => RuleFailure::FuelExhausted {
            fuel: limits.fuel.unwrap_or(0),
        },
        Some(Trap::UnreachableCodeReached) => RuleFailure::Panic {
            message: panic_message(&store.data().stderr.contents()),
        },
        Some(trap) => RuleFailure::Trap {
            message: trap.to_string(),
        },
        None => {
            let message = format!("{error:#}");
            // wasmtime's error type for this is private; its message is pinned with the version.
            if message.contains("fuel allocated for hostcalls has been exhausted") {
                RuleFailure::TransferTooLarge {
                    limit_bytes: limits.max_output_bytes as u64,
                }
            } else {
                RuleFailure::Trap { message }
            }
        }
    }
}

/// The useful part of what a panicking Rust guest printed: the message, without the
/// backtrace hint.
fn panic_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with"))
        .collect();
    if lines.is_empty() {
        return "unreachable instruction executed".to_owned();
    }
    truncate(&lines.join(" "), MAX_PANIC_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_message_keeps_the_message_and_drops_the_hint() {
        let raw = b"\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(raw),
            "thread '<unnamed>' panicked at src/lib.rs:3:5: boom"
        );
        assert_eq!(panic_message(b""), "unreachable instruction executed");
    }
}
