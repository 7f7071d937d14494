//! `tagbust:rules/log`: a rule's log records, forwarded to tracing and kept for the caller.
//!
//! Guest-caused records never log at ERROR on the host (a rule's complaint is not a host
//! failure): a guest `error` becomes WARN. Records past the per-evaluation cap are counted,
//! not kept, so a chatty rule cannot fill the host's memory or logs.

use serde::Serialize;

use crate::model::text::truncate_owned;
use crate::sandbox::bindings::v0_1::tagbust::rules::log::{Host, Level};
use crate::sandbox::limits::{MAX_LOG_FIELDS, MAX_LOG_TEXT};
use crate::sandbox::store::StoreState;

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
        let message = truncate_owned(message, MAX_LOG_TEXT);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(MAX_LOG_FIELDS)
            .map(|(k, v)| {
                (
                    truncate_owned(k, MAX_LOG_TEXT),
                    truncate_owned(v, MAX_LOG_TEXT),
                )
            })
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

impl crate::sandbox::bindings::v0_1::tagbust::rules::types::Host for StoreState {}
