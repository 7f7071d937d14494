//! A loaded rule: compiled once, linked once (`InstancePre`), described once.

use std::path::Path;
use std::sync::Arc;

use crate::model::{RuleInfo, RuleRef};
use crate::sandbox::engine::Engine;
use crate::sandbox::error::LoadError;
use crate::sandbox::header::{self, SdkStamp};
use crate::sandbox::imports::RuleConfig;
use crate::sandbox::store::new_store;
use crate::sandbox::versions::RulePre;
use crate::sandbox::wit::{info_from_wit, validate_info};

/// A rule component ready to evaluate. Cheap to clone; share it between tenants.
#[derive(Clone)]
pub struct Rule {
    pub(crate) inner: Arc<RuleInner>,
}

pub(crate) struct RuleInner {
    pub engine: Engine,
    pub pre: RulePre,
    pub info: RuleInfo,
    /// `info.name`, for the stores of its runs.
    pub name: Arc<str>,
    /// Name, version and sha256 (hex) of this build, shared by every outcome, plan entry and
    /// origin.
    pub id: RuleRef,
    pub file: String,
    pub size: usize,
    pub stamp: Option<SdkStamp>,
    pub contract: String,
}

impl Engine {
    /// Loads a rule component from a file.
    pub fn load_file(&self, path: &Path) -> Result<Rule, LoadError> {
        let file = path.display().to_string();
        let read = |source| LoadError::Read {
            file: file.clone(),
            source,
        };
        // Refused by its size before a byte of it is read.
        let size = std::fs::metadata(path).map_err(read)?.len();
        self.check_size(&file, size)?;
        let bytes = std::fs::read(path).map_err(read)?;
        self.load_bytes(&file, &bytes)
    }

    fn check_size(&self, file: &str, size: u64) -> Result<(), LoadError> {
        let limit = self.options().max_component_bytes as u64;
        if size > limit {
            return Err(LoadError::TooLarge {
                file: file.to_owned(),
                size,
                limit,
            });
        }
        Ok(())
    }

    /// Loads a rule component from bytes; `file` names it in errors and reports.
    ///
    /// Checks, in order: WebAssembly magic and layer (a core module is refused with a hint),
    /// the SDK stamp, compilation (cached by sha256), the contract version of the exported
    /// rule interface, linking against the host, and finally `describe()` under the engine's
    /// default limits.
    pub fn load_bytes(&self, file: &str, bytes: &[u8]) -> Result<Rule, LoadError> {
        self.check_size(file, bytes.len() as u64)?;
        let stamp = header::read_header(file, bytes)?;
        let (sha256, component) = self.compile(file, bytes)?;
        let exports = component.component_type();
        let names: Vec<String> = exports
            .exports(self.wasm())
            .map(|(name, _)| name.to_owned())
            .collect();
        let contract =
            header::check_contract(file, names.iter().map(String::as_str), stamp.as_ref())?;
        let instance_pre =
            self.linker()
                .instantiate_pre(&component)
                .map_err(|e| LoadError::Compile {
                    file: file.to_owned(),
                    detail: format!("{e:#}"),
                })?;
        let pre = RulePre::new(instance_pre, &contract).map_err(|e| LoadError::MissingExport {
            file: file.to_owned(),
            detail: format!("{e:#}"),
        })?;
        let info = self.describe(file, &pre)?;
        Ok(Rule {
            inner: Arc::new(RuleInner {
                engine: self.clone(),
                pre,
                name: Arc::from(info.name.as_str()),
                id: RuleRef::new(&info.name, &info.version, &hex::encode(sha256)),
                info,
                file: file.to_owned(),
                size: bytes.len(),
                stamp,
                contract,
            }),
        })
    }

    fn describe(&self, file: &str, pre: &RulePre) -> Result<RuleInfo, LoadError> {
        let limits = &self.options().default_limits;
        let mut store = new_store(
            self.wasm(),
            self.options().fuel,
            Arc::from(""),
            Arc::from(file),
            RuleConfig::default(),
            limits,
        );
        store.set_epoch_deadline(limits.deadline_ticks());
        // A guest panicking in `describe` writes to stderr, which may block on tokio.
        let result =
            crate::sandbox::blocking::where_blocking_is_allowed(|| pre.describe(&mut store));
        let raw = result.map_err(|e| LoadError::Describe {
            file: file.to_owned(),
            failure: crate::sandbox::classify::classify(&store, e, limits),
        })?;
        validate_info(&raw).map_err(|detail| LoadError::InvalidInfo {
            file: file.to_owned(),
            detail,
        })?;
        Ok(info_from_wit(raw))
    }
}

impl Rule {
    pub fn info(&self) -> &RuleInfo {
        &self.inner.info
    }

    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// Lower-case hex sha256 of the component bytes.
    pub fn sha256_hex(&self) -> String {
        self.inner.id.sha256().to_owned()
    }

    /// Name, version and sha256: how outcomes, plans and explain name this build.
    pub fn id(&self) -> &RuleRef {
        &self.inner.id
    }

    /// The path or label the rule was loaded from.
    pub fn file(&self) -> &str {
        &self.inner.file
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// What the guest SDK stamped into the component, if it was built with it.
    pub fn stamp(&self) -> Option<&SdkStamp> {
        self.inner.stamp.as_ref()
    }

    /// The contract version of the rule interface it exports (`0.1.0`, `0.2.0`).
    pub fn contract(&self) -> &str {
        &self.inner.contract
    }
}
