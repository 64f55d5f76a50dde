"""goal_manager: successes, drops, timeouts and the trial count on scripted pose streams; its topics on inproc."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.goal_manager import GoalManager, GoalManagerConfig, TrialLogic, task_of, trial_task
from ros_nodes.hand_driver import quaternion_message
from ros_nodes.transport import create_node
from sim import rotations
from sim.config import TaskConfig

ON_PALM = np.array([1.0, 0.87, 0.16])
DROPPED = np.array([1.0, 0.87, 0.05])
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def near(goal: np.ndarray, angle: float) -> np.ndarray:
    """An orientation `angle` rad from goal (about x)."""
    return rotations.multiply(goal, rotations.from_axis_angle(np.array([1.0, 0.0, 0.0]), angle))


def test_a_cube_that_falls_during_a_reset_gets_another_reset() -> None:
    logic = TrialLogic(GoalManagerConfig(reset_wait_s=1.0), TaskConfig())
    assert logic.on_pose(1.9, DROPPED, IDENTITY) == [] and logic.state == "waiting"
    # still off the palm 2 x reset_wait_s after the last (here: the initial) reset: ask again, wait reset_wait_s
    assert logic.on_pose(2.0, DROPPED, IDENTITY) == ["reset"] and logic.state == "resetting"
    assert logic.on_pose(2.9, ON_PALM, IDENTITY) == [] and logic.state == "resetting"
    assert logic.on_pose(3.0, ON_PALM, IDENTITY) == ["started"] and logic.trial == 1


def test_successes_drop_timeout_and_trial_limit() -> None:
    config = GoalManagerConfig(reset_wait_s=1.0, trials=3)
    logic = TrialLogic(config, TaskConfig(max_consecutive_successes=3, timeout_s=5.0))
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
    logic = TrialLogic(GoalManagerConfig(seed=3), TaskConfig(goal_mode="z"))
    logic.on_pose(0.0, ON_PALM, IDENTITY)
    assert logic.goal[1] == pytest.approx(0.0) and logic.goal[2] == pytest.approx(0.0)


def test_node_publishes_goal_status_and_reset() -> None:
    domain = 4100
    node = create_node("goal_manager", backend="inproc", domain_id=domain)
    manager = GoalManager(node, GoalManagerConfig(max_consecutive_successes=2, reset_wait_s=0.0, trials=2,
                                                  goal_mode="xyz"))
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
        last = statuses[-1]
        assert {key: last[key] for key in ("trial", "state", "successes", "ended_by", "results")} == \
            {"trial": 2, "state": "done", "successes": 0, "ended_by": "drop", "results": [2, 0]}
        assert last["last_trial"]["ended_by"] == "drop" and last["last_trial"]["ended_s"] == last["time_s"]
        manager.on_timer()
        assert node.is_shutdown  # done: the node stops, so `inhand launch` sees it finish
    finally:
        node.shutdown()
        peer.shutdown()


def test_task_settings_come_from_the_policys_training_unless_given() -> None:
    trained = task_of(GoalManagerConfig())  # the shipped policy_z: z goals, the env's 8 s, 0.4 rad, 50, 0.10 m
    assert (trained.goal_mode, trained.timeout_s, trained.success_threshold_rad, trained.max_consecutive_successes,
            trained.drop_height_m) == ("z", 8.0, 0.4, 50, 0.10)
    settings, warnings = trial_task(GoalManagerConfig(), trained)
    assert settings == trained and warnings == []
    # Dactyl's physical trials: 80 s without a success, asked for explicitly; the same goal mode is no difference
    settings, warnings = trial_task(GoalManagerConfig(timeout_s=80.0, goal_mode="z"), trained)
    assert settings.timeout_s == 80.0 and settings.goal_mode == "z"
    assert warnings == ["timeout_s = 80.0 differs from the policy's training (8.0): trials are judged otherwise "
                        "than the policy learned"]


def test_a_drop_detector_ends_the_trial_after_its_readings_agree() -> None:
    logic = TrialLogic(GoalManagerConfig(off_palm_frames=3, reset_wait_s=1.0), TaskConfig())
    logic.on_palm(0.9)
    assert logic.on_pose(0.0, ON_PALM, IDENTITY) == ["started"]
    for reading in (0.2, 0.1):  # two readings off the palm: not yet (a flicker of the detector ends nothing)
        logic.on_palm(reading)
        assert logic.on_pose(0.08, ON_PALM, IDENTITY) == []
    logic.on_palm(0.7)  # back on the palm: the count starts again
    logic.on_palm(0.3)
    logic.on_palm(float("nan"))
    assert logic.on_pose(0.16, ON_PALM, IDENTITY) == []
    logic.on_palm(0.4)  # third in a row below 0.5: a drop, though the estimated pose still lies on the palm
    assert logic.on_pose(0.24, ON_PALM, IDENTITY) == ["ended"] and logic.results[-1].ended_by == "drop"
    # the next trial waits until the detector sees the cube on the palm again
    assert logic.on_pose(1.3, ON_PALM, IDENTITY) == []
    logic.on_palm(0.8)
    assert logic.on_pose(1.4, ON_PALM, IDENTITY) == ["started"]


@pytest.mark.parametrize("ending", ["timeout", "drop"])
def test_the_goal_manager_judges_an_episode_as_the_env_does(ending: str) -> None:
    """One episode of the env, its true poses fed to TrialLogic with the env's goals: the same successes, at the
    same steps, and the same end, both through sim.task.episode_outcome."""
    from sim.batch import ReorientBatch
    from sim.config import load_env_config

    # a hand holding still lets the cube roll off after about 30 steps: a 1.2 s (15 step) timeout comes first
    batch = ReorientBatch(load_env_config().with_options(goal_mode="z", timeout_s=1.2, randomize=False), 1, seed=0,
                          autoreset=False)
    batch.reset(0)
    index = batch.index
    logic = TrialLogic(GoalManagerConfig(reset_wait_s=0.0), batch.config.task)

    def pose() -> tuple[np.ndarray, np.ndarray]:
        cube = batch.qpos[0, index.cube_qpos : index.cube_qpos + 7]
        return cube[:3], cube[3:]

    assert logic.on_pose(0.0, *pose()) == ["started"]
    hold = np.full((1, 20), 5)  # the middle bin: targets stay where the hand is
    for step in range(1, 200):
        if step in (3, 10):  # a goal the cube already meets: this step is a success
            batch.goal[0] = pose()[1]
        if ending == "drop" and step == 20:
            batch.datas[0].qpos[index.cube_qpos + 2] = 0.05  # the cube falls through to below the palm
        logic.goal = batch.goal[0].copy()
        result = batch.step(hold)
        events = logic.on_pose(step * 0.08, *pose())
        assert ("success" in events) == bool(result.info["is_success"][0]), step
        if result.info["episode_done"][0]:
            break
    assert "ended" in events and logic.results[-1].ended_by == ending
    assert result.info["dropped" if ending == "drop" else "timed_out"][0]
    assert logic.results[-1].successes == result.info["consecutive_successes"][0] == 2
    assert step == (20 if ending == "drop" else 25)  # 15 steps (1.2 s) after the second success
