//! Contract 0.2's packed batch encoding, the SDK's half: reading the events buffer into
//! [`WriteEvent`]s (in place inside a component) and writing the results buffer from [`Decision`]s. The format is specified
//! in `wit/0.2/rules.wit`; the building blocks are shared with the host
//! ([`tagbust_types::packed`]). Rule code never sees any of it.
//!
//! Public (hidden) so the tests can fuzz it natively: a malformed buffer from the host is a
//! [`PackError`], never a panic.

use tagbust_types::packed::{ErrorKind, MIN_EVENT_BYTES, PackError, PackedTarget, Reader, Writer};

use crate::{Decision, FieldChange, RuleError, Strategy, Text, WriteEvent};

/// Reads a whole events buffer into events that own their strings.
pub fn decode_events(buf: &[u8]) -> Result<Vec<WriteEvent>, PackError> {
    decode_with(buf, Text::from)
}

/// Reads a whole events buffer that lives as long as the program (inside a component: the
/// batch's buffer, kept until the instance is dropped): the events' [`Text`]s are views into
/// it, validated once and never copied. Reads exactly what [`decode_events`] reads.
pub fn decode_events_in_place(buf: &'static [u8]) -> Result<Vec<WriteEvent>, PackError> {
    decode_with(buf, Text::borrowed)
}

fn decode_with<'a>(
    buf: &'a [u8],
    text: impl Fn(&'a str) -> Text + Copy,
) -> Result<Vec<WriteEvent>, PackError> {
    let mut r = Reader::new(buf);
    let n = r.count(MIN_EVENT_BYTES, "an event count")?;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(read_event(&mut r, text)?);
    }
    r.finish()?;
    Ok(events)
}

fn read_event<'a>(
    r: &mut Reader<'a>,
    text: impl Fn(&'a str) -> Text,
) -> Result<WriteEvent, PackError> {
    let tenant = text(r.str("a tenant")?);
    let resource = text(r.str("a resource")?);
    let operation = r.operation()?;
    let n = r.count(4, "an id count")?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(r.str("an id")?.to_owned());
    }
    let n = r.count(6, "a change count")?;
    let mut changes = Vec::with_capacity(n);
    for _ in 0..n {
        changes.push(FieldChange {
            field: r.str("a changed field")?.to_owned(),
            old: r.opt_str("an old value")?.map(str::to_owned),
            new: r.opt_str("a new value")?.map(str::to_owned),
        });
    }
    let n = r.count(8, "a context count")?;
    let mut context = Vec::with_capacity(n);
    for _ in 0..n {
        let key = text(r.str("a context key")?);
        context.push((key, text(r.str("a context value")?)));
    }
    Ok(WriteEvent {
        tenant,
        resource,
        operation,
        ids,
        changes,
        context,
        transaction: r.opt_str("a transaction")?.map(text),
        timestamp_ms: r.u64("a timestamp")?,
    })
}

/// Writes one result; targets without a strategy get `default`.
pub fn write_result(out: &mut Writer, result: &Result<Decision, RuleError>, default: Strategy) {
    match result {
        Ok(decision) => out.ok_targets(decision.targets().iter().map(|t| PackedTarget {
            kind: t.kind,
            strategy: t.strategy.unwrap_or(default),
            cascade: t.cascade,
            value: &t.value,
        })),
        Err(e) => write_error(out, e),
    }
}

/// The bytes [`write_result`] writes for `result`.
pub fn result_len(result: &Result<Decision, RuleError>) -> usize {
    match result {
        Ok(d) => {
            1 + 4
                + d.targets()
                    .iter()
                    .map(|t| 3 + 4 + t.value.len())
                    .sum::<usize>()
        }
        Err(RuleError::InvalidEvent(m) | RuleError::Config(m) | RuleError::Other(m)) => {
            1 + 1 + 4 + m.len()
        }
    }
}

/// Writes one rule error.
pub fn write_error(out: &mut Writer, error: &RuleError) {
    let (kind, message) = match error {
        RuleError::InvalidEvent(m) => (ErrorKind::InvalidEvent, m),
        RuleError::Config(m) => (ErrorKind::Config, m),
        RuleError::Other(m) => (ErrorKind::Other, m),
    };
    out.err(kind, message);
}

/// The answer to an events buffer the SDK cannot read: every event it can count fails with an
/// `invalid-event` error naming the fault (none, when even the count is unreadable, which the
/// host refuses as a count mismatch).
pub fn refuse(buf: &[u8], error: &PackError) -> Vec<u8> {
    let n = Reader::new(buf)
        .count(MIN_EVENT_BYTES, "an event count")
        .unwrap_or(0);
    let mut out = Writer::default();
    out.len(n);
    let e = RuleError::InvalidEvent(format!("the host sent {error}"));
    for _ in 0..n {
        write_error(&mut out, &e);
    }
    out.buf
}
