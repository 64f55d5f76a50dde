"""SafetyFilter: each behaviour on its own, with numbers worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from ros_nodes.safety import SafetyFilter, trained_rate_limits
from sim.config import TaskConfig

PERIOD = 0.08


def make(**kwargs) -> SafetyFilter:
    options = dict(max_rate_rad_s=1.0, control_period_s=PERIOD, watchdog_periods=3)
    options.update(kwargs)
    return SafetyFilter(("a", "b"), np.array([-1.0, 0.0]), np.array([1.0, 2.0]), **options)


def test_clamps_to_joint_limits_and_counts() -> None:
    safety = make(max_rate_rad_s=100.0)
    assert safety.command(np.array([5.0, -3.0]), 0.0)
    np.testing.assert_allclose(safety.update(np.zeros(2), 0.0), [1.0, 0.0])
    assert safety.counters.limit_hits == 1 and safety.counters.clamped_joints == {"a", "b"}
    safety.command(np.array([0.5, 1.0]), 0.05)
    assert safety.counters.limit_hits == 1


def test_rate_limit_moves_max_rate_times_period() -> None:
    safety = make()
    safety.command(np.array([1.0, 2.0]), 0.0)
    first = safety.update(np.zeros(2), 0.0)
    np.testing.assert_allclose(first, [0.08, 0.08])  # 1 rad/s x 0.08 s from where the hand is
    np.testing.assert_allclose(safety.update(np.zeros(2), 0.08), [0.16, 0.16])
    safety.command(np.array([0.2, 0.1]), 0.1)
    np.testing.assert_allclose(safety.update(np.zeros(2), 0.16), [0.2, 0.1])  # within one step: exact
    assert safety.counters.rate_limited_updates == 2


def test_nan_and_inf_are_rejected_keeping_the_last_good_target() -> None:
    safety = make(max_rate_rad_s=100.0)
    safety.command(np.array([0.5, 0.5]), 0.0)
    assert not safety.command(np.array([np.nan, 0.7]), 0.01)
    assert not safety.command(np.array([0.1, np.inf]), 0.02)
    assert safety.counters.nonfinite_rejected == 2
    assert "['b']" in safety.last_rejection
    np.testing.assert_allclose(safety.update(np.zeros(2), 0.05), [0.5, 0.5])


def test_watchdog_holds_current_position_after_three_periods() -> None:
    safety = make(max_rate_rad_s=100.0)
    safety.command(np.array([0.5, 0.5]), 0.0)
    np.testing.assert_allclose(safety.update(np.zeros(2), 0.0), [0.5, 0.5])
    np.testing.assert_allclose(safety.update(np.array([0.4, 0.4]), 0.24), [0.5, 0.5])  # 3 periods: still fresh
    assert not safety.watchdog_tripped
    held = safety.update(np.array([0.45, 0.3]), 0.25)
    np.testing.assert_allclose(held, [0.45, 0.3])  # stale: hold where the hand is
    assert safety.watchdog_tripped and safety.counters.watchdog_trips == 1
    np.testing.assert_allclose(safety.update(np.array([0.2, 0.2]), 0.33), [0.45, 0.3])
    safety.command(np.array([0.0, 0.0]), 0.4)
    assert not safety.watchdog_tripped
    np.testing.assert_allclose(safety.update(np.array([0.45, 0.3]), 0.4), [0.0, 0.0])


def test_disable_holds_and_enable_waits_for_a_new_command() -> None:
    safety = make(max_rate_rad_s=100.0)
    safety.command(np.array([0.5, 0.5]), 0.0)
    safety.update(np.zeros(2), 0.0)
    safety.set_enabled(False)
    safety.command(np.array([0.9, 0.9]), 0.05)
    np.testing.assert_allclose(safety.update(np.array([0.3, 0.2]), 0.08), [0.3, 0.2])
    safety.set_enabled(True)
    np.testing.assert_allclose(safety.update(np.array([0.3, 0.2]), 0.1), [0.3, 0.2])  # old 0.9 is forgotten
    safety.command(np.array([0.6, 0.6]), 0.12)
    np.testing.assert_allclose(safety.update(np.array([0.3, 0.2]), 0.16), [0.6, 0.6])
    start_disabled = make(enabled=False)
    start_disabled.command(np.array([0.5, 0.5]), 0.0)
    np.testing.assert_allclose(start_disabled.update(np.array([0.1, 0.1]), 0.0), [0.1, 0.1])


def test_partial_commands_keep_other_targets() -> None:
    safety = make(max_rate_rad_s=100.0)
    assert safety.command(np.array([0.3, 0.0]), 0.0, mask=np.array([True, False]))
    np.testing.assert_allclose(safety.update(np.array([0.1, 0.2]), 0.0), [0.3, 0.2])  # b: where the hand is
    assert safety.command(np.array([0.7, np.nan]), 0.01, mask=np.array([True, False]))
    assert safety.command(np.array([0.0, 0.9]), 0.02, mask=np.array([False, True]))
    np.testing.assert_allclose(safety.update(np.array([0.1, 0.2]), 0.08), [0.7, 0.9])


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="lower limit"):
        SafetyFilter(("a",), np.array([1.0]), np.array([0.0]), 1.0, PERIOD)


def test_trained_rate_limits_are_the_fastest_the_envs_ema_moves_a_target() -> None:
    # EMA 0.3 over ranges 3.364837 wide (a J0) and 0.698 wide (a knuckle), per 80 ms
    limits = np.array([[0.0, 3.364837], [-0.349, 0.349]])
    np.testing.assert_allclose(trained_rate_limits(limits, TaskConfig()), [0.3 * 3.364837 / 0.08, 0.3 * 0.698 / 0.08])


def test_counts_the_periods_in_which_it_changed_the_command() -> None:
    safety = make(max_rate_rad_s=np.array([1.0, 100.0]))
    safety.command(np.array([0.05, 0.3]), 0.0)
    first = safety.update(np.zeros(2), 0.0)
    np.testing.assert_array_equal(first, [0.05, 0.3])  # within reach: sent exactly, not 0 + (0.05 - 0)
    safety.command(np.array([0.5, 0.4]), 0.05)  # a: 0.45 away, 0.08 allowed per period
    np.testing.assert_allclose(safety.update(np.zeros(2), 0.08), [0.13, 0.4])
    safety.command(np.array([0.2, 2.5]), 0.1)  # b: beyond its upper limit 2.0
    np.testing.assert_allclose(safety.update(np.zeros(2), 0.16), [0.2, 2.0])
    safety.command(np.array([0.25, 1.0]), 0.2)
    np.testing.assert_array_equal(safety.update(np.zeros(2), 0.24), [0.25, 1.0])
    counters = safety.counters
    assert (counters.commanded_updates, counters.altered_updates) == (4, 2)
    assert counters.altered_fraction == 0.5
    safety.set_enabled(False)
    safety.update(np.zeros(2), 0.32)  # holding: no command to follow, nothing counted
    assert counters.commanded_updates == 4
