"""The componentize-py glue, natively, against the bindings componentize-py generates for
`wit/` (skipped when componentize-py is not installed)."""

import importlib
import pathlib
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tagbust_guest import Decision, Level, Operation, Rule, RuleError, RuleInfo, Strategy, export_rule
from tagbust_guest import rule as rule_module
from tagbust_guest._export import component_export, describe_exception

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def wit(tmp_path_factory):
    exe = shutil.which("componentize-py")
    if exe is None:
        pytest.skip("componentize-py is not installed (scripts/build-python-rules.sh installs it)")
    out = tmp_path_factory.mktemp("bindings")
    subprocess.run(
        [exe, "-d", str(ROOT / "wit"), "-w", "rule-component", "bindings", str(out)],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(out))
    try:
        types = importlib.import_module("wit_world.imports.types")
        log = importlib.import_module("wit_world.imports.log")
        cpt = importlib.import_module("componentize_py_types")
    finally:
        sys.path.remove(str(out))
    host = SimpleNamespace(config={}, logs=[], init_calls=0)
    config = SimpleNamespace(get=lambda k: host.config.get(k), keys=lambda: sorted(host.config))
    log_ns = SimpleNamespace(Level=log.Level, write=lambda lvl, msg, f: host.logs.append((lvl, msg, f)))
    return SimpleNamespace(
        types=types, config=config, log=log_ns, Ok=cpt.Ok, Err=cpt.Err, host=host, wit_log=log
    )


@pytest.fixture
def exported(monkeypatch, wit):
    monkeypatch.setattr(rule_module, "_exported", None)
    wit.host.config.clear()
    wit.host.logs.clear()
    wit.host.init_calls = 0

    @export_rule
    class Echo(Rule):
        def __init__(self, prefix):
            self.prefix = prefix

        @classmethod
        def info(cls):
            return RuleInfo(
                "echo", "1.0.0", priority=-3, resources=["posts"],
                operations=[Operation.BULK_DELETE], default_strategy=Strategy.BATCHED,
                description="d",
            )

        @classmethod
        def init(cls, ctx):
            wit.host.init_calls += 1
            prefix = ctx.config("prefix")
            if prefix is None:
                raise RuleError.Config("no prefix")
            ctx.log(Level.INFO, "init", {"keys": ",".join(ctx.config_keys())})
            return cls(prefix)

        def evaluate(self, event, ctx):
            if not event.ids:
                raise RuleError.InvalidEvent("no ids")
            if event.ids[0] == "boom":
                raise KeyError("boom")
            if event.ids[0] == "none":
                return None
            d = Decision()
            for i in event.ids:
                d.key(f"{self.prefix}:{i}")
            d.tag(event.context_value("t") or "-", Strategy.LAZY, cascade=True)
            return d

    return component_export(wit)()


def wit_event(wit, ids, op=None):
    t = wit.types
    return t.WriteEvent(
        tenant="acme", resource="posts", operation=op or t.Operation.BULK_DELETE, ids=ids,
        changes=[t.FieldChange("status", "a", None)], context=[("t", "tag:1")],
        transaction="tx", timestamp_ms=5,
    )


def test_describe_converts_rule_info(exported, wit):
    info = exported.describe()
    t = wit.types
    assert info == t.RuleInfo(
        name="echo", version="1.0.0", priority=-3, resources=["posts"],
        operations=[t.Operation.BULK_DELETE], default_strategy=t.Strategy.BATCHED, description="d",
    )


def test_one_result_per_event_and_one_init_per_batch(exported, wit):
    t = wit.types
    wit.host.config["prefix"] = "p"
    out = exported.evaluate([wit_event(wit, ["1", "2", "1"]), wit_event(wit, [])])
    assert wit.host.init_calls == 1
    assert out == [
        wit.Ok([
            t.Target(t.TargetKind.KEY, "p:1", t.Strategy.BATCHED, False),  # the rule's default
            t.Target(t.TargetKind.KEY, "p:2", t.Strategy.BATCHED, False),
            t.Target(t.TargetKind.TAG, "tag:1", t.Strategy.LAZY, True),
        ]),
        wit.Err(t.RuleError_InvalidEvent("no ids")),
    ]
    assert wit.host.logs == [(wit.wit_log.Level.INFO, "init", [("keys", "prefix")])]
    assert exported.evaluate([]) == [] and wit.host.init_calls == 2


def test_an_init_error_answers_every_event_of_the_batch(exported, wit):
    out = exported.evaluate([wit_event(wit, ["1"]), wit_event(wit, ["2"])])
    assert out == [wit.Err(wit.types.RuleError_Config("no prefix"))] * 2


def test_every_operation_converts(exported, wit):
    from tagbust_guest._export import event_from_wit

    for op in wit.types.Operation:
        assert event_from_wit(wit_event(wit, ["1"], op)).operation is Operation[op.name]
    e = event_from_wit(wit_event(wit, ["1"]))
    assert (e.tenant, e.resource, e.ids, e.transaction, e.timestamp_ms) == ("acme", "posts", ["1"], "tx", 5)
    assert e.changes[0].old == "a" and e.changes[0].new is None and e.context == [("t", "tag:1")]


def test_an_unexpected_exception_is_logged_then_raised(exported, wit):
    wit.host.config["prefix"] = "p"
    with pytest.raises(KeyError):
        exported.evaluate([wit_event(wit, ["boom"])])
    level, message, fields = wit.host.logs[-1]
    assert level == wit.wit_log.Level.ERROR and message == "rule raised in evaluate()"
    assert fields[0][1].startswith("KeyError: 'boom'")
    with pytest.raises(TypeError, match="must return a Decision"):
        exported.evaluate([wit_event(wit, ["none"])])


def test_exporting_nothing_is_an_error(monkeypatch, wit):
    monkeypatch.setattr(rule_module, "_exported", None)
    with pytest.raises(TypeError, match="no rule is exported"):
        component_export(wit)


def test_describe_exception_reads_no_source():
    try:
        {}["x"]
    except KeyError as e:
        text = describe_exception(e)
    assert text.splitlines()[0] == "KeyError: 'x'"
    assert "test_export.py" in text and "{}[" not in text


def test_versions_match_the_contract_and_the_workspace():
    import re
    import tagbust_guest

    wit_text = (ROOT / "wit" / "rules.wit").read_text()
    assert re.search(r"^package tagbust:rules@(\S+);", wit_text, re.M).group(1) == tagbust_guest.CONTRACT_VERSION
    cargo = (ROOT / "Cargo.toml").read_text()
    workspace_version = re.search(r'^\[workspace\.package\][^\[]*?^version = "([^"]+)"', cargo, re.M | re.S).group(1)
    assert workspace_version == tagbust_guest.SDK_VERSION
    pyproject = (ROOT / "guest-sdk" / "python" / "pyproject.toml").read_text()
    assert f'version = "{tagbust_guest.SDK_VERSION}"' in pyproject


def test_print_goes_to_the_host_log_line_by_line(exported, wit, monkeypatch):
    from tagbust_guest._export import Glue

    glue = Glue(rule_module.exported_rule(), wit)
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    glue.redirect_std_streams()
    print("hello", "world")
    print("partial", end="")
    sys.stderr.write("oops\n")
    glue.streams[0].flush()
    info, warn = wit.wit_log.Level.INFO, wit.wit_log.Level.WARN
    assert wit.host.logs == [
        (info, "hello world", [("stream", "stdout")]),
        (warn, "oops", [("stream", "stderr")]),
        (info, "partial", [("stream", "stdout")]),
    ]
