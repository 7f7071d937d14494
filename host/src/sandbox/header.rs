//! Reading a component's bytes before anything runs: is it a component at all, which SDK
//! built it (its stamp), which contract version does it export. Bytes only; nothing here
//! compiles or executes. Loading ([`super::rule`]) and inspection ([`super::inspect`]) both
//! start here, so they cannot disagree.

use serde::Serialize;
use wasmparser::{Parser, Payload};

use super::bindings::{RULE_INTERFACE, SUPPORTED_CONTRACTS};
use super::error::LoadError;

/// The custom section the guest SDK stamps into every component it exports.
pub const STAMP_SECTION: &str = "tagbust:sdk";

/// What the guest SDK stamped into a component: `sdk=0.1.0;contract=0.1.0;language=rust`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdkStamp {
    pub sdk: String,
    pub contract: String,
    pub language: String,
}

impl SdkStamp {
    pub(crate) fn parse(bytes: &[u8]) -> Option<SdkStamp> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut stamp = SdkStamp {
            sdk: String::new(),
            contract: String::new(),
            language: String::new(),
        };
        for part in text.split(';') {
            let (k, v) = part.split_once('=')?;
            match k {
                "sdk" => stamp.sdk = v.to_owned(),
                "contract" => stamp.contract = v.to_owned(),
                "language" => stamp.language = v.to_owned(),
                _ => {}
            }
        }
        (!stamp.contract.is_empty()).then_some(stamp)
    }
}

/// Checks the magic and layer, and reads the SDK stamp if there is one.
///
/// The whole binary is walked (nested modules included) so that truncated or corrupt input is
/// refused here with a clear message.
pub(crate) fn read_header(file: &str, bytes: &[u8]) -> Result<Option<SdkStamp>, LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm {
            file: file.to_owned(),
            detail: "missing the \\0asm magic number".to_owned(),
        });
    }
    if Parser::is_core_wasm(bytes) {
        return Err(LoadError::CoreModule {
            file: file.to_owned(),
        });
    }
    if !Parser::is_component(bytes) {
        return Err(LoadError::NotWasm {
            file: file.to_owned(),
            detail: "unknown WebAssembly version or layer".to_owned(),
        });
    }
    let mut stamp = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::NotWasm {
            file: file.to_owned(),
            detail: e.to_string(),
        })?;
        if let Payload::CustomSection(section) = payload
            && section.name() == STAMP_SECTION
        {
            stamp = SdkStamp::parse(section.data());
        }
    }
    Ok(stamp)
}

/// True when `version` (`0.1.0`) is one this host speaks.
pub fn contract_supported(version: &str) -> bool {
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return false;
    };
    let key = format!("{major}.{minor}");
    SUPPORTED_CONTRACTS.contains(&key.as_str())
}

/// The version of the rule interface among a component's export names (`0.1.0`), if any.
pub(crate) fn exported_contract<'a>(names: &[&'a str]) -> Option<&'a str> {
    let prefix = format!("{RULE_INTERFACE}@");
    names.iter().find_map(|n| n.strip_prefix(prefix.as_str()))
}

/// Finds the rule interface among a component's export names and checks its version.
pub(crate) fn check_contract<'a>(
    file: &str,
    export_names: impl Iterator<Item = &'a str>,
    stamp: Option<&SdkStamp>,
) -> Result<String, LoadError> {
    let names: Vec<&str> = export_names.collect();
    let found = exported_contract(&names);
    let supported = || {
        SUPPORTED_CONTRACTS
            .iter()
            .map(|v| format!("{v}.x"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let version = match found {
        Some(v) => v.to_owned(),
        // An SDK stamp of another contract explains a missing export better than the list.
        None => match stamp {
            Some(s) if !contract_supported(&s.contract) => s.contract.clone(),
            _ => {
                return Err(LoadError::MissingExport {
                    file: file.to_owned(),
                    detail: format!(
                        "no `{RULE_INTERFACE}` interface among its exports [{}]",
                        names.join(", ")
                    ),
                });
            }
        },
    };
    if !contract_supported(&version) {
        return Err(LoadError::UnsupportedContract {
            file: file.to_owned(),
            found: version,
            supported: supported(),
        });
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_parses_and_rejects_garbage() {
        let s = SdkStamp::parse(b"sdk=0.1.0;contract=0.1.0;language=rust").unwrap();
        assert_eq!((s.sdk.as_str(), s.contract.as_str()), ("0.1.0", "0.1.0"));
        assert!(SdkStamp::parse(b"nonsense").is_none());
        assert!(SdkStamp::parse(&[0xff, 0xfe]).is_none());
    }

    #[test]
    fn contract_versions() {
        assert!(contract_supported("0.1.0"));
        assert!(contract_supported("0.1.7"));
        assert!(contract_supported("0.2.0"));
        assert!(!contract_supported("0.3.0"));
        assert!(!contract_supported("1.0.0"));
        assert!(!contract_supported("x"));
    }

    #[test]
    fn header_refuses_non_components() {
        assert!(matches!(
            read_header("f", b"hello"),
            Err(LoadError::NotWasm { .. })
        ));
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(
            read_header("f", core),
            Err(LoadError::CoreModule { .. })
        ));
        // A component header followed by a truncated section.
        let truncated = b"\0asm\x0d\0\x01\0\x01\xff";
        assert!(matches!(
            read_header("f", truncated),
            Err(LoadError::NotWasm { .. })
        ));
    }

    #[test]
    fn missing_and_wrong_contract() {
        let err = check_contract("f", ["wasi:cli/run@0.2.0"].into_iter(), None).unwrap_err();
        assert!(matches!(err, LoadError::MissingExport { .. }), "{err}");
        let err = check_contract("f", ["tagbust:rules/rule@0.9.0"].into_iter(), None).unwrap_err();
        assert!(err.to_string().contains("tagbust:rules@0.9.0"), "{err}");
        let v = check_contract("f", ["tagbust:rules/rule@0.1.3"].into_iter(), None).unwrap();
        assert_eq!(v, "0.1.3");
    }
}
