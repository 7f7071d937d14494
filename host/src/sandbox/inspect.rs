//! `tagbust inspect`: what a component is and whether this host would accept it. The
//! verdict is [`Engine::load_bytes`] itself; the rest is read with [`super::header`].

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::engine::Engine;
use super::header::{SdkStamp, exported_contract, read_header};
use crate::model::RuleInfo;

/// Everything `tagbust inspect` reports about a component, and whether the host accepts it.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub file: String,
    pub size: usize,
    /// Lower-case hex sha256 of the bytes (the compile cache's key).
    pub sha256: String,
    /// What the guest SDK stamped into it; `None` when it was not built with the SDK.
    pub sdk: Option<SdkStamp>,
    /// Version of the `tagbust:rules/rule` interface it exports, when it exports one.
    pub contract: Option<String>,
    /// What `describe()` returned, when the host got that far.
    pub info: Option<RuleInfo>,
    /// Imported and exported interface names (empty when it is not a valid component).
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub accepted: bool,
    /// Why the host refuses it; `None` when accepted.
    pub refusal: Option<String>,
}

impl Engine {
    /// Reports what `bytes` are and whether this engine would load them as a rule. Never
    /// fails: a refusal is part of the report. `file` names it.
    pub fn inspect(&self, file: &str, bytes: &[u8]) -> Inspection {
        let mut report = Inspection {
            file: file.to_owned(),
            size: bytes.len(),
            sha256: hex::encode(Sha256::digest(bytes)),
            sdk: None,
            contract: None,
            info: None,
            imports: Vec::new(),
            exports: Vec::new(),
            accepted: false,
            refusal: None,
        };
        // Only bytes the header walk accepts reach wasmtime, as in `load_bytes`.
        let header_ok = match read_header(file, bytes) {
            Ok(stamp) => {
                report.sdk = stamp;
                true
            }
            Err(_) => false,
        };
        // The same compilation `load_bytes` uses (cached by hash), for the interface lists.
        if let Some((_, component)) = header_ok.then(|| self.compile(file, bytes).ok()).flatten() {
            let ty = component.component_type();
            report.imports = ty.imports(self.wasm()).map(|(n, _)| n.to_owned()).collect();
            report.exports = ty.exports(self.wasm()).map(|(n, _)| n.to_owned()).collect();
            let names: Vec<&str> = report.exports.iter().map(String::as_str).collect();
            report.contract = exported_contract(&names).map(str::to_owned);
        }
        match self.load_bytes(file, bytes) {
            Ok(rule) => {
                report.info = Some(rule.info().clone());
                report.accepted = true;
            }
            Err(e) => report.refusal = Some(e.to_string()),
        }
        report
    }
}
