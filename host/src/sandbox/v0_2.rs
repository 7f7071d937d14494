//! The adapter for contract 0.2 (`wit/0.2/rules.wit`): everything that differs from 0.1, in
//! one place, the way Zed and Spin keep one thin file per contract version.
//!
//! - The imports (`log`, `config`) are 0.1's, unchanged: their 0.2 host traits forward to the
//!   0.1 implementations in [`crate::sandbox::imports`].
//! - `describe` answers the same record; [`info_into_v0_1`] converts it, so validation and the
//!   host's `RuleInfo` are shared.
//! - `evaluate` takes and returns one byte buffer each way ([`encode_events`],
//!   [`decode_results`]): one guest `realloc` per batch instead of one per string. A results
//!   buffer is the guest's, so it is untrusted: anything malformed is a typed failure, and the
//!   per-event caps hold exactly as for 0.1.

use tagbust_types::packed::{
    ErrorKind, MIN_RESULT_BYTES, MIN_TARGET_BYTES, PackError, Reader, Writer,
};

use crate::model::event::WriteEvent;
use crate::model::failure::{RuleErrorKind, RuleFailure};
use crate::model::target::Target;
use crate::model::text::truncate;
use crate::sandbox::bindings::v0_1::tagbust::rules::{config as config01, log as log01};
use crate::sandbox::bindings::v0_2::tagbust::rules::{config, log, types};
use crate::sandbox::bindings::wit;
use crate::sandbox::limits::MAX_ERROR_MESSAGE;
use crate::sandbox::store::StoreState;

impl log::Host for StoreState {
    fn write(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            log::Level::Trace => log01::Level::Trace,
            log::Level::Debug => log01::Level::Debug,
            log::Level::Info => log01::Level::Info,
            log::Level::Warn => log01::Level::Warn,
            log::Level::Error => log01::Level::Error,
        };
        log01::Host::write(self, level, message, fields);
    }
}

impl config::Host for StoreState {
    fn get(&mut self, key: String) -> Option<String> {
        config01::Host::get(self, key)
    }

    fn keys(&mut self) -> Vec<String> {
        config01::Host::keys(self)
    }
}

impl types::Host for StoreState {}

fn operation_into_v0_1(op: types::Operation) -> wit::Operation {
    match op {
        types::Operation::Create => wit::Operation::Create,
        types::Operation::Update => wit::Operation::Update,
        types::Operation::Delete => wit::Operation::Delete,
        types::Operation::Upsert => wit::Operation::Upsert,
        types::Operation::BulkCreate => wit::Operation::BulkCreate,
        types::Operation::BulkUpdate => wit::Operation::BulkUpdate,
        types::Operation::BulkDelete => wit::Operation::BulkDelete,
        types::Operation::BulkUpsert => wit::Operation::BulkUpsert,
    }
}

/// A 0.2 `describe` answer as the 0.1 record (same fields, same meaning).
pub(crate) fn info_into_v0_1(info: types::RuleInfo) -> wit::RuleInfo {
    wit::RuleInfo {
        name: info.name,
        version: info.version,
        priority: info.priority,
        resources: info.resources,
        operations: info
            .operations
            .into_iter()
            .map(operation_into_v0_1)
            .collect(),
        default_strategy: match info.default_strategy {
            types::Strategy::Immediate => wit::Strategy::Immediate,
            types::Strategy::Batched => wit::Strategy::Batched,
            types::Strategy::Lazy => wit::Strategy::Lazy,
        },
        description: info.description,
    }
}

/// Bytes of a packed event besides its strings.
const EVENT_FIXED_BYTES: usize = 64;

/// Packs `events` as contract 0.2's events buffer.
pub fn encode_events<'a>(events: impl ExactSizeIterator<Item = &'a WriteEvent>) -> Vec<u8> {
    let mut w = Writer::with_capacity(4 + events.len() * 128);
    w.len(events.len());
    for e in events {
        w.buf
            .reserve(EVENT_FIXED_BYTES + e.tenant.len() + e.resource.len());
        w.str(&e.tenant);
        w.str(&e.resource);
        w.u8(e.operation as u8);
        w.len(e.ids.len());
        for id in &e.ids {
            w.str(id);
        }
        w.len(e.changes.len());
        for c in &e.changes {
            w.str(&c.field);
            w.opt_str(c.old.as_deref());
            w.opt_str(c.new.as_deref());
        }
        w.len(e.context.len());
        for (k, v) in &e.context {
            w.str(k);
            w.str(v);
        }
        w.opt_str(e.transaction.as_deref());
        w.u64(e.timestamp_ms);
    }
    w.buf
}

/// One outcome per event, from a guest's results buffer for `events` events.
///
/// A buffer that cannot be read, or holds another number of results, fails the whole batch
/// (it cannot be attributed to events); a result past `max_targets` or `max_bytes`, or with
/// an empty value, fails only its event, as in 0.1. Values of refused results are skipped
/// without being copied.
pub fn decode_results(
    buf: &[u8],
    events: usize,
    max_targets: usize,
    max_bytes: usize,
) -> Result<Vec<Result<Vec<Target>, RuleFailure>>, RuleFailure> {
    let invalid = |e: PackError| RuleFailure::InvalidOutput {
        detail: e.to_string(),
    };
    let mut r = Reader::new(buf);
    let n = r
        .count(MIN_RESULT_BYTES, "a result count")
        .map_err(invalid)?;
    if n != events {
        return Err(RuleFailure::InvalidOutput {
            detail: format!("returned {n} decisions for {events} events"),
        });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(read_result(&mut r, max_targets, max_bytes).map_err(invalid)?);
    }
    r.finish().map_err(invalid)?;
    Ok(out)
}

fn read_result(
    r: &mut Reader<'_>,
    max_targets: usize,
    max_bytes: usize,
) -> Result<Result<Vec<Target>, RuleFailure>, PackError> {
    if !r.result_tag()? {
        let kind = match r.error_kind()? {
            ErrorKind::InvalidEvent => RuleErrorKind::InvalidEvent,
            ErrorKind::Config => RuleErrorKind::Config,
            ErrorKind::Other => RuleErrorKind::Other,
        };
        let message = truncate(r.str("an error message")?, MAX_ERROR_MESSAGE);
        return Ok(Err(RuleFailure::Rule { kind, message }));
    }
    let n = r.count(MIN_TARGET_BYTES, "a target count")?;
    if n > max_targets {
        for _ in 0..n {
            r.target()?;
        }
        return Ok(Err(RuleFailure::OutputTooLarge {
            what: "targets",
            actual: n as u64,
            limit: max_targets as u64,
        }));
    }
    let mut targets = Vec::with_capacity(n);
    let mut bytes = 0usize;
    let mut empty = false;
    for _ in 0..n {
        let t = r.target()?;
        bytes += t.value.len();
        empty |= t.value.is_empty();
        if bytes <= max_bytes && !empty {
            targets.push(Target {
                kind: t.kind,
                value: t.value.to_owned(),
                strategy: t.strategy,
                cascade: t.cascade,
            });
        }
    }
    if bytes > max_bytes {
        return Ok(Err(RuleFailure::OutputTooLarge {
            what: "bytes",
            actual: bytes as u64,
            limit: max_bytes as u64,
        }));
    }
    if empty {
        return Ok(Err(RuleFailure::InvalidOutput {
            detail: "a target has an empty value".to_owned(),
        }));
    }
    Ok(Ok(targets))
}
