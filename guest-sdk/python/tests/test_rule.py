import pytest

import tagbust_guest
from tagbust_guest import (
    Context,
    Decision,
    Level,
    LogRecord,
    Operation,
    Rule,
    RuleError,
    RuleInfo,
    Strategy,
    WriteEvent,
    export_rule,
)
from tagbust_guest import rule as rule_module


def test_rule_info_defaults_and_builder():
    info = RuleInfo("r", "1.0.0")
    assert (info.priority, info.resources, info.operations) == (0, [], [])
    assert (info.default_strategy, info.description) == (Strategy.IMMEDIATE, "")
    built = (
        RuleInfo("r", "1.0.0")
        .with_priority(10)
        .with_resources("posts", "users")
        .with_operations(Operation.UPDATE, Operation.BULK_UPDATE)
        .with_default_strategy(Strategy.BATCHED)
        .with_description("d")
    )
    assert built == RuleInfo(
        "r", "1.0.0", 10, ["posts", "users"], [Operation.UPDATE, Operation.BULK_UPDATE],
        Strategy.BATCHED, "d",
    )
    with pytest.raises(ValueError):
        RuleInfo("r", "1").with_priority(2**31)
    with pytest.raises(TypeError):
        RuleInfo("r", "1").with_operations("update")


def test_rule_errors_have_three_kinds_and_display_like_rust():
    e = RuleError.InvalidEvent("no run_id")
    assert isinstance(e, RuleError) and e.kind == "invalid_event" and e.message == "no run_id"
    assert str(e) == "invalid event: no run_id"
    assert str(RuleError.Config("m")) == "configuration: m"
    assert str(RuleError.Other("m")) == "m"
    assert RuleError.Config("m") == RuleError.Config("m") != RuleError.Other("m")
    assert repr(RuleError.Config("m")) == "RuleError.Config('m')"
    with pytest.raises(RuleError):
        raise RuleError.Other("caught by the base class")


def test_context_config_and_logs():
    ctx = Context.with_config({"b": "2", "a": "1"})
    assert ctx.config("a") == "1" and ctx.config("z") is None
    assert ctx.config_keys() == ["a", "b"]
    assert ctx.require_config("b") == "2"
    with pytest.raises(RuleError.Config, match="`z`"):
        ctx.require_config("z")
    ctx.log(Level.INFO, "hello", {"k": "v"})
    ctx.log(Level.DEBUG, "pairs", [("a", "1"), ("b", "2")])
    ctx.warn("careful")
    assert ctx.logs() == [
        LogRecord(Level.INFO, "hello", (("k", "v"),)),
        LogRecord(Level.DEBUG, "pairs", (("a", "1"), ("b", "2"))),
        LogRecord(Level.WARN, "careful"),
    ]
    assert Context.empty().config_keys() == []
    with pytest.raises(TypeError):
        Context()
    with pytest.raises(TypeError):
        Context.with_config({"n": 1})


@pytest.fixture
def clean_export(monkeypatch):
    monkeypatch.setattr(rule_module, "_exported", None)


def test_export_rule_registers_one_rule_and_returns_it_unchanged(clean_export):
    class Feeds(Rule):
        @classmethod
        def info(cls):
            return RuleInfo("feeds", "1.0.0")

        def evaluate(self, event, ctx):
            return Decision().tag("feed:home")

    assert export_rule(Feeds) is Feeds
    assert rule_module.exported_rule() is Feeds
    assert export_rule(Feeds) is Feeds  # re-importing the same module is harmless

    class Another(Feeds):
        pass

    with pytest.raises(TypeError, match="twice"):
        export_rule(Another)

    ev = WriteEvent("acme", "posts", Operation.UPDATE)
    assert Feeds.init(Context.empty()).evaluate(ev, Context.empty()).values() == ["feed:home"]


def test_export_rule_refuses_what_is_not_a_rule(clean_export):
    with pytest.raises(TypeError, match="subclass of tagbust_guest.Rule"):
        export_rule(object)
    with pytest.raises(TypeError, match="subclass"):
        export_rule(lambda: None)

    class NoInfo(Rule):
        def evaluate(self, event, ctx):
            return Decision()

    with pytest.raises(TypeError, match="info"):
        export_rule(NoInfo)

    class NoEvaluate(Rule):
        @staticmethod
        def info():
            return RuleInfo("x", "1")

    with pytest.raises(TypeError, match="evaluate"):
        export_rule(NoEvaluate)
    assert rule_module.exported_rule() is None


def test_stamp_matches_the_rust_sdk_format():
    assert tagbust_guest.stamp_text() == "sdk=0.1.0;contract=0.1.0;language=python"
    assert tagbust_guest.STAMP_SECTION == "tagbust:sdk"
