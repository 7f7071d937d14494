"""The write event a rule sees: plain Python, identical inside a component and in pytest."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


class Operation(enum.Enum):
    """What the write did. Bulk forms are their own members so that no rule can forget them.

    ``list(Operation)`` gives every operation, single forms first. The value is the snake_case
    name used in events and configuration (``"bulk_delete"``).
    """

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UPSERT = "upsert"
    BULK_CREATE = "bulk_create"
    BULK_UPDATE = "bulk_update"
    BULK_DELETE = "bulk_delete"
    BULK_UPSERT = "bulk_upsert"

    @property
    def is_bulk(self) -> bool:
        """True for the bulk forms."""
        return self.value.startswith("bulk_")

    @property
    def single(self) -> "Operation":
        """The single-row form of this operation (``BULK_DELETE`` -> ``DELETE``)."""
        return Operation(self.value[len("bulk_"):]) if self.is_bulk else self

    def as_str(self) -> str:
        """The snake_case name (``"bulk_delete"``)."""
        return self.value

    def __str__(self) -> str:
        return self.value


@dataclass
class FieldChange:
    """One changed field: ``old`` is None for a create, ``new`` is None for a delete."""

    field: str
    old: Optional[str] = None
    new: Optional[str] = None


@dataclass
class WriteEvent:
    """One write to the source of truth, as the host hands it to a rule."""

    tenant: str
    resource: str
    operation: Operation
    ids: List[str] = field(default_factory=list)
    changes: List[FieldChange] = field(default_factory=list)
    context: List[Tuple[str, str]] = field(default_factory=list)
    transaction: Optional[str] = None
    timestamp_ms: int = 0

    def with_ids(self, *ids: str) -> "WriteEvent":
        """Adds affected ids; returns the event, for chaining."""
        for i in ids:
            if not isinstance(i, str):
                raise TypeError(f"an id is a str, not {type(i).__name__}: {i!r}")
        self.ids.extend(ids)
        return self

    def with_change(self, field: str, old: Optional[str], new: Optional[str]) -> "WriteEvent":
        """Adds a changed field; returns the event, for chaining."""
        self.changes.append(FieldChange(field, old, new))
        return self

    def with_context(self, key: str, value: str) -> "WriteEvent":
        """Adds a context pair; returns the event, for chaining."""
        self.context.append((key, value))
        return self

    def change(self, field: str) -> Optional[FieldChange]:
        """The change to ``field``, if the write touched it."""
        for c in self.changes:
            if c.field == field:
                return c
        return None

    def changed(self, field: str) -> bool:
        """True when the write changed ``field`` at all (its old and new values differ)."""
        c = self.change(field)
        return c is not None and c.old != c.new

    def changed_to(self, field: str, value: str) -> bool:
        """True when the write moved ``field`` to ``value`` from something else."""
        c = self.change(field)
        return c is not None and c.new == value and c.old != value

    def context_value(self, key: str) -> Optional[str]:
        """The writer's context value under ``key`` (the first one, as in the Rust SDK)."""
        for k, v in self.context:
            if k == key:
                return v
        return None
