//! Key templates: `"{run_id}:summary"` filled from an event.
//!
//! A placeholder names `tenant`, `resource`, `operation`, `id` (one of the event's ids, given by
//! the caller), or any key of the event's context. `{{` and `}}` are literal braces.
//!
//! [`escape_glob`] makes a value safe to place inside a glob `pattern` target.

use crate::{RuleError, WriteEvent};

/// Fills `template` from `event`; `id` fills `{id}`.
///
/// A placeholder the event cannot fill is a [`RuleError::InvalidEvent`] naming it, so a rule
/// never emits a half-rendered key such as `"{run_id}:summary"`.
pub fn render(template: &str, event: &WriteEvent, id: Option<&str>) -> Result<String, RuleError> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let brace = rest.as_bytes()[pos];
        let after = &rest[pos + 1..];
        if after.as_bytes().first() == Some(&brace) {
            out.push(brace as char);
            rest = &after[1..];
            continue;
        }
        if brace == b'}' {
            return Err(RuleError::Config(format!(
                "template `{template}` has an unmatched `}}`"
            )));
        }
        let end = after.find('}').ok_or_else(|| {
            RuleError::Config(format!("template `{template}` has an unclosed `{{`"))
        })?;
        let name = &after[..end];
        let value = match name {
            "tenant" => Some(event.tenant.as_str()),
            "resource" => Some(event.resource.as_str()),
            "operation" => Some(event.operation.as_str()),
            "id" => id,
            other => event.context(other),
        };
        let value = value.ok_or_else(|| {
            RuleError::InvalidEvent(format!(
                "template `{template}` needs `{name}`, which the event does not carry"
            ))
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Escapes glob metacharacters (`*`, `?`, `[`, `]`, backslash) in a value placed inside a
/// pattern, so data such as an id `7*` cannot widen `user:7*:*` to every user.
pub fn escape_glob(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Operation;

    fn event() -> WriteEvent {
        WriteEvent::new("acme", "tasks", Operation::Update).with_context("run_id", "300")
    }

    #[test]
    fn fills_context_builtin_and_id() {
        let s = render("{tenant}/{resource}:{run_id}:{id}", &event(), Some("7")).unwrap();
        assert_eq!(s, "acme/tasks:300:7");
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(render("{{x}}", &event(), None).unwrap(), "{x}");
    }

    #[test]
    fn missing_value_names_the_placeholder() {
        let err = render("{workflow}:x", &event(), None).unwrap_err();
        assert!(matches!(err, RuleError::InvalidEvent(m) if m.contains("`workflow`")));
        let err = render("{id}", &event(), None).unwrap_err();
        assert!(matches!(err, RuleError::InvalidEvent(_)));
    }

    #[test]
    fn malformed_templates_are_config_errors() {
        assert!(matches!(
            render("{run_id", &event(), None),
            Err(RuleError::Config(_))
        ));
        assert!(matches!(
            render("a}b", &event(), None),
            Err(RuleError::Config(_))
        ));
    }

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(escape_glob("plain:7"), "plain:7");
    }
}
