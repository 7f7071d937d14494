import pytest

from tagbust_guest import Decision, Strategy, Target, TargetKind


def test_duplicates_merge_to_the_sooner_strategy_and_or_cascade():
    d = (
        Decision()
        .add(Target.tag("a", strategy=Strategy.BATCHED))
        .key("k")
        .add(Target.tag("a", strategy=Strategy.IMMEDIATE, cascade=True))
        .tag("a")
    )
    assert len(d) == 2
    assert d.targets[0] == Target(TargetKind.TAG, "a", Strategy.IMMEDIATE, True)
    assert d.targets[1].kind is TargetKind.KEY


def test_urgency_is_immediate_then_lazy_then_batched():
    assert [s.urgency for s in (Strategy.IMMEDIATE, Strategy.LAZY, Strategy.BATCHED)] == [0, 1, 2]
    d = Decision().tag("t", Strategy.BATCHED).tag("t", Strategy.LAZY)
    assert d.targets[0].strategy is Strategy.LAZY
    d = Decision().tag("t", Strategy.LAZY).tag("t", Strategy.BATCHED)
    assert d.targets[0].strategy is Strategy.LAZY


def test_an_unset_strategy_never_overrides_and_is_filled_by_a_later_one():
    assert Decision().tag("t", Strategy.BATCHED).tag("t").targets[0].strategy is Strategy.BATCHED
    assert Decision().tag("t").tag("t", Strategy.BATCHED).targets[0].strategy is Strategy.BATCHED
    assert Decision().tag("t").tag("t").targets[0].strategy is None


def test_first_position_is_kept():
    d = Decision().key("a").key("b").key("c").key("a", Strategy.LAZY, cascade=True)
    assert d.values() == ["a", "b", "c"]
    assert d.targets[0].cascade


def test_same_value_of_another_kind_is_distinct():
    d = Decision().tag("x").key("x").pattern("x")
    assert len(d) == 3
    assert [t.kind for t in d] == [TargetKind.TAG, TargetKind.KEY, TargetKind.PATTERN]


def test_large_decisions_dedupe():
    d = Decision()
    for _ in range(3):
        for i in range(100):
            d.tag(f"t{i}")
        assert len(d) == 100
    assert d.targets[57].value == "t57"


def test_construct_from_targets_and_compare():
    d = Decision([Target.key("a"), Target.key("a", cascade=True)])
    assert d == Decision().key("a", cascade=True)
    assert not Decision() and Decision().is_empty()


def test_wrong_types_fail_at_the_call():
    with pytest.raises(TypeError):
        Decision().add("a")
    with pytest.raises(TypeError):
        Decision().tag(7)
    with pytest.raises(TypeError):
        Decision().tag("a", strategy="immediate")
