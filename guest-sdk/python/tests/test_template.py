import pytest

from tagbust_guest import Operation, RuleError, WriteEvent, escape_glob, render


def event():
    return WriteEvent("acme", "tasks", Operation.BULK_UPDATE).with_context("run_id", "300")


def test_fills_context_builtin_and_id():
    assert render("{tenant}/{resource}:{run_id}:{id}", event(), "7") == "acme/tasks:300:7"
    assert render("{operation}", event()) == "bulk_update"


def test_doubled_braces_are_literal():
    assert render("{{x}}", event()) == "{x}"
    assert render("a{{{run_id}}}b", event()) == "a{300}b"


def test_missing_value_names_the_placeholder():
    with pytest.raises(RuleError.InvalidEvent, match="`workflow`"):
        render("{workflow}:x", event())
    with pytest.raises(RuleError.InvalidEvent):
        render("{id}", event())


def test_malformed_templates_are_config_errors():
    with pytest.raises(RuleError.Config, match="unclosed `{`"):
        render("{run_id", event())
    with pytest.raises(RuleError.Config, match="unmatched `}`"):
        render("a}b", event())


def test_glob_metacharacters_are_escaped():
    assert escape_glob("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert escape_glob("plain:7") == "plain:7"
