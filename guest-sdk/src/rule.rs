//! The trait a rule author implements, and what a rule can ask of its host.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use crate::{Decision, WriteEvent};

/// A cache-invalidation rule.
///
/// `init` runs once per batch of events (parse your configuration there); `evaluate` runs once
/// per event. Export the type with [`export_rule!`](crate::export_rule).
pub trait Rule: Sized {
    /// Names the rule and what it triggers on. Read once, when the host loads the component.
    fn info() -> RuleInfo;

    /// Prepares the rule for one batch of events of one tenant.
    fn init(ctx: &Context) -> Result<Self, RuleError>;

    /// Says what one event invalidates.
    fn evaluate(&self, event: &WriteEvent, ctx: &Context) -> Result<Decision, RuleError>;
}

pub use tagbust_types::RuleInfo;

/// A rule's own, expected failure for one event (or, from `init`, for the whole batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The event lacks something the rule needs.
    InvalidEvent(String),
    /// The tenant's configuration of the rule is missing or malformed.
    Config(String),
    /// Anything else.
    Other(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::InvalidEvent(m) => write!(f, "invalid event: {m}"),
            RuleError::Config(m) => write!(f, "configuration: {m}"),
            RuleError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RuleError {}

/// Severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One log record, as kept by a native test [`Context`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub level: Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// What a rule can ask of its host: its per-tenant configuration, and logging.
///
/// Inside a component both go to the host. In native unit tests, build one with
/// [`Context::with_config`]; its log records are kept for assertions.
pub struct Context {
    backend: Backend,
}

enum Backend {
    Host,
    Local {
        config: BTreeMap<String, String>,
        logs: RefCell<Vec<LogRecord>>,
    },
}

impl Context {
    /// A context backed by the host; only the component export creates one.
    pub(crate) fn host() -> Self {
        Context {
            backend: Backend::Host,
        }
    }

    /// A native context with this configuration, for unit tests.
    pub fn with_config<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Context {
            backend: Backend::Local {
                config: pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                logs: RefCell::new(Vec::new()),
            },
        }
    }

    /// A native context with no configuration.
    pub fn empty() -> Self {
        Context::with_config(std::iter::empty::<(String, String)>())
    }

    /// The configured value under `key`.
    pub fn config(&self, key: &str) -> Option<String> {
        match &self.backend {
            Backend::Host => crate::bindings::host_config_get(key),
            Backend::Local { config, .. } => config.get(key).cloned(),
        }
    }

    /// Every configured key, sorted.
    pub fn config_keys(&self) -> Vec<String> {
        match &self.backend {
            Backend::Host => crate::bindings::host_config_keys(),
            Backend::Local { config, .. } => config.keys().cloned().collect(),
        }
    }

    /// The configured value under `key`, or a [`RuleError::Config`] naming the key.
    pub fn require_config(&self, key: &str) -> Result<String, RuleError> {
        self.config(key)
            .ok_or_else(|| RuleError::Config(format!("missing configuration key `{key}`")))
    }

    /// Writes a log record to the host, tagged by it with tenant and rule.
    pub fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        match &self.backend {
            Backend::Host => crate::bindings::host_log(level, message, fields),
            Backend::Local { logs, .. } => logs.borrow_mut().push(LogRecord {
                level,
                message: message.to_owned(),
                fields: fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            }),
        }
    }

    /// Shorthand for a warning without fields.
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message, &[]);
    }

    /// The records logged so far (always empty for a host context).
    pub fn logs(&self) -> Vec<LogRecord> {
        match &self.backend {
            Backend::Host => Vec::new(),
            Backend::Local { logs, .. } => logs.borrow().clone(),
        }
    }
}
