"""The demo's summary of a run: estimate vs truth errors (its trials: test_ros_trial_report)."""
from __future__ import annotations

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.demo import pose_errors


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
