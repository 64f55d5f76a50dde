"""goal_manager: successes, drops, timeouts and the trial count on scripted pose streams; its topics on inproc."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.goal_manager import GoalManager, GoalManagerConfig, TrialLogic
from ros_nodes.hand_driver import quaternion_message
from ros_nodes.transport import create_node
from sim import rotations

ON_PALM = np.array([1.0, 0.87, 0.16])
DROPPED = np.array([1.0, 0.87, 0.05])
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def near(goal: np.ndarray, angle: float) -> np.ndarray:
    """An orientation `angle` rad from goal (about x)."""
    return rotations.multiply(goal, rotations.from_axis_angle(np.array([1.0, 0.0, 0.0]), angle))


def test_a_cube_that_falls_during_a_reset_gets_another_reset() -> None:
    logic = TrialLogic(GoalManagerConfig(reset_wait_s=1.0))
    assert logic.on_pose(1.9, DROPPED, IDENTITY) == [] and logic.state == "waiting"
    # still off the palm 2 x reset_wait_s after the last (here: the initial) reset: ask again, wait reset_wait_s
    assert logic.on_pose(2.0, DROPPED, IDENTITY) == ["reset"] and logic.state == "resetting"
    assert logic.on_pose(2.9, ON_PALM, IDENTITY) == [] and logic.state == "resetting"
    assert logic.on_pose(3.0, ON_PALM, IDENTITY) == ["started"] and logic.trial == 1


def test_successes_drop_timeout_and_trial_limit() -> None:
    config = GoalManagerConfig(max_consecutive_successes=3, timeout_s=5.0, reset_wait_s=1.0, trials=3)
    logic = TrialLogic(config)
    assert logic.on_pose(0.0, DROPPED, IDENTITY) == [] and logic.state == "waiting"  # not on the palm yet
    assert logic.on_pose(0.1, ON_PALM, IDENTITY) == ["started"]
    assert logic.trial == 1 and rotations.angle_between(logic.goal, IDENTITY) >= 0.4
    assert logic.on_pose(0.2, ON_PALM, near(logic.goal, 0.41)) == []  # 0.41 rad: not yet
    assert logic.angle_to_goal == pytest.approx(0.41)
    assert logic.on_pose(0.3, ON_PALM, near(logic.goal, 0.39)) == ["success"]
    assert logic.on_pose(4.0, ON_PALM, near(logic.goal, 0.1)) == ["success"]
    assert logic.on_pose(4.1, ON_PALM, near(logic.goal, 0.0)) == ["success", "ended"]
    assert logic.results[-1].ended_by == "max_successes" and logic.results[-1].successes == 3
    assert logic.state == "resetting"
    assert logic.on_pose(4.5, ON_PALM, IDENTITY) == []  # reset_wait_s not over
    assert logic.on_pose(5.2, ON_PALM, IDENTITY) == ["started"] and logic.trial == 2
    assert logic.on_pose(6.0, ON_PALM, near(logic.goal, 0.2)) == ["success"]
    assert logic.on_pose(6.1, DROPPED, IDENTITY) == ["ended"]
    assert (logic.results[-1].ended_by, logic.results[-1].successes) == ("drop", 1)
    assert logic.on_pose(7.2, ON_PALM, IDENTITY) == ["started"] and logic.trial == 3
    assert logic.check_timeout(12.1) == []
    assert logic.check_timeout(12.25) == ["ended", "done"]
    assert (logic.results[-1].ended_by, logic.state) == ("timeout", "done")
    assert logic.status()["results"] == [3, 1, 0]
    assert logic.on_pose(20.0, ON_PALM, IDENTITY) == []  # done stays done


def test_z_mode_goals_rotate_about_the_vertical() -> None:
    logic = TrialLogic(GoalManagerConfig(goal_mode="z", seed=3))
    logic.on_pose(0.0, ON_PALM, IDENTITY)
    assert logic.goal[1] == pytest.approx(0.0) and logic.goal[2] == pytest.approx(0.0)


def test_node_publishes_goal_status_and_reset() -> None:
    domain = 4100
    node = create_node("goal_manager", backend="inproc", domain_id=domain)
    manager = GoalManager(node, GoalManagerConfig(max_consecutive_successes=2, reset_wait_s=0.0, trials=2))
    peer = create_node("peer", backend="inproc", domain_id=domain)
    goals, statuses, resets = [], [], []
    peer.create_subscription(msgs.QuaternionStamped, "goal/orientation", goals.append, 100)
    peer.create_subscription(msgs.String, "trial/status", lambda m: statuses.append(json.loads(m.data)), 100)
    peer.create_subscription(msgs.Bool, "hand/reset", resets.append, 100)
    pose = peer.create_publisher(msgs.PoseStamped, "object/pose")

    def send(position: np.ndarray, quaternion: np.ndarray) -> None:
        pose.publish(msgs.PoseStamped(pose=msgs.Pose(
            position=msgs.Point(x=position[0], y=position[1], z=position[2]),
            orientation=quaternion_message(quaternion))))
        node.spin_once(0.0)
        peer.spin_once(0.0)

    try:
        send(ON_PALM, IDENTITY)
        for _ in range(2):
            goal = goals[-1].quaternion
            send(ON_PALM, np.array([goal.w, goal.x, goal.y, goal.z]))
        assert [m.data for m in resets] == [True]
        assert statuses[-1]["state"] == "resetting" and statuses[-1]["ended_by"] == "max_successes"
        send(ON_PALM, IDENTITY)
        send(DROPPED, IDENTITY)
        assert statuses[-1] == {"trial": 2, "state": "done", "successes": 0, "ended_by": "drop",
                                "angle_to_goal_rad": statuses[-1]["angle_to_goal_rad"], "results": [2, 0]}
        manager.on_timer()
        assert node.is_shutdown  # done: the node stops, so `inhand launch` sees it finish
    finally:
        node.shutdown()
        peer.shutdown()
