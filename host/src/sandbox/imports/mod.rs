//! Host implementations of the interfaces a rule imports, one file per WIT interface.

mod config;
mod log;

pub use config::RuleConfig;
pub use log::{GuestLog, LogLevel};
