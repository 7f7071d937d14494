//! Reading write events from JSON: one object or an array of them. Every error names the file,
//! and the field where one is to blame.

use serde::Deserialize;

use crate::model::event::WriteEvent;
use crate::model::text::truncate;

/// Longest tenant id, in bytes (it is part of every backend key and stat).
pub const MAX_TENANT_BYTES: usize = 128;
/// Longest resource name, in bytes.
pub const MAX_RESOURCE_BYTES: usize = 256;

/// Caps on one event, so a malformed or hostile producer cannot make the host (or a rule)
/// allocate without bound. Defaults are generous for real writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLimits {
    /// Ids per event. Default 100,000 (a large bulk write; bigger ones should be split).
    pub max_ids: usize,
    /// Changed fields per event. Default 1,024.
    pub max_changes: usize,
    /// Context pairs per event. Default 256.
    pub max_context: usize,
    /// Bytes of any one string. Default 64 KiB.
    pub max_string_bytes: usize,
    /// Bytes of one input (a file, a request body, a stream entry), checked before it is
    /// read or decoded, so a 1 GiB input costs nothing. Default 64 MiB: a full 100,000-id
    /// bulk event is a few MiB.
    pub max_input_bytes: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_ids: 100_000,
            max_changes: 1024,
            max_context: 256,
            max_string_bytes: 64 << 10,
            max_input_bytes: 64 << 20,
        }
    }
}

/// Why events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: truncated JSON (input ends at line {line}, column {column})")]
    Truncated {
        file: String,
        line: usize,
        column: usize,
    },
    #[error("{file}: invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: field `{field}`: {message}")]
    Field {
        file: String,
        field: String,
        message: String,
    },
    /// A string holds bytes that are not UTF-8; `field` is where the decoder was.
    #[error("{file}: field `{field}`: invalid UTF-8 at line {line}, column {column}")]
    InvalidUtf8 {
        file: String,
        field: String,
        line: usize,
        column: usize,
    },
    #[error(
        "{file}: {size} bytes, more than the limit of {limit} bytes (nothing was read past it)"
    )]
    TooLarge { file: String, size: u64, limit: u64 },
    #[error("{file}: expected a JSON object or an array of objects")]
    Shape { file: String },
}

/// Reads and parses the events in the file at `path`, refusing a file over
/// [`EventLimits::max_input_bytes`] before reading it.
pub fn read_events_file(
    path: &std::path::Path,
    limits: &EventLimits,
) -> Result<Vec<WriteEvent>, IngestError> {
    let file = path.display().to_string();
    let read = |source| IngestError::Read {
        file: file.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    too_large(&file, size, limits)?;
    let bytes = std::fs::read(path).map_err(read)?;
    parse_events(&file, &bytes, limits)
}

/// Reads events from `reader` (standard input, a socket), reading at most one byte past
/// [`EventLimits::max_input_bytes`] before refusing; `label` names the source in errors.
pub fn read_events(
    label: &str,
    reader: impl std::io::Read,
    limits: &EventLimits,
) -> Result<Vec<WriteEvent>, IngestError> {
    use std::io::Read;
    let cap = limits.max_input_bytes as u64;
    let mut bytes = Vec::new();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| IngestError::Read {
            file: label.to_owned(),
            source,
        })?;
    parse_events(label, &bytes, limits)
}

fn too_large(file: &str, size: u64, limits: &EventLimits) -> Result<(), IngestError> {
    let limit = limits.max_input_bytes as u64;
    if size > limit {
        return Err(IngestError::TooLarge {
            file: file.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}

/// Parses events from `bytes`; `file` names the source in errors. Input over
/// [`EventLimits::max_input_bytes`] is refused before it is decoded.
pub fn parse_events(
    file: &str,
    bytes: &[u8],
    limits: &EventLimits,
) -> Result<Vec<WriteEvent>, IngestError> {
    too_large(file, bytes.len() as u64, limits)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let events = match first {
        Some(b'[') => decode::<Vec<WriteEvent>>(file, bytes)?,
        Some(b'{') => vec![decode::<WriteEvent>(file, bytes)?],
        None => {
            return Err(IngestError::Truncated {
                file: file.to_owned(),
                line: 1,
                column: 0,
            });
        }
        Some(_) => {
            return Err(IngestError::Shape {
                file: file.to_owned(),
            });
        }
    };
    let many = first == Some(&b'[');
    for (i, event) in events.iter().enumerate() {
        check_event(event, limits).map_err(|e| IngestError::Field {
            file: file.to_owned(),
            field: if many {
                format!("[{i}].{}", e.field)
            } else {
                e.field
            },
            message: e.message,
        })?;
    }
    Ok(events)
}

fn decode<'de, T: Deserialize<'de>>(file: &str, bytes: &'de [u8]) -> Result<T, IngestError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        invalid_utf8(file, &path, bytes, &e).unwrap_or_else(|| json_error(file, &path, e))
    })?;
    de.end().map_err(|e| json_error(file, ".", e))?;
    Ok(value)
}

/// serde_json reports a string that is not UTF-8 as a syntax error at the string's end.
/// When the input's first bad byte comes before the error, that is the real cause: say so,
/// with the field and the bad byte's own position.
fn invalid_utf8(
    file: &str,
    path: &str,
    bytes: &[u8],
    e: &serde_json::Error,
) -> Option<IngestError> {
    if !e.is_syntax() {
        return None;
    }
    let bad = std::str::from_utf8(bytes).err()?.valid_up_to();
    let (line, column) = position(&bytes[..bad]);
    if (line, column) > (e.line(), e.column()) {
        return None;
    }
    Some(IngestError::InvalidUtf8 {
        file: file.to_owned(),
        field: field_name(path),
        line,
        column,
    })
}

/// The 1-based line and column (in bytes) just past `prefix`, as serde_json counts them.
fn position(prefix: &[u8]) -> (usize, usize) {
    let line = 1 + prefix.iter().filter(|&&b| b == b'\n').count();
    let column = match prefix.iter().rposition(|&b| b == b'\n') {
        Some(nl) => prefix.len() - nl,
        None => prefix.len() + 1,
    };
    (line, column)
}

fn field_name(path: &str) -> String {
    if path == "." {
        "(top level)".to_owned()
    } else {
        path.to_owned()
    }
}

fn json_error(file: &str, path: &str, e: serde_json::Error) -> IngestError {
    use serde_json::error::Category;
    let file = file.to_owned();
    let (line, column) = (e.line(), e.column());
    match e.classify() {
        Category::Eof => IngestError::Truncated { file, line, column },
        Category::Syntax | Category::Io => IngestError::Syntax {
            file,
            line,
            column,
            message: e.to_string(),
        },
        Category::Data => IngestError::Field {
            file,
            field: field_name(path),
            message: e.to_string(),
        },
    }
}

/// A tenant id: 1–128 characters of `[A-Za-z0-9._-]`, so it is safe inside keys, hash tags
/// and `SCAN` patterns (no glob metacharacters, braces or separators).
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    if tenant.is_empty()
        || tenant.len() > MAX_TENANT_BYTES
        // Bytes, not chars: every allowed character is one ASCII byte, and any byte of a
        // multi-byte character fails the test as its character would (checked per event).
        || !tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "must be 1-{MAX_TENANT_BYTES} characters of [A-Za-z0-9._-]"
        ));
    }
    Ok(())
}

/// One event's field that breaks a cap or a rule of the event format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct InvalidField {
    /// The field to blame (`ids[3]`, `context.user`).
    pub field: String,
    pub message: String,
}

fn invalid<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, InvalidField> {
    Err(InvalidField {
        field: field.into(),
        message: message.into(),
    })
}

/// Checks one event against the caps; names the field to blame and why.
pub fn check_event(e: &WriteEvent, limits: &EventLimits) -> Result<(), InvalidField> {
    let long = |s: &str| s.len() > limits.max_string_bytes;
    let too_long = |field: String| {
        invalid(
            field,
            format!("longer than {} bytes", limits.max_string_bytes),
        )
    };
    if let Err(message) = check_tenant(&e.tenant) {
        return invalid("tenant", message);
    }
    if e.resource.is_empty() || e.resource.len() > MAX_RESOURCE_BYTES {
        return invalid("resource", format!("must be 1-{MAX_RESOURCE_BYTES} bytes"));
    }
    if e.ids.len() > limits.max_ids {
        return invalid(
            "ids",
            format!(
                "{} ids, more than the limit of {}",
                e.ids.len(),
                limits.max_ids
            ),
        );
    }
    if let Some(i) = e.ids.iter().position(|s| long(s)) {
        return too_long(format!("ids[{i}]"));
    }
    if e.changes.len() > limits.max_changes {
        return invalid(
            "changes",
            format!("more than {} changes", limits.max_changes),
        );
    }
    for (i, c) in e.changes.iter().enumerate() {
        if long(&c.field)
            || c.old.as_deref().is_some_and(long)
            || c.new.as_deref().is_some_and(long)
        {
            return too_long(format!("changes[{i}]"));
        }
    }
    if e.context.len() > limits.max_context {
        return invalid(
            "context",
            format!("more than {} entries", limits.max_context),
        );
    }
    if let Some((k, _)) = e.context.iter().find(|(k, v)| long(k) || long(v)) {
        return too_long(format!("context.{}", truncate(k, 64)));
    }
    if e.transaction.as_deref().is_some_and(long) {
        return too_long("transaction".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::Operation;

    fn parse(s: &str) -> Result<Vec<WriteEvent>, IngestError> {
        parse_events("ev.json", s.as_bytes(), &EventLimits::default())
    }

    #[test]
    fn the_issue_example_parses() {
        let e = parse(r#"{"tenant":"acme","resource":"agent_memory","operation":"bulk_delete","ids":["1","2"],"changes":[{"field":"status","old":"draft","new":"done"}],"context":{"workflow_run_id":"300"},"transaction":"tx-9"}"#).unwrap();
        assert_eq!(e[0].operation, Operation::BulkDelete);
        assert_eq!(e[0].context["workflow_run_id"], "300");
        assert_eq!(e[0].transaction.as_deref(), Some("tx-9"));
    }

    #[test]
    fn unknown_operation_names_the_field() {
        let err = parse(r#"[{"tenant":"a","resource":"r","operation":"create"},{"tenant":"a","resource":"r","operation":"explode"}]"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("ev.json: field `[1].operation`"), "{msg}");
        assert!(msg.contains("explode"), "{msg}");
    }

    #[test]
    fn truncated_and_garbage_json() {
        assert!(matches!(
            parse(r#"{"tenant":"a","reso"#),
            Err(IngestError::Truncated { .. })
        ));
        assert!(matches!(parse(""), Err(IngestError::Truncated { .. })));
        assert!(matches!(parse("{]"), Err(IngestError::Syntax { .. })));
        assert!(matches!(parse("42"), Err(IngestError::Shape { .. })));
        assert!(matches!(
            parse(r#"{"tenant":"a","resource":"r","operation":"create"} x"#),
            Err(IngestError::Syntax { .. })
        ));
    }

    #[test]
    fn unknown_and_missing_fields_are_refused() {
        let err = parse(r#"{"tenant":"a","resource":"r","operation":"create","idz":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("idz"), "{err}");
        let err = parse(r#"{"tenant":"a","operation":"create"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("resource"), "{err}");
    }

    #[test]
    fn caps_name_the_field() {
        let limits = EventLimits {
            max_ids: 2,
            ..EventLimits::default()
        };
        let err = parse_events(
            "f",
            br#"{"tenant":"a","resource":"r","operation":"bulk_delete","ids":["1","2","3"]}"#,
            &limits,
        )
        .unwrap_err();
        assert!(err.to_string().contains("field `ids`"), "{err}");
        let err = parse(r#"{"tenant":"../b","resource":"r","operation":"create"}"#).unwrap_err();
        assert!(err.to_string().contains("field `tenant`"), "{err}");
        let key = "k".repeat(100 << 10);
        let err = parse(&format!(
            r#"{{"tenant":"a","resource":"r","operation":"create","context":{{"{key}":"v"}}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("field `context.kkk") && err.len() < 200,
            "{err:.300}"
        );
    }

    #[test]
    fn invalid_utf8_names_the_field_and_the_byte() {
        let mut json = br#"[{"tenant":"a","resource":"r","operation":"create"},
{"tenant":"a","resource":"r","operation":"create","ids":["1","2"#
            .to_vec();
        json.extend_from_slice(b"\xff\"]}]");
        match parse_events("ev.json", &json, &EventLimits::default()) {
            Err(IngestError::InvalidUtf8 {
                field,
                line,
                column,
                ..
            }) => assert_eq!((field.as_str(), line, column), ("[1].ids[1]", 2, 64)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_context_key_given_twice_is_refused() {
        let err = parse(
            r#"{"tenant":"a","resource":"r","operation":"create","context":{"k":"1","k":"2"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("field `context`") && err.contains("duplicate key `k`"),
            "{err}"
        );
    }
}
