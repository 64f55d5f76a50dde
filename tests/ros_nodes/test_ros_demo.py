"""The demo's summary of a run: trials from the goal manager's status sequence, estimate vs truth errors."""
from __future__ import annotations

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.demo import pose_errors, trial_results


def status(trial: int, state: str, successes: int, results: list[int], ended_by: str | None = None) -> dict:
    return {"trial": trial, "state": state, "successes": successes, "ended_by": ended_by, "results": results}


def test_trials_with_how_each_ended_and_a_running_one_as_stopped() -> None:
    statuses = [
        status(0, "waiting", 0, []),
        status(1, "running", 2, []),
        status(1, "resetting", 3, [3], "drop"),
        status(1, "waiting", 3, [3], "drop"),
        status(2, "running", 0, [3]),
        status(2, "resetting", 50, [3, 50], "max_successes"),
        status(3, "running", 4, [3, 50]),
    ]
    assert trial_results(statuses) == [
        {"trial": 1, "successes": 3, "ended_by": "drop"},
        {"trial": 2, "successes": 50, "ended_by": "max_successes"},
        {"trial": 3, "successes": 4, "ended_by": "stopped"},
    ]
    assert trial_results(statuses[:-1] + [status(2, "done", 50, [3, 50], "max_successes")])[-1]["ended_by"] == \
        "max_successes"
    assert trial_results([]) == []


def pose(x: float, yaw_rad: float) -> msgs.PoseStamped:
    return msgs.PoseStamped(pose=msgs.Pose(
        position=msgs.Point(x=x, y=0.0, z=0.0),
        orientation=msgs.Quaternion(x=0.0, y=0.0, z=float(np.sin(yaw_rad / 2)), w=float(np.cos(yaw_rad / 2)))))


def test_pose_errors_compare_equal_stamps_only() -> None:
    true = {1: pose(0.0, 0.0), 2: pose(0.0, 0.0), 3: pose(0.0, 0.0)}
    estimated = {1: pose(0.010, np.radians(10)), 2: pose(0.002, np.radians(-30)), 4: pose(5.0, 3.0)}
    errors = pose_errors(estimated, true)
    assert errors["compared"] == 2
    assert errors["position_error_mm"]["median"] == pytest.approx(6.0)  # 10 mm and 2 mm
    assert errors["position_error_mm"]["p90"] == pytest.approx(9.2)
    assert errors["rotation_error_deg"]["median"] == pytest.approx(20.0)  # 10 and 30 degrees
    assert pose_errors({5: pose(0, 0)}, true) == {"compared": 0}
