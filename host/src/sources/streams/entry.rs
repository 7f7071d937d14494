//! Stream entries as Redis sends them, and what each one asks of the host.
//!
//! Replies are read from raw values, not through redis-rs's typed stream replies: those
//! need UTF-8 field names (one hostile producer's binary field name would fail every read
//! of the batch, forever) and turn an entry trimmed while pending into an error.

use redis::Value;

use super::stats::DeadLetterReason;
use crate::model::ingest::{IngestError, check_tenant};
use crate::model::{EventLimits, WriteEvent, parse_events};

/// One delivered entry. `fields` is `None` when the entry was trimmed (`MAXLEN`) while it
/// was pending: Redis still lists its id, with no data.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// A decoded entry on its way to the host: its events (taken out while a submission is
/// tried, decoded again from `raw` if it is refused) and a commit to send after them.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub id: String,
    pub label: String,
    pub raw: Vec<u8>,
    pub events: Vec<WriteEvent>,
    pub n_events: usize,
    pub commit: Option<(String, String)>,
}

impl Parsed {
    pub fn new(
        id: String,
        label: String,
        raw: Vec<u8>,
        events: Vec<WriteEvent>,
        commit: Option<(String, String)>,
    ) -> Parsed {
        Parsed {
            id,
            label,
            raw,
            n_events: events.len(),
            events,
            commit,
        }
    }
}

/// What an entry asks for.
#[derive(Debug)]
pub(crate) enum Intake {
    /// Its data is gone: acknowledge it, nothing to do.
    Deleted,
    /// Submit these events (in one submission of their own when `own` is set: a
    /// transaction's events, whose acknowledgement waits for its commit, or an entry that
    /// commits), then commit `commit` if given.
    Events {
        events: Vec<WriteEvent>,
        raw: Vec<u8>,
        own: bool,
        commit: Option<(String, String)>,
    },
    /// `commit` or `rollback` = `tenant/transaction`, without events.
    Close {
        commit: bool,
        tenant: String,
        tx: String,
    },
    /// A dead letter, with the error to file it under.
    Dead {
        reason: DeadLetterReason,
        error: String,
    },
}

/// Parses an `XREADGROUP` reply for one stream (RESP2 arrays or a RESP3 map); `Nil` (the
/// block timed out) is no entries.
pub(crate) fn parse_read(reply: Value) -> Result<Vec<Entry>, String> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.swap_remove(1)),
                other => Err(format!("unexpected stream in reply: {other:?}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Map(streams) => streams.into_iter().map(|(_, v)| v).collect(),
        other => return Err(format!("unexpected XREADGROUP reply: {other:?}")),
    };
    let mut entries = Vec::new();
    for s in streams {
        entries.extend(parse_entries(s)?);
    }
    Ok(entries)
}

/// Parses an `XAUTOCLAIM` reply: the next cursor, the claimed entries, and the ids whose
/// data was gone (Redis removed them from the pending list).
pub(crate) fn parse_autoclaim(reply: Value) -> Result<(String, Vec<Entry>, Vec<String>), String> {
    let Value::Array(mut items) = reply else {
        return Err(format!("unexpected XAUTOCLAIM reply: {reply:?}"));
    };
    if items.len() < 2 {
        return Err("XAUTOCLAIM reply has fewer than 2 items".into());
    }
    let deleted = match items.get_mut(2).map(std::mem::take) {
        Some(Value::Array(ids)) => ids.into_iter().filter_map(text).collect(),
        _ => Vec::new(),
    };
    let claimed = parse_entries(std::mem::take(&mut items[1]))?;
    let cursor = text(std::mem::take(&mut items[0])).ok_or("XAUTOCLAIM cursor is not text")?;
    Ok((cursor, claimed, deleted))
}

fn parse_entries(list: Value) -> Result<Vec<Entry>, String> {
    let Value::Array(list) = list else {
        return Err(format!("unexpected entry list: {list:?}"));
    };
    let mut entries = Vec::with_capacity(list.len());
    for item in list {
        let Value::Array(mut pair) = item else {
            continue; // XAUTOCLAIM before Redis 7 could list a deleted entry as nil
        };
        if pair.len() != 2 {
            return Err("an entry is not [id, fields]".into());
        }
        let fields = match pair.pop() {
            Some(Value::Array(flat)) => {
                let mut fields = Vec::with_capacity(flat.len() / 2);
                let mut it = flat.into_iter().map(bytes);
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    fields.push((k, v));
                }
                Some(fields)
            }
            _ => None,
        };
        let id = pair.pop().and_then(text).ok_or("an entry id is not text")?;
        entries.push(Entry { id, fields });
    }
    Ok(entries)
}

fn bytes(v: Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// Decides what `entry` asks for; `label` names it in errors (`stream s entry 1-0`).
pub(crate) fn decode(
    entry: &Entry,
    label: &str,
    limits: &EventLimits,
    max_entry_bytes: usize,
) -> Intake {
    let Some(fields) = &entry.fields else {
        return Intake::Deleted;
    };
    let size: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > max_entry_bytes {
        return dead(
            DeadLetterReason::Oversized,
            format!("{label}: {size} bytes, more than max_entry_bytes ({max_entry_bytes})"),
        );
    }
    let field = |name: &str| fields.iter().find(|(k, _)| k == name.as_bytes());
    let close = |name: &str| match field(name) {
        None => Ok(None),
        Some((_, v)) => tenant_tx(v, limits)
            .map(Some)
            .map_err(|e| format!("{label}: field `{name}`: {e}")),
    };
    let (commit, rollback) = match (close("commit"), close("rollback")) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(e), _) | (_, Err(e)) => return dead(DeadLetterReason::Malformed, e),
    };
    let Some((_, raw)) = field("event") else {
        return match (commit, rollback) {
            (Some((tenant, tx)), None) => Intake::Close {
                commit: true,
                tenant,
                tx,
            },
            (None, Some((tenant, tx))) => Intake::Close {
                commit: false,
                tenant,
                tx,
            },
            _ => dead(
                DeadLetterReason::Malformed,
                format!("{label}: needs one of the fields `event`, `commit` or `rollback`"),
            ),
        };
    };
    if rollback.is_some() {
        return dead(
            DeadLetterReason::Malformed,
            format!("{label}: `rollback` cannot travel with events (use `commit`, or no event)"),
        );
    }
    match parse_events(label, raw, limits) {
        Ok(events) => Intake::Events {
            own: commit.is_some() || events.iter().any(|e| e.transaction.is_some()),
            events,
            raw: raw.clone(),
            commit,
        },
        Err(e) => {
            let reason = match e {
                IngestError::Field { .. } => DeadLetterReason::Field,
                IngestError::TooLarge { .. } => DeadLetterReason::Oversized,
                _ => DeadLetterReason::Json,
            };
            dead(reason, e.to_string())
        }
    }
}

fn dead(reason: DeadLetterReason, error: String) -> Intake {
    Intake::Dead { reason, error }
}

/// `tenant/transaction`: the tenant is a valid tenant id (it cannot hold `/`), the
/// transaction any non-empty string within the event string cap.
fn tenant_tx(value: &[u8], limits: &EventLimits) -> Result<(String, String), String> {
    let value = std::str::from_utf8(value).map_err(|_| "not UTF-8".to_owned())?;
    let (tenant, tx) = value
        .split_once('/')
        .ok_or("expected `tenant/transaction`")?;
    check_tenant(tenant).map_err(|e| format!("tenant {e}"))?;
    if tx.is_empty() || tx.len() > limits.max_string_bytes {
        return Err(format!(
            "transaction must be 1-{} bytes",
            limits.max_string_bytes
        ));
    }
    Ok((tenant.to_owned(), tx.to_owned()))
}

/// The payload kept in a dead letter: the `event` field, or every field as `name=value`
/// lines when there is none; at most `cap` bytes.
pub(crate) fn payload(entry: &Entry, cap: usize) -> (Vec<u8>, usize) {
    let fields = entry.fields.as_deref().unwrap_or_default();
    let mut out = match fields.iter().find(|(k, _)| k == b"event") {
        Some((_, v)) => v.clone(),
        None => fields
            .iter()
            .flat_map(|(k, v)| [k.as_slice(), b"=", v.as_slice(), b"\n"])
            .flatten()
            .copied()
            .collect(),
    };
    let size = out.len();
    out.truncate(cap);
    (out, size)
}
