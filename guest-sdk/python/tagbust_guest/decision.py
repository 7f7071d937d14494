"""What a rule returns for one event: targets to invalidate, deduplicated as they are added."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Dict, Iterable, Iterator, List, Optional, Tuple


class TargetKind(enum.Enum):
    """What a target names."""

    TAG = "tag"
    """Every cache entry labelled with this tag."""
    KEY = "key"
    """One cache entry, by key."""
    PATTERN = "pattern"
    """Every cache entry whose key matches this glob (``*``, ``?``, ``[abc]``)."""


class Strategy(enum.Enum):
    """When and how an invalidation is applied."""

    IMMEDIATE = "immediate"
    """Applied as soon as the event is processed."""
    BATCHED = "batched"
    """Coalesced inside the host's batching window."""
    LAZY = "lazy"
    """A tag version bump: stale entries read as misses."""

    @property
    def urgency(self) -> int:
        """How soon the strategy makes the data disappear: lower is sooner (immediate 0, lazy 1,
        batched 2). When one target is asked for twice, the sooner strategy wins."""
        return _URGENCY[self]


_URGENCY = {Strategy.IMMEDIATE: 0, Strategy.LAZY: 1, Strategy.BATCHED: 2}


@dataclass(frozen=True)
class Target:
    """One thing to invalidate. A target without a strategy gets the rule's default one."""

    kind: TargetKind
    value: str
    strategy: Optional[Strategy] = None
    cascade: bool = False
    """Also invalidate what depends on this target through the tenant's relationships."""

    @classmethod
    def tag(cls, value: str, strategy: Optional[Strategy] = None, cascade: bool = False) -> "Target":
        """A cache tag."""
        return cls(TargetKind.TAG, value, strategy, cascade)

    @classmethod
    def key(cls, value: str, strategy: Optional[Strategy] = None, cascade: bool = False) -> "Target":
        """An exact cache key."""
        return cls(TargetKind.KEY, value, strategy, cascade)

    @classmethod
    def pattern(
        cls, value: str, strategy: Optional[Strategy] = None, cascade: bool = False
    ) -> "Target":
        """A glob over cache keys (``*``, ``?``, ``[abc]``)."""
        return cls(TargetKind.PATTERN, value, strategy, cascade)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, TargetKind):
            raise TypeError(f"kind must be a TargetKind, not {self.kind!r}")
        if not isinstance(self.value, str):
            raise TypeError(f"a target value is a str, not {type(self.value).__name__}")
        if self.strategy is not None and not isinstance(self.strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy or None, not {self.strategy!r}")


class Decision:
    """The targets a rule returns for one event, in the order first added, without duplicates.

    Adding a target that is already present (same kind and value) merges the two: the first
    position is kept, the sooner strategy wins, and the cascade flags are or-ed, so a rule
    never has to track what it already emitted. ``tag``, ``key``, ``pattern`` and ``add``
    return the decision, for chaining.
    """

    __slots__ = ("_targets", "_index")

    def __init__(self, targets: Iterable[Target] = ()) -> None:
        self._targets: List[Target] = []
        self._index: Dict[Tuple[TargetKind, str], int] = {}
        self.extend(targets)

    def add(self, target: Target) -> "Decision":
        """Adds a target, merging it with an equal one already present."""
        if not isinstance(target, Target):
            raise TypeError(f"add takes a Target, not {type(target).__name__}")
        at = self._index.get((target.kind, target.value))
        if at is None:
            self._index[(target.kind, target.value)] = len(self._targets)
            self._targets.append(target)
            return self
        existing = self._targets[at]
        strategy = existing.strategy
        if strategy is None:
            strategy = target.strategy
        elif target.strategy is not None and target.strategy.urgency < strategy.urgency:
            strategy = target.strategy
        self._targets[at] = replace(
            existing, strategy=strategy, cascade=existing.cascade or target.cascade
        )
        return self

    def extend(self, targets: Iterable[Target]) -> "Decision":
        """Adds every target, in order."""
        for t in targets:
            self.add(t)
        return self

    def tag(self, value: str, strategy: Optional[Strategy] = None, cascade: bool = False) -> "Decision":
        """Adds a tag (with the rule's default strategy unless one is given)."""
        return self.add(Target.tag(value, strategy, cascade))

    def key(self, value: str, strategy: Optional[Strategy] = None, cascade: bool = False) -> "Decision":
        """Adds a key (with the rule's default strategy unless one is given)."""
        return self.add(Target.key(value, strategy, cascade))

    def pattern(
        self, value: str, strategy: Optional[Strategy] = None, cascade: bool = False
    ) -> "Decision":
        """Adds a glob pattern (with the rule's default strategy unless one is given)."""
        return self.add(Target.pattern(value, strategy, cascade))

    @property
    def targets(self) -> Tuple[Target, ...]:
        """The targets, in the order first added."""
        return tuple(self._targets)

    def values(self) -> List[str]:
        """The target values, in order (handy in tests)."""
        return [t.value for t in self._targets]

    def is_empty(self) -> bool:
        """True when there is nothing to invalidate."""
        return not self._targets

    def __len__(self) -> int:
        return len(self._targets)

    def __iter__(self) -> Iterator[Target]:
        return iter(tuple(self._targets))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self._targets == other._targets

    def __repr__(self) -> str:
        return f"Decision({self._targets!r})"
