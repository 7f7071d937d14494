"""Key templates: ``"{run_id}:summary"`` filled from an event.

A placeholder names ``tenant``, ``resource``, ``operation``, ``id`` (one of the event's ids,
given by the caller), or any key of the event's context. ``{{`` and ``}}`` are literal braces.

``escape_glob`` makes a value safe to place inside a glob ``pattern`` target.
"""

from __future__ import annotations

from typing import Optional

from .event import WriteEvent
from .rule import RuleError


def render(template: str, event: WriteEvent, id: Optional[str] = None) -> str:
    """Fills ``template`` from ``event``; ``id`` fills ``{id}``.

    A placeholder the event cannot fill raises ``RuleError.InvalidEvent`` naming it, so a rule
    never emits a half-rendered key such as ``"{run_id}:summary"``; a malformed template raises
    ``RuleError.Config``.
    """
    out = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c not in "{}":
            j = i
            while j < n and template[j] not in "{}":
                j += 1
            out.append(template[i:j])
            i = j
            continue
        if i + 1 < n and template[i + 1] == c:
            out.append(c)
            i += 2
            continue
        if c == "}":
            raise RuleError.Config(f"template `{template}` has an unmatched `}}`")
        end = template.find("}", i + 1)
        if end < 0:
            raise RuleError.Config(f"template `{template}` has an unclosed `{{`")
        name = template[i + 1 : end]
        if name == "tenant":
            value: Optional[str] = event.tenant
        elif name == "resource":
            value = event.resource
        elif name == "operation":
            value = event.operation.as_str()
        elif name == "id":
            value = id
        else:
            value = event.context_value(name)
        if value is None:
            raise RuleError.InvalidEvent(
                f"template `{template}` needs `{name}`, which the event does not carry"
            )
        out.append(value)
        i = end + 1
    return "".join(out)


_GLOB_META = frozenset("*?[]\\")


def escape_glob(value: str) -> str:
    """Escapes glob metacharacters (``*``, ``?``, ``[``, ``]``, backslash) in a value placed
    inside a pattern, so data such as an id ``7*`` cannot widen ``user:7*:*`` to every user."""
    return "".join("\\" + c if c in _GLOB_META else c for c in value)
