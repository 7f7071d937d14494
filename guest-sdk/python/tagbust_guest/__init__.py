"""tagbust-guest for Python: write cache-invalidation rules in plain Python.

A rule looks at one database write event and says which cached data must die. Subclass
``Rule``, export it with ``@export_rule``, and build it with ``scripts/build-python-rules.sh``
(componentize-py, WASI stubbed out) into a WebAssembly component the tagbust host runs
sandboxed. The types here are plain Python, so a rule's logic unit-tests with pytest::

    from tagbust_guest import Context, Decision, Operation, Rule, RuleInfo, WriteEvent, export_rule

    @export_rule
    class PublishedFeeds(Rule):
        @classmethod
        def info(cls):
            return RuleInfo("published-feeds", "1.0.0", resources=["posts"])

        def evaluate(self, event, ctx):
            d = Decision()
            if event.changed_to("status", "published"):
                d.tag("feed:home")
            return d

    event = WriteEvent("acme", "posts", Operation.UPDATE).with_change("status", "draft", "published")
    assert PublishedFeeds.init(Context.empty()).evaluate(event, Context.empty()).values() == ["feed:home"]

Modules: ``event`` (WriteEvent, Operation, FieldChange), ``decision`` (Decision, Target,
TargetKind, Strategy), ``rule`` (Rule, RuleInfo, RuleError, Context, Level, LogRecord,
export_rule), ``template`` (render, escape_glob). ``_export`` is the componentize-py glue.
"""

from .decision import Decision, Strategy, Target, TargetKind
from .event import FieldChange, Operation, WriteEvent
from .rule import Context, Level, LogRecord, Rule, RuleError, RuleInfo, export_rule
from .template import escape_glob, render

CONTRACT_VERSION = "0.1.0"
"""The version of the ``tagbust:rules`` WIT contract this SDK builds against."""

SDK_VERSION = "0.1.0"
"""The SDK's own version, stamped into every component built with it."""

LANGUAGE = "python"

STAMP_SECTION = "tagbust:sdk"
"""The custom section the build stamps into every component (the host reads it)."""


def stamp_text() -> str:
    """The stamp's payload: ``sdk=0.1.0;contract=0.1.0;language=python``."""
    return f"sdk={SDK_VERSION};contract={CONTRACT_VERSION};language={LANGUAGE}"


__all__ = [
    "CONTRACT_VERSION",
    "Context",
    "Decision",
    "FieldChange",
    "LANGUAGE",
    "Level",
    "LogRecord",
    "Operation",
    "Rule",
    "RuleError",
    "RuleInfo",
    "SDK_VERSION",
    "STAMP_SECTION",
    "Strategy",
    "Target",
    "TargetKind",
    "WriteEvent",
    "escape_glob",
    "export_rule",
    "render",
    "stamp_text",
]
