"""The base class a rule author subclasses, and what a rule can ask of its host."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .decision import Decision, Strategy
from .event import Operation, WriteEvent


@dataclass
class RuleInfo:
    """How a rule introduces itself. Read once, when the host loads the component.

    ``RuleInfo("published-feeds", "1.0.0")`` triggers on everything, priority 0, immediate by
    default; the builder methods narrow it and return the info, for chaining.
    """

    name: str
    version: str
    priority: int = 0
    """Higher applies first; ties are broken by name."""
    resources: List[str] = field(default_factory=list)
    """Resources the rule triggers on; empty means every resource."""
    operations: List[Operation] = field(default_factory=list)
    """Operations the rule triggers on; empty means every operation."""
    default_strategy: Strategy = Strategy.IMMEDIATE
    """The strategy of targets that name none."""
    description: str = ""

    def with_priority(self, priority: int) -> "RuleInfo":
        if not isinstance(priority, int) or not -(2**31) <= priority < 2**31:
            raise ValueError(f"priority must be a 32-bit signed int, not {priority!r}")
        self.priority = priority
        return self

    def with_resources(self, *resources: str) -> "RuleInfo":
        self.resources = list(resources)
        return self

    def with_operations(self, *operations: Operation) -> "RuleInfo":
        for op in operations:
            if not isinstance(op, Operation):
                raise TypeError(f"operations are Operation members, not {op!r}")
        self.operations = list(operations)
        return self

    def with_default_strategy(self, strategy: Strategy) -> "RuleInfo":
        if not isinstance(strategy, Strategy):
            raise TypeError(f"default_strategy is a Strategy, not {strategy!r}")
        self.default_strategy = strategy
        return self

    def with_description(self, description: str) -> "RuleInfo":
        self.description = description
        return self


class RuleError(Exception):
    """A rule's own, expected failure for one event (or, from ``init``, for the whole batch).

    Raise one of its three kinds, named as in the contract::

        raise RuleError.InvalidEvent("no run_id in the context")
        raise RuleError.Config("no `rules` table is configured for this tenant")
        raise RuleError.Other("anything else")

    Any other exception is a bug: inside a component it is logged at ERROR and then traps, and
    the host applies the rule's failure policy, as for a panic in a Rust rule.
    """

    kind = "other"
    _prefix = ""

    # The three kinds, set below (``RuleError.Config`` etc.).
    InvalidEvent: type
    Config: type
    Other: type

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self._prefix + self.message

    def __repr__(self) -> str:
        return f"RuleError.{type(self).__name__}({self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RuleError):
            return NotImplemented
        return self.kind == other.kind and self.message == other.message

    def __hash__(self) -> int:
        return hash((self.kind, self.message))


class _InvalidEvent(RuleError):
    """The event lacks something the rule needs, or holds a value it cannot use."""

    kind = "invalid_event"
    _prefix = "invalid event: "


class _Config(RuleError):
    """The tenant's configuration of the rule is missing or malformed."""

    kind = "config"
    _prefix = "configuration: "


class _Other(RuleError):
    """Anything else the rule wants to report."""

    kind = "other"


for _cls, _name in ((_InvalidEvent, "InvalidEvent"), (_Config, "Config"), (_Other, "Other")):
    _cls.__name__ = _name
    _cls.__qualname__ = f"RuleError.{_name}"
    setattr(RuleError, _name, _cls)
del _cls, _name


class Level(enum.IntEnum):
    """Severity of a log record."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


@dataclass(frozen=True)
class LogRecord:
    """One log record, as kept by a test ``Context``."""

    level: Level
    message: str
    fields: Tuple[Tuple[str, str], ...] = ()


Fields = Union[Mapping[str, str], Sequence[Tuple[str, str]], None]


class Context:
    """What a rule can ask of its host: its per-tenant configuration, and logging.

    Inside a component both go to the host. In unit tests build one with
    ``Context.with_config({...})`` (or ``Context.empty()``); its log records are kept in
    ``logs()`` for assertions.
    """

    __slots__ = ("_get", "_keys", "_write", "_config", "_logs")

    def __init__(self) -> None:
        raise TypeError("use Context.with_config(...) or Context.empty()")

    @classmethod
    def _make(cls, get, keys, write, config, logs) -> "Context":
        ctx = object.__new__(cls)
        ctx._get, ctx._keys, ctx._write = get, keys, write
        ctx._config, ctx._logs = config, logs
        return ctx

    @classmethod
    def with_config(
        cls, pairs: Union[Mapping[str, str], Iterable[Tuple[str, str]]] = ()
    ) -> "Context":
        """A local context with this configuration, for unit tests."""
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        config: Dict[str, str] = {}
        for k, v in items:
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"configuration keys and values are str: {k!r}={v!r}")
            config[k] = v
        return cls._make(None, None, None, config, [])

    @classmethod
    def empty(cls) -> "Context":
        """A local context with no configuration."""
        return cls.with_config()

    @classmethod
    def _host(
        cls,
        get: Callable[[str], Optional[str]],
        keys: Callable[[], List[str]],
        write: Callable[[Level, str, List[Tuple[str, str]]], None],
    ) -> "Context":
        """A context backed by the host; only the component export creates one."""
        return cls._make(get, keys, write, None, None)

    def config(self, key: str) -> Optional[str]:
        """The configured value under ``key``, or None."""
        if self._config is not None:
            return self._config.get(key)
        return self._get(key)

    def config_keys(self) -> List[str]:
        """Every configured key, sorted."""
        if self._config is not None:
            return sorted(self._config)
        return list(self._keys())

    def require_config(self, key: str) -> str:
        """The configured value under ``key``; raises ``RuleError.Config`` naming the key."""
        value = self.config(key)
        if value is None:
            raise RuleError.Config(f"missing configuration key `{key}`")
        return value

    def log(self, level: Level, message: str, fields: Fields = None) -> None:
        """Writes a log record to the host, which tags it with tenant and rule."""
        if fields is None:
            pairs: List[Tuple[str, str]] = []
        elif isinstance(fields, Mapping):
            pairs = [(str(k), str(v)) for k, v in fields.items()]
        else:
            pairs = [(str(k), str(v)) for k, v in fields]
        level = Level(level)
        if self._logs is not None:
            self._logs.append(LogRecord(level, message, tuple(pairs)))
        else:
            self._write(level, message, pairs)

    def warn(self, message: str) -> None:
        """Shorthand for a warning without fields."""
        self.log(Level.WARN, message)

    def logs(self) -> List[LogRecord]:
        """The records logged so far (always empty for a host context)."""
        return list(self._logs) if self._logs is not None else []


class Rule:
    """A cache-invalidation rule. Subclass it and export the subclass with ``@export_rule``.

    - ``info()`` (a classmethod) names the rule and what it triggers on; read once, when the
      host loads the component.
    - ``init(ctx)`` (a classmethod) prepares the rule for one batch of events of one tenant:
      parse your configuration there. The default calls ``cls()``.
    - ``evaluate(event, ctx)`` says what one event invalidates: return a ``Decision``, or raise
      a ``RuleError``.
    """

    @classmethod
    def info(cls) -> RuleInfo:
        raise NotImplementedError(f"{cls.__name__} must define the classmethod info()")

    @classmethod
    def init(cls, ctx: Context) -> "Rule":
        return cls()

    def evaluate(self, event: WriteEvent, ctx: Context) -> Decision:
        raise NotImplementedError(f"{type(self).__name__} must define evaluate(event, ctx)")


_exported: Optional[type] = None


def export_rule(cls: type) -> type:
    """Class decorator: exports ``cls`` as the component's ``tagbust:rules/rule``.

    Use it once per component. It returns the class unchanged, so the rule's module still
    imports and unit-tests with plain pytest. A class that is not a ``Rule`` subclass, or a
    second exported class, is a ``TypeError`` at import time (for a component: at build time).
    """
    global _exported
    if not isinstance(cls, type) or not issubclass(cls, Rule):
        raise TypeError(
            f"@export_rule takes a subclass of tagbust_guest.Rule, not {cls!r}"
        )
    if getattr(cls.info, "__func__", cls.info) is Rule.info.__func__:
        raise TypeError(f"{cls.__name__} must define the classmethod info()")
    if cls.evaluate is Rule.evaluate:
        raise TypeError(f"{cls.__name__} must define evaluate(self, event, ctx)")
    if _exported is not None and _exported is not cls:
        raise TypeError(
            f"@export_rule used twice ({_exported.__qualname__} and {cls.__qualname__}): "
            "a component exports exactly one rule"
        )
    _exported = cls
    return cls


def exported_rule() -> Optional[type]:
    """The class ``@export_rule`` registered, if any."""
    return _exported
