//! The packed batch encoding of contract 0.2 (specified in `wit/0.2/rules.wit`): the building
//! blocks both sides use, and the results buffer, whose items are made of shared types only.
//!
//! The events buffer is written by the host from its own event type and read by the SDK into
//! its own, so each side keeps that half; both build it from [`Writer`] and [`Reader`] here.
//!
//! A [`Reader`] never panics and never allocates more than the input can hold: every count is
//! checked against the bytes left before anything is reserved, and every failure is a
//! [`PackError`] naming the offset and what was expected there.

use std::fmt;

use crate::{Operation, Strategy, TargetKind};

/// Why a packed buffer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    /// Byte offset where reading failed.
    pub offset: usize,
    /// What was expected there.
    pub what: &'static str,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed packed buffer at byte {}: {}",
            self.offset, self.what
        )
    }
}

impl std::error::Error for PackError {}

/// The error kinds of a rule's own failure, by their packed number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidEvent,
    Config,
    Other,
}

/// Appends packed values to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    #[inline]
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A count or length. Lengths past `u32::MAX` cannot cross the boundary (the guest's
    /// memory is 32-bit), so they saturate and the reader refuses them as truncated.
    #[inline]
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    #[inline]
    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    #[inline]
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    /// One result: a decision's targets.
    pub fn ok_targets<'a>(&mut self, targets: impl ExactSizeIterator<Item = PackedTarget<'a>>) {
        self.u8(0);
        self.len(targets.len());
        for t in targets {
            // The fixed part as one 7-byte write (an inline store, not four appends).
            let n = u32::try_from(t.value.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes();
            let (kind, strategy, cascade) = (t.kind as u8, t.strategy as u8, u8::from(t.cascade));
            self.buf
                .extend_from_slice(&[kind, strategy, cascade, n[0], n[1], n[2], n[3]]);
            self.buf.extend_from_slice(t.value.as_bytes());
        }
    }

    /// One result: a rule error.
    pub fn err(&mut self, kind: ErrorKind, message: &str) {
        self.u8(1);
        self.u8(kind as u8);
        self.str(message);
    }
}

/// A target as the results buffer carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedTarget<'a> {
    pub kind: TargetKind,
    pub strategy: Strategy,
    pub cascade: bool,
    pub value: &'a str,
}

/// Reads packed values from a buffer, refusing anything malformed.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, PackError> {
        Err(PackError {
            offset: self.pos,
            what,
        })
    }

    #[inline]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PackError> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => self.fail(what),
        }
    }

    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, PackError> {
        Ok(self.take(1, what)?[0])
    }

    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32, PackError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn u64(&mut self, what: &'static str) -> Result<u64, PackError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A list count whose items take at least `min_item` bytes each: refused when the bytes
    /// left cannot hold that many, so a hostile count never reserves memory.
    #[inline]
    pub fn count(&mut self, min_item: usize, what: &'static str) -> Result<usize, PackError> {
        let at = self.pos;
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item.max(1)) > self.buf.len() - self.pos {
            return Err(PackError { offset: at, what });
        }
        Ok(n)
    }

    #[inline]
    pub fn bool(&mut self, what: &'static str) -> Result<bool, PackError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(PackError {
                offset: self.pos - 1,
                what,
            }),
        }
    }

    #[inline]
    pub fn str(&mut self, what: &'static str) -> Result<&'a str, PackError> {
        let n = self.u32(what)? as usize;
        let at = self.pos;
        let bytes = self.take(n, what)?;
        // Most strings are short ASCII (ids, names): a word-at-a-time check beats the general
        // validator's setup for them.
        if bytes.len() <= 32 && short_ascii(bytes) {
            // SAFETY: every byte was just checked to be ASCII, which is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes).map_err(|_| PackError {
            offset: at,
            what: "UTF-8 text",
        })
    }

    #[inline]
    pub fn opt_str(&mut self, what: &'static str) -> Result<Option<&'a str>, PackError> {
        match self.bool(what)? {
            false => Ok(None),
            true => self.str(what).map(Some),
        }
    }

    #[inline]
    pub fn operation(&mut self) -> Result<Operation, PackError> {
        let v = self.u8("an operation")?;
        Operation::ALL
            .get(usize::from(v))
            .copied()
            .map_or_else(|| self.back("an operation (0-7)"), Ok)
    }

    #[inline]
    pub fn target_kind(&mut self) -> Result<TargetKind, PackError> {
        match self.u8("a target kind")? {
            0 => Ok(TargetKind::Tag),
            1 => Ok(TargetKind::Key),
            2 => Ok(TargetKind::Pattern),
            _ => self.back("a target kind (0-2)"),
        }
    }

    #[inline]
    pub fn strategy(&mut self) -> Result<Strategy, PackError> {
        match self.u8("a strategy")? {
            0 => Ok(Strategy::Immediate),
            1 => Ok(Strategy::Batched),
            2 => Ok(Strategy::Lazy),
            _ => self.back("a strategy (0-2)"),
        }
    }

    pub fn error_kind(&mut self) -> Result<ErrorKind, PackError> {
        match self.u8("an error kind")? {
            0 => Ok(ErrorKind::InvalidEvent),
            1 => Ok(ErrorKind::Config),
            2 => Ok(ErrorKind::Other),
            _ => self.back("an error kind (0-2)"),
        }
    }

    /// Refuses the byte just read.
    fn back<T>(&self, what: &'static str) -> Result<T, PackError> {
        Err(PackError {
            offset: self.pos - 1,
            what,
        })
    }

    /// One result's tag: `Ok(true)` for targets, `Ok(false)` for an error.
    #[inline]
    pub fn result_tag(&mut self) -> Result<bool, PackError> {
        match self.u8("a result tag")? {
            0 => Ok(true),
            1 => Ok(false),
            _ => self.back("a result tag (0 or 1)"),
        }
    }

    /// One target of a results buffer.
    #[inline]
    pub fn target(&mut self) -> Result<PackedTarget<'a>, PackError> {
        Ok(PackedTarget {
            kind: self.target_kind()?,
            strategy: self.strategy()?,
            cascade: self.bool("a cascade flag (0 or 1)")?,
            value: self.str("a target value")?,
        })
    }

    /// Refuses trailing bytes.
    pub fn finish(self) -> Result<(), PackError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            self.fail("the end of the buffer")
        }
    }
}

/// True when every byte is ASCII: eight bytes at a time, without branching per byte.
#[inline]
fn short_ascii(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut high = 0u64;
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        high |= u64::from_ne_bytes(a);
    }
    for &b in words.remainder() {
        high |= u64::from(b);
    }
    high & 0x8080_8080_8080_8080 == 0
}

/// The fewest bytes a packed event takes (empty strings and lists, no transaction).
pub const MIN_EVENT_BYTES: usize = 4 + 4 + 1 + 4 + 4 + 4 + 1 + 8;
/// The fewest bytes a packed target takes.
pub const MIN_TARGET_BYTES: usize = 3 + 4;
/// The fewest bytes a packed result takes.
pub const MIN_RESULT_BYTES: usize = 1 + 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip() {
        let mut w = Writer::default();
        w.len(2);
        let t = PackedTarget {
            kind: TargetKind::Key,
            strategy: Strategy::Lazy,
            cascade: true,
            value: "post:7",
        };
        w.ok_targets([t].into_iter());
        w.err(ErrorKind::Config, "no");
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.count(MIN_RESULT_BYTES, "n").unwrap(), 2);
        assert!(r.result_tag().unwrap());
        assert_eq!(r.count(MIN_TARGET_BYTES, "n").unwrap(), 1);
        assert_eq!(r.target().unwrap(), t);
        assert!(!r.result_tag().unwrap());
        assert_eq!(r.error_kind().unwrap(), ErrorKind::Config);
        assert_eq!(r.str("m").unwrap(), "no");
        r.finish().unwrap();
    }

    #[test]
    fn short_ascii_finds_any_high_byte() {
        for len in 0..=33 {
            let ascii = vec![b'a'; len];
            assert!(short_ascii(&ascii));
            for at in 0..len {
                let mut other = ascii.clone();
                other[at] = 0x80;
                assert!(!short_ascii(&other), "len {len}, at {at}");
            }
        }
    }

    #[test]
    fn hostile_counts_and_bytes_are_refused() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.count(1, "n").unwrap_err().offset, 0);
        let mut r = Reader::new(&[2, 0, 0, 0, 0xc3, 0x28]);
        assert_eq!(r.str("s").unwrap_err().what, "UTF-8 text");
        let mut r = Reader::new(&[2]);
        assert_eq!(r.bool("b").unwrap_err().offset, 0);
        assert!(Reader::new(&[9]).operation().is_err());
        assert!(Reader::new(&[0]).finish().is_err());
    }
}
