"""The Rust task-controllers rule's tests (its unit tests, tests/tests/examples.rs and the rule
logic of seed 002 in tests/tests/seeds/task_controllers.rs), same events, same expected
targets, against the Python rule."""

import json

import pytest

from tagbust_guest import Context, Level, Operation, RuleError, Strategy, TargetKind, WriteEvent
from task_controllers import TaskControllers

CACHE_KEYS = {"climate": "{run_id}:climate", "wepp": "{run_id}:wepp", "soils": "{run_id}:soils"}


def ctx():
    return Context.with_config(
        {
            "rules": json.dumps(
                {
                    "build_climate": {"invalidates_cache": ["climate", "wepp"]},
                    "build_soils": {"invalidates_cache": ["soils"]},
                }
            ),
            "cache_keys": json.dumps(CACHE_KEYS),
        }
    )


def completed(task, run="300", tenant="lab"):
    return (
        WriteEvent(tenant, "tasks", Operation.UPDATE)
        .with_ids(task)
        .with_context("run_id", run)
        .with_change("status", "running", "completed")
    )


def keys(ctx, event):
    rule = TaskControllers.init(ctx)
    return rule.evaluate(event, ctx).values()


# --- the Rust crate's unit tests -------------------------------------------------------------


def test_completed_task_kills_its_controllers():
    assert keys(ctx(), completed("build_climate")) == ["300:climate", "300:wepp"]


def test_other_status_changes_and_unknown_tasks_kill_nothing():
    e = completed("build_climate")
    e.changes[0].new = "failed"
    assert keys(ctx(), e) == []
    assert keys(ctx(), completed("unknown_task")) == []


def test_missing_table_is_a_config_error_with_a_warning():
    c = Context.with_config({"rules": "{}"})
    with pytest.raises(RuleError.Config, match="cache_keys"):
        keys(c, completed("build_climate"))
    assert c.logs()[0].level == Level.WARN


def test_malformed_table_is_a_config_error():
    c = Context.with_config({"rules": "{not json", "cache_keys": "{}"})
    with pytest.raises(RuleError.Config):
        keys(c, completed("x"))


def test_missing_template_value_is_an_invalid_event():
    e = completed("build_climate")
    e.context.clear()
    with pytest.raises(RuleError.InvalidEvent):
        keys(ctx(), e)


# --- tests/tests/examples.rs: task_controllers_reads_its_tenant_table -----------------------


def test_describes_itself_as_the_rust_rule_does():
    info = TaskControllers.info()
    assert (info.name, info.version, info.priority) == ("task-controllers", "1.0.0", 20)
    assert info.resources == ["tasks"]
    assert info.operations == [
        Operation.UPDATE,
        Operation.UPSERT,
        Operation.BULK_UPDATE,
        Operation.BULK_UPSERT,
    ]
    assert info.default_strategy == Strategy.IMMEDIATE
    assert info.description == "Kills controller caches named by the tenant's task table"


def test_reads_its_tenant_table():
    c = Context.with_config(
        {
            "rules": json.dumps({"build_climate": {"invalidates_cache": ["climate", "wepp"]}}),
            "cache_keys": json.dumps({"climate": "{run_id}:climate", "wepp": "{run_id}:wepp"}),
        }
    )
    d = TaskControllers.init(c).evaluate(completed("build_climate"), c)
    assert [(t.kind, t.value) for t in d] == [
        (TargetKind.KEY, "300:climate"),
        (TargetKind.KEY, "300:wepp"),
    ]
    assert all(t.strategy is None and not t.cascade for t in d)  # the default, immediate

    bare = Context.empty()
    with pytest.raises(RuleError.Config):
        TaskControllers.init(bare)
    assert bare.logs()[0].level == Level.WARN


# --- seed 002 (tests/tests/seeds/task_controllers.rs), the rule's part ----------------------


def table(rules):
    return Context.with_config({"rules": json.dumps(rules), "cache_keys": json.dumps(CACHE_KEYS)})


LAB = {
    "build_climate": {"invalidates_cache": ["climate", "wepp"]},
    "build_soils": {"invalidates_cache": ["soils", "wepp"]},
}
FARM = {"build_climate": {"invalidates_cache": ["climate"]}}


def test_one_component_many_tenant_tables():
    assert keys(table(LAB), completed("build_climate", tenant="lab")) == ["300:climate", "300:wepp"]
    assert keys(table(FARM), completed("build_climate", tenant="farm")) == ["300:climate"]
    failed = completed("build_soils", "301")
    failed.changes[0].new = "failed"
    assert keys(table(LAB), failed) == []
    assert keys(table(LAB), completed("export_report", "301")) == []


def test_missing_or_malformed_table_messages():
    bare = Context.empty()
    with pytest.raises(RuleError.Config, match="no `rules` table"):
        TaskControllers.init(bare)
    broken = Context.with_config({"rules": "{not json", "cache_keys": "{}"})
    with pytest.raises(RuleError.Config, match="not a valid"):
        TaskControllers.init(broken)
    for c in (bare, broken):
        assert c.logs()[0].level == Level.WARN


def test_a_changed_table_applies_to_the_next_batch():
    # init runs once per batch and reads the table afresh: no cache that outlives it.
    assert keys(table(LAB), completed("build_climate")) == ["300:climate", "300:wepp"]
    soils_only = {"build_climate": {"invalidates_cache": ["soils"]}}
    assert keys(table(soils_only), completed("build_climate")) == ["300:soils"]


def test_a_controller_without_a_template_is_a_config_error_naming_it():
    c = Context.with_config(
        {
            "rules": json.dumps({"build_climate": {"invalidates_cache": ["climate", "gone"]}}),
            "cache_keys": json.dumps(CACHE_KEYS),
        }
    )
    with pytest.raises(RuleError.Config, match="controller `gone`"):
        keys(c, completed("build_climate"))
    assert c.logs()[-1].fields == (("controller", "gone"),)


@pytest.mark.parametrize(
    "rules, cache_keys",
    [
        ("[]", "{}"),
        ('{"t": {"invalidates_cache": "climate"}}', "{}"),
        ('{"t": {}}', "{}"),
        ('{"t": {"invalidates_cache": [1]}}', "{}"),
        ("{}", '{"climate": 7}'),
        ("{}", "[" * 100_000),
    ],
)
def test_tables_of_the_wrong_shape_are_config_errors(rules, cache_keys):
    c = Context.with_config({"rules": rules, "cache_keys": cache_keys})
    with pytest.raises(RuleError.Config, match="is not a valid table"):
        TaskControllers.init(c)
    assert [r.message for r in c.logs()] == ["rule table malformed"]


def test_bulk_updates_kill_every_named_task_once():
    e = completed("build_climate")
    e.operation = Operation.BULK_UPDATE
    e.with_ids("build_soils", "build_climate")
    assert keys(table(LAB), e) == ["300:climate", "300:wepp", "300:soils"]
