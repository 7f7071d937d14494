//! The pgoutput messages this source relies on besides Begin, Commit and Message (which the
//! transport decodes): Relation, Insert, Update, Delete and Truncate, protocol version 1.
//! Type and Origin messages are recognised and skipped. Pure functions over bytes: every
//! malformed input is a [`DecodeError`] naming the message and what was short or wrong,
//! never a panic.

/// A column of a relation, as the Relation message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// Part of the replica identity (the primary key by default; every column under
    /// `REPLICA IDENTITY FULL`).
    pub key: bool,
}

/// A Relation message: what the following changes' relation id means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub table: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub identity: u8,
    pub columns: Vec<Column>,
}

/// One column's value in a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A TOASTed value that did not change (its old value is not sent).
    Unchanged,
    Text(String),
}

/// One decoded change message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Value>,
    },
    /// `old` is the old row under `REPLICA IDENTITY FULL`, the old key when the key
    /// changed, `None` otherwise.
    Update {
        relation: u32,
        old: Option<Vec<Value>>,
        new: Vec<Value>,
    },
    /// `old` is the whole old row under `REPLICA IDENTITY FULL`, else only its key columns
    /// (the others `Null`).
    Delete {
        relation: u32,
        old: Vec<Value>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// A message this source does not need (Type, Origin).
    Skipped,
}

/// Why a pgoutput message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pgoutput `{tag}` message: {problem}")]
pub struct DecodeError {
    pub tag: char,
    pub problem: String,
}

struct Reader<'a> {
    tag: char,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, problem: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError {
            tag: self.tag,
            problem: problem.into(),
        })
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return self.fail(format!(
                "{what}: needs {n} bytes, {} left",
                self.bytes.len()
            ));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        let Some(end) = self.bytes.iter().position(|&b| b == 0) else {
            return self.fail(format!("{what}: no terminating NUL"));
        };
        let text = self.take(end + 1, what)?;
        match std::str::from_utf8(&text[..end]) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => self.fail(format!("{what}: not UTF-8")),
        }
    }

    fn tuple(&mut self) -> Result<Vec<Value>, DecodeError> {
        let n = self.u16("column count")?;
        let mut values = Vec::with_capacity(usize::from(n).min(self.bytes.len()));
        for i in 0..n {
            let value = match self.u8("column kind")? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                kind @ (b't' | b'b') => {
                    let len = self.u32("value length")? as usize;
                    let bytes = self.take(len, "value")?;
                    if kind == b'b' {
                        return self.fail(format!(
                            "column {i} is in binary format; the source asks for text"
                        ));
                    }
                    match std::str::from_utf8(bytes) {
                        Ok(s) => Value::Text(s.to_owned()),
                        Err(_) => return self.fail(format!("column {i}: not UTF-8")),
                    }
                }
                other => return self.fail(format!("column {i}: unknown kind {other:#04x}")),
            };
            values.push(value);
        }
        Ok(values)
    }

    fn done(self, change: Change) -> Result<Change, DecodeError> {
        if self.bytes.is_empty() {
            Ok(change)
        } else {
            self.fail(format!("{} bytes left over", self.bytes.len()))
        }
    }
}

/// Decodes one pgoutput message (the whole XLogData payload).
pub fn decode(data: &[u8]) -> Result<Change, DecodeError> {
    let Some((&tag, body)) = data.split_first() else {
        return Err(DecodeError {
            tag: '?',
            problem: "empty message".into(),
        });
    };
    let mut r = Reader {
        tag: char::from(tag),
        bytes: body,
    };
    let change = match tag {
        b'R' => {
            let id = r.u32("relation id")?;
            let schema = r.string("namespace")?;
            let table = r.string("relation name")?;
            let identity = r.u8("replica identity")?;
            let n = r.u16("column count")?;
            let mut columns = Vec::with_capacity(usize::from(n).min(body.len()));
            for _ in 0..n {
                let flags = r.u8("column flags")?;
                let name = r.string("column name")?;
                r.take(8, "column type and modifier")?;
                columns.push(Column {
                    name,
                    key: flags & 1 == 1,
                });
            }
            Change::Relation(Relation {
                id,
                schema,
                table,
                identity,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32("relation id")?;
            match r.u8("tuple marker")? {
                b'N' => {}
                other => return r.fail(format!("expected `N`, found {other:#04x}")),
            }
            let new = r.tuple()?;
            Change::Insert { relation, new }
        }
        b'U' => {
            let relation = r.u32("relation id")?;
            let (old, marker) = match r.u8("tuple marker")? {
                b'K' | b'O' => (Some(r.tuple()?), r.u8("tuple marker")?),
                other => (None, other),
            };
            if marker != b'N' {
                return r.fail(format!("expected `N`, found {marker:#04x}"));
            }
            let new = r.tuple()?;
            Change::Update { relation, old, new }
        }
        b'D' => {
            let relation = r.u32("relation id")?;
            match r.u8("tuple marker")? {
                b'K' | b'O' => {}
                other => return r.fail(format!("expected `K` or `O`, found {other:#04x}")),
            }
            let old = r.tuple()?;
            Change::Delete { relation, old }
        }
        b'T' => {
            let n = r.u32("relation count")?;
            r.u8("options")?;
            let mut relations = Vec::with_capacity((n as usize).min(body.len() / 4));
            for _ in 0..n {
                relations.push(r.u32("relation id")?);
            }
            Change::Truncate { relations }
        }
        b'Y' | b'O' => return Ok(Change::Skipped),
        other => {
            return Err(DecodeError {
                tag: char::from(other),
                problem: "not a message of pgoutput protocol version 1".into(),
            });
        }
    };
    r.done(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(out: &mut Vec<u8>, values: &[Option<&str>]) {
        out.extend_from_slice(&(values.len() as u16).to_be_bytes());
        for v in values {
            match v {
                None => out.push(b'n'),
                Some(s) => {
                    out.push(b't');
                    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    #[test]
    fn relation_names_columns_and_key() {
        let mut m = vec![b'R'];
        m.extend_from_slice(&16385u32.to_be_bytes());
        m.extend_from_slice(b"public\0posts\0d");
        m.extend_from_slice(&2u16.to_be_bytes());
        for (flags, name) in [(1u8, "id"), (0, "title")] {
            m.push(flags);
            m.extend_from_slice(name.as_bytes());
            m.push(0);
            m.extend_from_slice(&[0; 8]);
        }
        let Change::Relation(r) = decode(&m).expect("decodes") else {
            panic!("not a relation")
        };
        assert_eq!(
            (r.id, r.schema.as_str(), r.table.as_str()),
            (16385, "public", "posts")
        );
        assert_eq!(r.columns.iter().filter(|c| c.key).count(), 1);
        assert_eq!(r.columns[1].name, "title");
    }

    #[test]
    fn update_with_old_row_and_delete_with_key() {
        let mut m = vec![b'U'];
        m.extend_from_slice(&7u32.to_be_bytes());
        m.push(b'O');
        tuple(&mut m, &[Some("1"), Some("old")]);
        m.push(b'N');
        tuple(&mut m, &[Some("1"), None]);
        let change = decode(&m).expect("decodes");
        assert_eq!(
            change,
            Change::Update {
                relation: 7,
                old: Some(vec![Value::Text("1".into()), Value::Text("old".into())]),
                new: vec![Value::Text("1".into()), Value::Null],
            }
        );
        let mut d = vec![b'D'];
        d.extend_from_slice(&7u32.to_be_bytes());
        d.push(b'K');
        tuple(&mut d, &[Some("9"), None]);
        assert!(matches!(decode(&d), Ok(Change::Delete { relation: 7, .. })));
    }

    #[test]
    fn truncate_lists_relations() {
        let mut m = vec![b'T'];
        m.extend_from_slice(&2u32.to_be_bytes());
        m.push(0);
        m.extend_from_slice(&5u32.to_be_bytes());
        m.extend_from_slice(&6u32.to_be_bytes());
        assert_eq!(
            decode(&m),
            Ok(Change::Truncate {
                relations: vec![5, 6]
            })
        );
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error_not_a_panic() {
        let mut m = vec![b'I'];
        m.extend_from_slice(&7u32.to_be_bytes());
        m.push(b'N');
        tuple(&mut m, &[Some("1"), Some("hello"), None]);
        assert!(decode(&m).is_ok());
        for len in 0..m.len() {
            let err = decode(&m[..len]).expect_err("a cut message is refused");
            assert!(!err.problem.is_empty());
        }
        m.push(0);
        assert!(decode(&m).is_err(), "trailing bytes are refused");
        assert!(decode(b"Zabc").is_err(), "an unknown tag is refused");
        assert_eq!(decode(b"Yxx"), Ok(Change::Skipped));
    }
}
