"""Who judges alerts in a consumer group, and the judge's memory of what it swept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.alerts.judge import AlertRole, Sweep

T0 = datetime(2024, 3, 2, 8, 0, tzinfo=UTC)


def test_the_holder_of_partition_zero_judges_and_knows_whether_it_is_alone() -> None:
    role = AlertRole()
    assert (role.judge, role.alone) == (True, True)  # a worker on its own
    role.assigned({0, 1, 2}, 3)
    assert (role.judge, role.alone, role.caught_up) == (True, True, False)
    role.assigned({0}, 3)
    assert (role.judge, role.alone) == (True, False)
    role.assigned({1, 2}, 3)
    assert (role.judge, role.alone) == (False, False)
    role.assigned(set(), 3)
    assert not role.judge


def test_a_kept_judge_catches_up_again_after_every_assignment_and_nothing_while_moving() -> None:
    role = AlertRole()
    role.assigned({0}, 2)
    role.caught_up = True
    role.sweep = Sweep(T0, timedelta(seconds=60))
    role.revoked()
    assert not role.judge
    role.assigned({0}, 2)
    assert (role.judge, role.caught_up, role.sweep) == (True, False, None)


def test_the_sweep_looks_back_its_margin_and_forgets_what_lies_beyond() -> None:
    sweep = Sweep(T0, timedelta(seconds=60))
    assert sweep.since == T0 - timedelta(seconds=60)
    sweep.note([("a", T0 + timedelta(seconds=10)), ("b", T0 + timedelta(seconds=100))])
    assert sweep.upto == T0 + timedelta(seconds=100)
    assert sweep.since == T0 + timedelta(seconds=40)
    assert set(sweep.judged) == {"b"}  # "a" can no longer come back in a sweep
    sweep.note([("late", T0 + timedelta(seconds=50))])  # another worker's slower batch
    assert sweep.upto == T0 + timedelta(seconds=100)  # never moves back
    assert set(sweep.judged) == {"b", "late"}
