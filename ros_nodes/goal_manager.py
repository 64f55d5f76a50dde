"""goal_manager node: goals, success detection and trials of the reorientation task on the robot (or the sim driver).

The task settings (goal mode, success threshold, drop height, timeout, success limit) are by default the ones the
policy checkpoint trained with, and every judgement is sim.task.episode_outcome, the env's own rule; a setting given
explicitly (Dactyl's physical trials allowed 80 s without a success: timeout_s 80) wins, with a warning at start for
each difference from the policy's training.

A trial starts once the cube is seen on the palm: a goal is sampled (at least the success threshold away from the
cube), published on goal/orientation, and every pose on object/pose is judged; within the threshold of the goal is a
success and a new goal follows. A trial ends on a drop (cube below the drop height, or a drop detector on
object/on_palm, std_msgs/Float64, the probability that the cube is on the palm, below on_palm_threshold for
off_palm_frames readings in a row), after the timeout without a success, or at the success limit; then hand/reset is
asked for and, after reset_wait_s, the next trial starts. trial/status carries JSON {trial, state, successes,
ended_by, angle_to_goal_rad, results, time_s, last_trial}; last_trial holds {trial, successes, ended_by, started_s,
ended_s} of the newest finished trial.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ros_nodes import msgs
from ros_nodes.hand_driver import quaternion_array, quaternion_message
from ros_nodes.node_main import config_from_parameters, run_node
from ros_nodes.transport import DEFAULT_QOS, Node
from sim import rotations, task
from sim.config import TaskConfig, load_env_config
from sim.config_loading import bound, choice

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "config/ros_goal_manager.yaml"
# settings taken from the policy's training unless given; 0 (or "") in the config means "the policy's"
TASK_SETTINGS = ("goal_mode", "success_threshold_rad", "drop_height_m", "timeout_s", "max_consecutive_successes")


@dataclass(frozen=True)
class GoalManagerConfig:
    """config/ros_goal_manager.yaml; every key is also a node parameter of the same name."""

    # the policy whose training task settings are the defaults; "" = config/env.yaml's task (or env_config's)
    checkpoint: str = "assets/checkpoints/policy_z.pt"
    env_config: str = ""  # "" = the env YAML the checkpoint trained on
    goal_mode: str = field(default="", metadata=choice("", "xyz", "z"))
    success_threshold_rad: float = field(default=0.0, metadata=bound(0.0, 3.14))
    max_consecutive_successes: int = field(default=0, metadata=bound(0, 10000))
    timeout_s: float = field(default=0.0, metadata=bound(0.0, 100000.0))
    drop_height_m: float = field(default=0.0, metadata=bound(0.0, 10.0))
    on_palm_threshold: float = field(default=0.5, metadata=bound(0.0, 1.0))
    off_palm_frames: int = field(default=3, metadata=bound(1, 1000))
    reset_wait_s: float = field(default=1.0, metadata=bound(0.0, 600.0))
    trials: int = field(default=0, metadata=bound(0, 1000000))  # stop after this many trials; 0 = never stop
    seed: int = field(default=0, metadata=bound(0, 2**31 - 1))
    status_period_s: float = field(default=1.0, metadata=bound(0.05, 60.0))


def trial_task(config: GoalManagerConfig, trained: TaskConfig) -> tuple[TaskConfig, list[str]]:
    """The task settings trials run with: the policy's training (`trained`), each one given in `config` instead;
    and one warning per setting that differs from the training."""
    given = {name: getattr(config, name) for name in TASK_SETTINGS if getattr(config, name)}
    settings = replace(trained, **given)
    warnings = [f"{name} = {value} differs from the policy's training ({getattr(trained, name)}): trials are "
                f"judged otherwise than the policy learned"
                for name, value in given.items() if value != getattr(trained, name)]
    return settings, warnings


def task_of(config: GoalManagerConfig) -> TaskConfig:
    """The task section of the policy checkpoint's training (or of the env YAML when there is no checkpoint)."""
    if not config.checkpoint:
        return load_env_config(config.env_config or None).task
    from ros_nodes.policy import checkpoint_task_config

    return checkpoint_task_config(config.checkpoint, config.env_config)


@dataclass
class TrialResult:
    """How one trial went."""

    trial: int
    successes: int
    ended_by: str  # "drop", "timeout" or "max_successes"
    started_s: float
    ended_s: float

    @property
    def duration_s(self) -> float:
        """Seconds from start to end."""
        return self.ended_s - self.started_s


class TrialLogic:
    """The task's bookkeeping, with no transport: feed it poses with their times, read its state and goal.

    States: waiting (for the cube on the palm) -> running -> resetting (reset_wait_s) -> waiting ...; after the
    configured number of trials, done. Success, drop, timeout and the success limit are episode_outcome's."""

    def __init__(self, config: GoalManagerConfig, settings: TaskConfig) -> None:
        self.config = config
        self.task = settings
        self.rng = np.random.default_rng(config.seed)
        self.state = "waiting"
        self.trial = 0
        self.successes = 0
        self.goal: np.ndarray | None = None
        self.angle_to_goal = float("nan")
        self.trial_start_s = 0.0
        self.last_success_s = 0.0
        self.reset_since_s = 0.0
        self.time_s = 0.0
        self.off_palm_readings = 0  # on_palm readings below the threshold in a row
        self.results: list[TrialResult] = []

    @property
    def seen_off_palm(self) -> bool:
        """A drop detector has seen the cube off the palm for off_palm_frames readings in a row."""
        return self.off_palm_readings >= self.config.off_palm_frames

    def on_palm(self, probability: float) -> None:
        """One reading of the drop detector: the probability that the cube is on the palm."""
        below = probability < self.config.on_palm_threshold  # NaN counts as not seen on the palm
        self.off_palm_readings = self.off_palm_readings + 1 if below or not np.isfinite(probability) else 0

    def on_pose(self, now_s: float, position: np.ndarray, quaternion: np.ndarray) -> list[str]:
        """Take one cube pose at time now_s; return what happened, in order: "started", "success", "ended", "done",
        or "reset" when the cube is still off the palm 2 x reset_wait_s after the last reset (it fell during it)."""
        events: list[str] = []
        config = self.config
        self.time_s = now_s
        on_palm = position[2] >= self.task.drop_height_m and not self.seen_off_palm
        if self.state == "resetting" and now_s - self.reset_since_s >= config.reset_wait_s:
            self.state = "waiting"
        if self.state == "waiting" and not on_palm and now_s - self.reset_since_s >= 2 * config.reset_wait_s:
            self.reset_since_s = now_s
            self.state = "resetting"
            return ["reset"]
        if self.state == "waiting" and on_palm:
            self.trial += 1
            self.successes = 0
            self.trial_start_s = self.last_success_s = now_s
            self.state = "running"
            self._new_goal(quaternion)
            events.append("started")
        if self.state != "running":
            return events
        self.angle_to_goal = float(rotations.angle_between(quaternion, self.goal))
        outcome = task.episode_outcome(self.angle_to_goal, position[2], self.successes, self._since_success(now_s),
                                       self.task.timeout_s, self.task, off_palm=self.seen_off_palm)
        return events + self._judge(outcome, now_s, quaternion)

    def check_timeout(self, now_s: float) -> list[str]:
        """End the running trial if the timeout passed without a success (also called when no pose comes: with no
        pose, no success and no drop can be seen, only the time)."""
        self.time_s = now_s
        if self.state != "running":
            return []
        outcome = task.episode_outcome(np.inf, np.inf, self.successes, self._since_success(now_s),
                                       self.task.timeout_s, self.task)
        return self._judge(outcome, now_s, None)

    def _since_success(self, now_s: float) -> float:
        # times are nanosecond clocks read as seconds: 8.24 - 0.24 may come out a hair under 8, which is 8 s
        return now_s - self.last_success_s + 1e-9

    def _judge(self, outcome: task.Outcome, now_s: float, quaternion: np.ndarray | None) -> list[str]:
        events = []
        if outcome.success:
            self.successes = int(outcome.successes)
            self.last_success_s = now_s
            events.append("success")
        ended_by = task.ENDED_BY[int(outcome.ended_by)]
        if ended_by:
            return events + self._end(now_s, ended_by)
        if outcome.success and quaternion is not None:
            self._new_goal(quaternion)
            self.angle_to_goal = float(rotations.angle_between(quaternion, self.goal))
        return events

    def _new_goal(self, quaternion: np.ndarray) -> None:
        self.goal = task.sample_goals(
            self.rng, np.asarray(quaternion)[None], self.task.goal_mode, self.task.success_threshold_rad
        )[0]

    def _end(self, now_s: float, reason: str) -> list[str]:
        self.results.append(TrialResult(self.trial, self.successes, reason, self.trial_start_s, now_s))
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
            "time_s": round(self.time_s, 4),
            "last_trial": None if last is None else {
                "trial": last.trial, "successes": last.successes, "ended_by": last.ended_by,
                "started_s": round(last.started_s, 4), "ended_s": round(last.ended_s, 4)},
        }


class GoalManager:
    """The node around TrialLogic: object/pose in; goal/orientation, trial/status and hand/reset out."""

    def __init__(self, node: Node, config: GoalManagerConfig | None = None) -> None:
        self.node = node
        self.config = config or config_from_parameters(node, GoalManagerConfig, DEFAULT_CONFIG)
        settings, warnings = trial_task(self.config, task_of(self.config))
        for warning in warnings:
            logger.warning("%s", warning)
        self.logic = TrialLogic(self.config, settings)
        self.exit_code = 0
        self.goal_publisher = node.create_publisher(msgs.QuaternionStamped, "goal/orientation", DEFAULT_QOS)
        self.status_publisher = node.create_publisher(msgs.String, "trial/status", DEFAULT_QOS)
        self.reset_publisher = node.create_publisher(msgs.Bool, "hand/reset", DEFAULT_QOS)
        node.create_subscription(msgs.PoseStamped, "object/pose", self.on_pose, DEFAULT_QOS)
        node.create_subscription(msgs.Float64, "object/on_palm", lambda m: self.logic.on_palm(m.data), DEFAULT_QOS)
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
