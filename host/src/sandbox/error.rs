//! Typed errors at the library boundary. Every variant names what failed and why.

use crate::model::RuleFailure;

/// Why a rule component could not be loaded. `file` is the path, or the label the caller gave
/// for bytes loaded from memory.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read rule component: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes, more than the {limit} bytes a rule component may have")]
    TooLarge { file: String, size: u64, limit: u64 },
    #[error("{file}: not a WebAssembly component: {detail}")]
    NotWasm { file: String, detail: String },
    #[error(
        "{file}: is a core WebAssembly module, not a component; build the rule for wasm32-wasip2 with the tagbust-guest SDK"
    )]
    CoreModule { file: String },
    #[error(
        "{file}: built against contract tagbust:rules@{found}, which this host does not support (supported: {supported})"
    )]
    UnsupportedContract {
        file: String,
        found: String,
        supported: String,
    },
    #[error("{file}: does not export what the rule contract requires: {detail}")]
    MissingExport { file: String, detail: String },
    #[error("{file}: cannot be compiled or linked: {detail}")]
    Compile { file: String, detail: String },
    #[error("{file}: describe() failed: {failure}")]
    Describe { file: String, failure: RuleFailure },
    #[error("{file}: describe() returned an invalid rule info: {detail}")]
    InvalidInfo { file: String, detail: String },
}

/// Why building the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot configure the WebAssembly engine: {0}")]
    Config(String),
    #[error("cannot link host interfaces: {0}")]
    Link(String),
    #[error("{dir}: cannot use as the artifact cache: {detail}")]
    Artifacts { dir: String, detail: String },
}
