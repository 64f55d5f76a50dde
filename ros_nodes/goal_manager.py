"""goal_manager node: goals, success detection and trials of the reorientation task on the robot (or the sim driver).

A trial starts once the cube is seen on the palm: a goal is sampled (at least the success threshold away from the
cube), published on goal/orientation, and every pose on object/pose is checked; within success_threshold_rad of the
goal is a success and a new goal follows. A trial ends on a drop (cube below drop_height_m), after timeout_s without
a success, or at max_consecutive_successes; then hand/reset is asked for and, after reset_wait_s, the next trial
starts. trial/status carries JSON {trial, state, successes, ended_by, angle_to_goal_rad, results}.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ros_nodes import msgs
from ros_nodes.hand_driver import quaternion_array, quaternion_message
from ros_nodes.node_main import config_from_parameters, run_node
from ros_nodes.transport import DEFAULT_QOS, Node
from sim import rotations, task
from sim.config_loading import bound, choice

DEFAULT_CONFIG = "config/ros_goal_manager.yaml"


@dataclass(frozen=True)
class GoalManagerConfig:
    """config/ros_goal_manager.yaml; every key is also a node parameter of the same name."""

    goal_mode: str = field(default="xyz", metadata=choice("xyz", "z"))
    success_threshold_rad: float = field(default=0.4, metadata=bound(0.01, 3.14))
    max_consecutive_successes: int = field(default=50, metadata=bound(1, 10000))
    timeout_s: float = field(default=80.0, metadata=bound(0.1, 100000.0))
    drop_height_m: float = field(default=0.10, metadata=bound(-10.0, 10.0))
    reset_wait_s: float = field(default=1.0, metadata=bound(0.0, 600.0))
    trials: int = field(default=0, metadata=bound(0, 1000000))  # stop after this many trials; 0 = never stop
    seed: int = field(default=0, metadata=bound(0, 2**31 - 1))
    status_period_s: float = field(default=1.0, metadata=bound(0.05, 60.0))


@dataclass
class TrialResult:
    """How one trial went."""

    trial: int
    successes: int
    ended_by: str  # "drop", "timeout" or "max_successes"
    duration_s: float


class TrialLogic:
    """The task's bookkeeping, with no transport: feed it poses with their times, read its state and goal.

    States: waiting (for the cube on the palm) -> running -> resetting (reset_wait_s) -> waiting ...; after the
    configured number of trials, done."""

    def __init__(self, config: GoalManagerConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.state = "waiting"
        self.trial = 0
        self.successes = 0
        self.goal: np.ndarray | None = None
        self.angle_to_goal = float("nan")
        self.trial_start_s = 0.0
        self.last_success_s = 0.0
        self.reset_since_s = 0.0
        self.results: list[TrialResult] = []

    def on_pose(self, now_s: float, position: np.ndarray, quaternion: np.ndarray) -> list[str]:
        """Take one cube pose at time now_s; return what happened, in order: "started", "success", "ended", "done",
        or "reset" when the cube is still off the palm 2 x reset_wait_s after the last reset (it fell during it)."""
        events: list[str] = []
        config = self.config
        if self.state == "resetting" and now_s - self.reset_since_s >= config.reset_wait_s:
            self.state = "waiting"
        if (self.state == "waiting" and position[2] < config.drop_height_m
                and now_s - self.reset_since_s >= 2 * config.reset_wait_s):
            self.reset_since_s = now_s
            self.state = "resetting"
            return ["reset"]
        if self.state == "waiting" and position[2] >= config.drop_height_m:
            self.trial += 1
            self.successes = 0
            self.trial_start_s = self.last_success_s = now_s
            self.state = "running"
            self._new_goal(quaternion)
            events.append("started")
        if self.state != "running":
            return events
        self.angle_to_goal = float(rotations.angle_between(quaternion, self.goal))
        if position[2] < config.drop_height_m:
            return events + self._end(now_s, "drop")
        if self.angle_to_goal < config.success_threshold_rad:
            self.successes += 1
            self.last_success_s = now_s
            events.append("success")
            if self.successes >= config.max_consecutive_successes:
                return events + self._end(now_s, "max_successes")
            self._new_goal(quaternion)
            self.angle_to_goal = float(rotations.angle_between(quaternion, self.goal))
        return events + self.check_timeout(now_s)

    def check_timeout(self, now_s: float) -> list[str]:
        """End the running trial if timeout_s passed without a success (also called when no pose comes)."""
        if self.state == "running" and now_s - self.last_success_s >= self.config.timeout_s:
            return self._end(now_s, "timeout")
        return []

    def _new_goal(self, quaternion: np.ndarray) -> None:
        self.goal = task.sample_goals(
            self.rng, np.asarray(quaternion)[None], self.config.goal_mode, self.config.success_threshold_rad
        )[0]

    def _end(self, now_s: float, reason: str) -> list[str]:
        self.results.append(TrialResult(self.trial, self.successes, reason, now_s - self.trial_start_s))
        self.reset_since_s = now_s
        if self.config.trials > 0 and self.trial >= self.config.trials:
            self.state = "done"
            return ["ended", "done"]
        self.state = "resetting"
        return ["ended"]

    def status(self) -> dict[str, Any]:
        """The JSON-ready status published on trial/status."""
        last = self.results[-1] if self.results else None
        return {
            "trial": self.trial,
            "state": self.state,
            "successes": self.successes,
            "ended_by": last.ended_by if last is not None and self.state != "running" else None,
            "angle_to_goal_rad": None if not np.isfinite(self.angle_to_goal) else round(self.angle_to_goal, 4),
            "results": [result.successes for result in self.results],
        }


class GoalManager:
    """The node around TrialLogic: object/pose in; goal/orientation, trial/status and hand/reset out."""

    def __init__(self, node: Node, config: GoalManagerConfig | None = None) -> None:
        self.node = node
        self.config = config or config_from_parameters(node, GoalManagerConfig, DEFAULT_CONFIG)
        self.logic = TrialLogic(self.config)
        self.exit_code = 0
        self.goal_publisher = node.create_publisher(msgs.QuaternionStamped, "goal/orientation", DEFAULT_QOS)
        self.status_publisher = node.create_publisher(msgs.String, "trial/status", DEFAULT_QOS)
        self.reset_publisher = node.create_publisher(msgs.Bool, "hand/reset", DEFAULT_QOS)
        node.create_subscription(msgs.PoseStamped, "object/pose", self.on_pose, DEFAULT_QOS)
        node.create_timer(self.config.status_period_s, self.on_timer)

    def now_s(self) -> float:
        """The node's clock (sim time under use_sim_time)."""
        return self.node.now_ns() / 1e9

    def on_pose(self, message: msgs.PoseStamped) -> None:
        """Judge one pose."""
        position = message.pose.position
        events = self.logic.on_pose(
            self.now_s(), np.array([position.x, position.y, position.z]), quaternion_array(message.pose.orientation)
        )
        self._handle(events)
        if self.logic.state == "running":
            self.publish_goal()

    def on_timer(self) -> None:
        """Timeouts while no pose arrives, and the periodic status."""
        if self.logic.state == "done":
            self.node.shutdown()  # one status period after the last trial, so its status got out
            return
        self._handle(self.logic.check_timeout(self.now_s()))
        self.publish_status()

    def _handle(self, events: list[str]) -> None:
        if not events:
            return
        if "ended" in events or "reset" in events:
            self.reset_publisher.publish(msgs.Bool(data=True))
        self.publish_status()

    def publish_goal(self) -> None:
        """The current goal, stamped now, in the world frame."""
        assert self.logic.goal is not None
        self.goal_publisher.publish(
            msgs.QuaternionStamped(
                header=msgs.Header(stamp=self.node.now(), frame_id="world"), quaternion=quaternion_message(self.logic.goal)
            )
        )

    def publish_status(self) -> None:
        """trial/status as JSON."""
        self.status_publisher.publish(msgs.String(data=json.dumps(self.logic.status())))


def main(argv: list[str] | None = None) -> int:
    """`python -m ros_nodes.goal_manager --ros-args -p trials:=3 ...`"""
    return run_node("goal_manager", GoalManager, argv)


if __name__ == "__main__":
    raise SystemExit(main())
