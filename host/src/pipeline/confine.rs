//! Keeping every target a rule returns inside its tenant's namespace.
//!
//! Backends already put every key under its tenant (`tb:{tenant}:…` in Redis, a map per tenant
//! in memory), so no target can reach another tenant's data. A target that *tries* to is still
//! worth catching: the rule is broken or hostile, and whatever it meant to invalidate did not
//! happen. Such a target is rejected (dropped from the plan), counted, logged at WARN with the
//! tenant and rule, and the rule's failure policy applies as for any other failure.

use std::fmt;

use crate::model::target::TargetKind;
use crate::tenant::tenants::Tenants;

/// Why a target was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A `..` segment: path traversal.
    Traversal,
    /// Starts with `/` or `\`: an absolute key.
    Absolute,
    /// Names another tenant: its prefix (`globex:…`), or its hash tag (`{globex}`).
    OtherTenant(String),
    /// Spells the backend's own key layout (`tb:{…}:…`).
    BackendKey,
    /// A control character (NUL, newline, …).
    ControlCharacter,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Traversal => f.write_str("path traversal (`..`)"),
            Violation::Absolute => f.write_str("absolute key"),
            Violation::OtherTenant(t) => write!(f, "names another tenant (`{t}`)"),
            Violation::BackendKey => f.write_str("spells the backend's key layout"),
            Violation::ControlCharacter => f.write_str("control character"),
        }
    }
}

/// Checks one target of `tenant`; `tenants` tells which other tenants exist. One pass over
/// the bytes for the common case (it runs for every target of every event).
pub(crate) fn check(
    tenant: &str,
    tenants: &Tenants,
    kind: TargetKind,
    value: &str,
) -> Result<(), Violation> {
    let bytes = value.as_bytes();
    // The common target (`post:42`, `feed:home`) holds no byte any check below looks for:
    // one table lookup per byte, and only the other-tenant check remains.
    if !bytes.iter().all(|&b| PLAIN[usize::from(b)]) {
        check_bytes(value)?;
    }
    // Without tenants of their own, no other tenant can be named.
    if tenants.is_empty() {
        return Ok(());
    }
    let brace = value.find('{');
    let other = |name: &str| name != tenant && tenants.get_own(name).is_some();
    // A pattern's leading wildcards would let it start anywhere: look past them.
    let head = match kind {
        TargetKind::Pattern => value.trim_start_matches(['*', '?']),
        _ => value,
    };
    let first = head.split([':', '/']).next().unwrap_or("");
    if other(first) {
        return Err(Violation::OtherTenant(first.to_owned()));
    }
    if let Some(open) = brace {
        let inner = &value[open + 1..];
        if let Some(tag) = inner.split_once('}').map(|(tag, _)| tag)
            && other(tag)
        {
            return Err(Violation::OtherTenant(tag.to_owned()));
        }
    }
    Ok(())
}

/// Bytes no check cares about: ASCII letters, digits, and punctuation other than `.`, `/`,
/// `\\`, `{` and the control characters.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = !matches!(b as u8, b'.' | b'/' | b'\\' | b'{');
        b += 1;
    }
    t
};

/// The checks that look at the bytes themselves: absolute keys, traversal, control
/// characters, the backend's own key layout. One pass over the bytes.
fn check_bytes(value: &str) -> Result<(), Violation> {
    let bytes = value.as_bytes();
    if bytes.first().is_some_and(|b| matches!(b, b'/' | b'\\')) {
        return Err(Violation::Absolute);
    }
    let (mut segment, mut brace, mut ascii) = (0, None, true);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0..=0x1f | 0x7f => return Err(Violation::ControlCharacter),
            b':' | b'/' | b'\\' => {
                if &bytes[segment..i] == b".." {
                    return Err(Violation::Traversal);
                }
                segment = i + 1;
            }
            b'{' if brace.is_none() => brace = Some(i),
            0x80.. => ascii = false,
            _ => {}
        }
    }
    if &bytes[segment..] == b".." {
        return Err(Violation::Traversal);
    }
    // C1 control characters are two bytes in UTF-8.
    if !ascii && value.chars().any(char::is_control) {
        return Err(Violation::ControlCharacter);
    }
    if let Some(open) = brace {
        let inner = &value[open + 1..];
        if let Some(close) = inner.find('}')
            && value[..open].ends_with(':')
            && inner[close + 1..].starts_with(':')
        {
            return Err(Violation::BackendKey);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::tenants::TenantSetup;

    fn tenants() -> Tenants {
        Tenants::none()
            .with_tenant("acme", TenantSetup::default())
            .with_tenant("globex", TenantSetup::default())
    }

    fn key(value: &str) -> Result<(), Violation> {
        check("acme", &tenants(), TargetKind::Key, value)
    }

    #[test]
    fn ordinary_targets_pass() {
        for v in [
            "user:42",
            "acme:user:42",
            "feed/home",
            "a.b-c_d",
            "{run_id}x",
            "..x",
        ] {
            assert_eq!(key(v), Ok(()), "{v}");
        }
        let t = tenants();
        assert_eq!(check("acme", &t, TargetKind::Pattern, "*:42"), Ok(()));
    }

    #[test]
    fn attempts_to_leave_the_tenant_are_caught() {
        assert_eq!(
            key("globex:user:42"),
            Err(Violation::OtherTenant("globex".into()))
        );
        assert_eq!(
            key("x{globex}y"),
            Err(Violation::OtherTenant("globex".into()))
        );
        assert_eq!(key("tb:{acme}:e:k"), Err(Violation::BackendKey));
        assert_eq!(key("user/../../globex"), Err(Violation::Traversal));
        assert_eq!(key("a:..:b"), Err(Violation::Traversal));
        assert_eq!(key("/etc/passwd"), Err(Violation::Absolute));
        assert_eq!(key("a\0b"), Err(Violation::ControlCharacter));
        let t = tenants();
        assert_eq!(
            check("acme", &t, TargetKind::Pattern, "**globex:*"),
            Err(Violation::OtherTenant("globex".into()))
        );
        assert_eq!(
            check("acme", &t, TargetKind::Tag, "globex"),
            Err(Violation::OtherTenant("globex".into()))
        );
    }

    #[test]
    fn strings_of_plain_bytes_pass_every_byte_check() {
        let plain: Vec<char> = (0..=255u8)
            .filter(|&b| PLAIN[usize::from(b)])
            .map(char::from)
            .collect();
        assert!(plain.iter().all(|c| c.is_ascii() && !c.is_ascii_control()));
        for &a in &plain {
            for &b in &plain {
                let s = format!("{a}{b}:{a}{a}:{b}");
                assert_eq!(check_bytes(&s), Ok(()), "{s:?}");
            }
        }
        for c in ['.', '/', '\\', '{', '\0', '\x7f', 'é'] {
            assert!(!PLAIN[c.to_string().as_bytes()[0] as usize], "{c:?}");
        }
    }
}
