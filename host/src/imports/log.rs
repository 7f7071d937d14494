//! `tagbust:rules/log`: a rule's log records, forwarded to tracing and kept for the caller.
//!
//! Guest-caused records never log at ERROR on the host (a rule's complaint is not a host
//! failure): a guest `error` becomes WARN. Records past the per-evaluation cap are counted,
//! not kept, so a chatty rule cannot fill the host's memory or logs.

use serde::Serialize;

use crate::bindings::tagbust::rules::log::{Host, Level};
use crate::store::StoreState;

/// Longest message kept, in bytes; longer ones are cut at a character boundary.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Severity of a rule's log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One log record a rule wrote during an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestLog {
    pub level: LogLevel,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

impl Host for StoreState {
    fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let guest = &mut self.guest;
        if guest.logs.len() >= guest.max_logs {
            guest.logs_dropped += 1;
            return;
        }
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let message = truncate(message);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(16)
            .map(|(k, v)| (truncate(k), truncate(v)))
            .collect();
        let (tenant, rule) = (&*guest.tenant, &*guest.rule);
        match level {
            LogLevel::Trace => tracing::trace!(tenant, rule, ?fields, "{message}"),
            LogLevel::Debug => tracing::debug!(tenant, rule, ?fields, "{message}"),
            LogLevel::Info => tracing::info!(tenant, rule, ?fields, "{message}"),
            LogLevel::Warn | LogLevel::Error => {
                tracing::warn!(tenant, rule, ?fields, guest_level = ?level, "{message}")
            }
        }
        guest.logs.push(GuestLog {
            level,
            message,
            fields,
        });
    }
}

impl crate::bindings::tagbust::rules::types::Host for StoreState {}
