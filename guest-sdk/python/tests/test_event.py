import pytest

from tagbust_guest import FieldChange, Operation, WriteEvent


def test_operations_single_forms_first_and_bulk_forms_map_back():
    assert [o.value for o in Operation] == [
        "create", "update", "delete", "upsert",
        "bulk_create", "bulk_update", "bulk_delete", "bulk_upsert",
    ]
    assert [o.is_bulk for o in Operation] == [False] * 4 + [True] * 4
    assert Operation.BULK_DELETE.single is Operation.DELETE
    assert Operation.UPDATE.single is Operation.UPDATE
    assert Operation.BULK_UPSERT.as_str() == "bulk_upsert" == str(Operation.BULK_UPSERT)
    assert Operation("bulk_create") is Operation.BULK_CREATE


def publish():
    return WriteEvent("acme", "posts", Operation.UPDATE).with_change("status", "draft", "published")


def test_changed_to_needs_a_move_to_the_value():
    assert publish().changed_to("status", "published")
    assert not publish().changed_to("status", "draft")
    same = WriteEvent("acme", "posts", Operation.UPDATE).with_change("status", "published", "published")
    assert not same.changed_to("status", "published")
    assert not same.changed("status")
    assert publish().changed("status")
    assert not publish().changed("title")
    created = WriteEvent("acme", "posts", Operation.CREATE).with_change("status", None, "published")
    assert created.changed_to("status", "published")


def test_change_and_context_lookups():
    e = publish().with_context("run_id", "300").with_context("run_id", "301")
    assert e.change("status") == FieldChange("status", "draft", "published")
    assert e.change("title") is None
    assert e.context_value("run_id") == "300"  # the first, as in the Rust SDK
    assert e.context_value("missing") is None


def test_builders_fill_a_bare_event():
    e = WriteEvent("acme", "tasks", Operation.BULK_UPDATE).with_ids("a", "b").with_ids("c")
    assert e.ids == ["a", "b", "c"]
    assert (e.transaction, e.timestamp_ms, e.changes, e.context) == (None, 0, [], [])
    with pytest.raises(TypeError):
        e.with_ids(["d"])  # ids are passed one by one, never as a list that would nest
    # Events of separate instances never share lists.
    assert WriteEvent("a", "r", Operation.CREATE).ids is not WriteEvent("a", "r", Operation.CREATE).ids
