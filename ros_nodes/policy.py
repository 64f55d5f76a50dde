"""policy node: hand joint states + cube pose + goal -> the trained LSTM policy -> joint targets, at 12.5 Hz.

Every control period (the env's physics_timestep x substeps, 80 ms; the node clock, so sim time under use_sim_time)
the node builds the policy observation exactly as sim.batch.ReorientBatch does (sim.task.policy_observation):
fingertip positions from forward kinematics of the MuJoCo scene at the reported joint angles, the cube position and
the rotation from the cube to the goal. The InferencePolicy keeps its LSTM state between ticks; a new trial on
trial/status, a trial that ends, or a hand/reset request zero it. Its action becomes targets as in the sim: bins ->
[-1, 1] -> relative targets around the current actuated joint positions -> the EMA with action_ema, sent on
hand/command as Shadow command names (rh_<F>J0 = J1 + J2 for coupled fingers), stamped with the joint states' stamp
they were computed from. The task settings (action_bins, relative_action_scale, action_ema, goal mode) come from the
checkpoint's own config, so the node acts exactly as the policy was trained.

Under use_sim_time with sync_inputs, a tick waits for the joint states and pose stamped with its own time (the sim
driver publishes them right after /clock), so the command answers the newest state; if they have not come by the next
tick it runs with what it has (a pose source that lags by more than a period wants sync_inputs false). No joint states, no pose, no goal, inputs older than stale_periods periods, or a trial
that is not running: nothing is published and /diagnostics says why.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from sim.errors import CheckpointError
from policies.inference import InferencePolicy
from ros_nodes import msgs
from ros_nodes.hand_driver import quaternion_array
from ros_nodes.joint_map import JointMap
from ros_nodes.node_main import config_from_parameters, run_node
from ros_nodes.transport import DEFAULT_QOS, Node
from sim import task
from sim.batch import OBSERVATION_SIZES
from sim.config import DEFAULT_CONFIG_PATH, TaskConfig, load_env_config
from sim.config_loading import bound, choice
from sim.paths import data_path
from sim.scene import FINGERTIP_NAMES, index_scene, load_model

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "config/ros_policy.yaml"


@dataclass(frozen=True)
class PolicyNodeConfig:
    """config/ros_policy.yaml; every key is also a node parameter of the same name."""

    checkpoint: str = "assets/checkpoints/policy_z.pt"  # inference or training checkpoint (`inhand export`)
    env_config: str = ""  # "" = the env YAML the checkpoint was trained on (its env.config; config/env.yaml if null)
    deterministic: bool = True  # the most likely bin (true) or a sample of the policy's distribution
    # where the target EMA starts in a trial: "reset_pose" as in the sim (the pose an episode's reset commands:
    # joints at 0 within their ranges), or "measured" (the hand's position at the first tick: no jump on a real
    # hand that starts elsewhere)
    ema_start: str = field(default="reset_pose", metadata=choice("reset_pose", "measured"))
    # the fingertip positions of the observation: "kinematics" (forward kinematics of the joint states: the real
    # hand's encoders) or "sensed" (hand/fingertips/<ff|mf|rf|lf|th>: the sim's fingertip markers with the env's noise
    # and freezes, as the policy trained on them; Dactyl's PhaseSpace markers on a real hand)
    fingertips: str = field(default="kinematics", metadata=choice("kinematics", "sensed"))
    stale_periods: int = field(default=3, metadata=bound(1, 1000))  # inputs older than this many periods are stale
    sync_inputs: bool = True  # under use_sim_time, wait for the joint states and pose of the tick's own time
    diagnostics_period_s: float = field(default=1.0, metadata=bound(0.05, 60.0))


def resolve_checkpoint(path: str) -> Path:
    """A checkpoint path as given, else under the package's share folder; CheckpointError naming both if absent."""
    candidate = Path(path)
    if candidate.is_file() or candidate.is_absolute():
        return candidate
    try:
        return data_path(path)
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: checkpoint file not found (relative to {Path.cwd()} or the inhand package); pass "
            "-p checkpoint:=FILE (launch files: checkpoint:=FILE); `inhand export` writes one from a training run"
        ) from None


def trained_task_config(policy: InferencePolicy, env_config: str = "") -> TaskConfig:
    """The task section the policy was trained with: its env YAML (or `env_config`), its goal mode override."""
    source = env_config or policy.config.env.config
    if not source:
        path = data_path(DEFAULT_CONFIG_PATH)
    else:
        candidate = Path(source)
        path = candidate if candidate.is_absolute() or candidate.exists() else data_path(source)
    config = load_env_config(path)
    if policy.config.env.goal_mode is not None:
        config = config.with_options(goal_mode=policy.config.env.goal_mode)
    return config.task


def checkpoint_task_config(checkpoint: str, env_config: str = "") -> TaskConfig:
    """The task section a policy checkpoint file was trained with (trained_task_config of the loaded policy)."""
    return trained_task_config(InferencePolicy.load(resolve_checkpoint(checkpoint)), env_config)


def checkpoint_goal_mode(checkpoint: str) -> str | None:
    """The goal mode a policy checkpoint file was trained with, where its config overrides its env YAML's."""
    return InferencePolicy.load(resolve_checkpoint(checkpoint)).config.env.goal_mode


class PolicyCore:
    """The node's computation without transport: joint angles, cube pose, goal -> observation -> action -> targets."""

    def __init__(self, policy: InferencePolicy, task_config: TaskConfig, deterministic: bool = True,
                 ema_start: str = "reset_pose", source: str = "<policy>") -> None:
        model = load_model(task_config.physics_timestep)
        self.model, self.data = model, mujoco.MjData(model)
        self.index = index_scene(model)
        self.joint_map = JointMap.from_model(model, self.index.hand_joint_names)
        self.ctrl_range = model.actuator_ctrlrange.copy()
        actuated_joints = model.actuator_trnid[:, 0]
        # ReorientBatch's reset: hand joints at 0 clipped into their ranges, held by targets clipped to ctrl ranges
        self.reset_targets = np.clip(np.clip(0.0, model.jnt_range[actuated_joints, 0], model.jnt_range[actuated_joints, 1]),
                                     self.ctrl_range[:, 0], self.ctrl_range[:, 1])
        self.ema_start = ema_start
        self.task = task_config
        self.policy = policy
        self.deterministic = deterministic
        spec = policy.spec
        expected = {"policy_size": OBSERVATION_SIZES["policy"], "num_actions": model.nu,
                    "action_type": task_config.action_type}
        if task_config.action_type == "discrete":
            expected["num_bins"] = task_config.action_bins
        wrong = {key: getattr(spec, key) for key, value in expected.items() if getattr(spec, key) != value}
        if wrong:
            raise CheckpointError(
                f"{source}: the policy does not fit this hand and task: it has {wrong}, the node needs "
                f"{ {key: expected[key] for key in wrong} }"
            )
        self.targets: np.ndarray | None = None  # the EMA of targets (A,), sim actuator units; None right after reset
        policy.reset(1)

    @classmethod
    def load(cls, checkpoint: str, env_config: str = "", deterministic: bool = True,
             ema_start: str = "reset_pose") -> PolicyCore:
        """From a checkpoint file; a missing, corrupt or mismatched checkpoint is a CheckpointError."""
        path = resolve_checkpoint(checkpoint)
        policy = InferencePolicy.load(path)
        return cls(policy, trained_task_config(policy, env_config), deterministic, ema_start, str(path))

    @property
    def period_s(self) -> float:
        """The control period the policy was trained at."""
        return self.task.physics_timestep * self.task.substeps

    def reset(self) -> None:
        """A new trial: zero the LSTM state and restart the target EMA (from ema_start)."""
        self.policy.reset(1)
        self.targets = None

    def fingertip_positions(self, sim_joint_positions: np.ndarray) -> np.ndarray:
        """Fingertip sites (5, 3) in the world frame by forward kinematics at sim joint angles (24,)."""
        self.data.qpos[self.index.hand_qpos] = sim_joint_positions
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.index.fingertip_site_ids].copy()

    def observation(self, shadow_joint_positions: np.ndarray, cube_position: np.ndarray,
                    cube_quaternion: np.ndarray, goal: np.ndarray,
                    fingertips: np.ndarray | None = None) -> np.ndarray:
        """Policy observation (22,) float32 from Shadow joint angles (24,), cube position (3,), quaternions (4,);
        the fingertips (5, 3) as measured, else by forward kinematics of the joint angles."""
        if fingertips is None:
            fingertips = self.fingertip_positions(self.joint_map.joints_to_sim(shadow_joint_positions))
        return task.policy_observation(
            np.asarray(fingertips, dtype=np.float64)[None], np.asarray(cube_position, dtype=np.float64)[None],
            np.asarray(cube_quaternion, dtype=np.float64)[None], np.asarray(goal, dtype=np.float64)[None],
        )[0]

    def act(self, observation: np.ndarray) -> np.ndarray:
        """One policy step on the held LSTM state: observation (22,) -> action (20,) (bins, or floats in [-1, 1])."""
        return self.policy.act(observation[None], deterministic=self.deterministic)[0]

    def command_targets(self, action: np.ndarray, shadow_joint_positions: np.ndarray) -> np.ndarray:
        """Action (20,) -> targets (20,) in Shadow command units, updating the EMA as ReorientBatch.step does."""
        if self.task.action_type == "discrete":
            normalized = task.bins_to_actions(np.asarray(action)[None], self.task.action_bins)
        else:
            normalized = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)[None]
        actuated = self.joint_map.joints_to_sim(shadow_joint_positions)[self.joint_map.actuated_joint][None]
        if self.targets is None:
            start = self.reset_targets if self.ema_start == "reset_pose" else actuated[0]
            self.targets = np.clip(start, self.ctrl_range[:, 0], self.ctrl_range[:, 1])
        self.targets = task.smoothed_targets(normalized, actuated, self.targets[None], self.ctrl_range, self.task)[0]
        return self.joint_map.ctrl_to_commands(self.targets)


@dataclass
class _Stamped:
    """A received value with its header stamp."""

    value: Any
    stamp_ns: int


class PolicyNode:
    """The node around PolicyCore: inputs in, hand/command and /diagnostics out, one tick per control period."""

    def __init__(self, node: Node, config: PolicyNodeConfig | None = None, core: PolicyCore | None = None) -> None:
        self.node = node
        self.config = config or config_from_parameters(node, PolicyNodeConfig, DEFAULT_CONFIG)
        config = self.config
        self.core = core or PolicyCore.load(config.checkpoint, config.env_config, config.deterministic,
                                            config.ema_start)
        self.period_ns = int(round(self.core.period_s * 1e9))
        self.sync = config.sync_inputs and bool(node.get_parameter("use_sim_time"))
        names = self.core.joint_map.shadow_joint_names
        self.joint_lookup = {name: i for i, name in enumerate(names)}
        self.joint_positions = np.full(len(names), np.nan)
        self.joint_stamps = np.full(len(names), -1, dtype=np.int64)
        self.pose: _Stamped | None = None
        self.sensed = config.fingertips == "sensed"
        self.fingertips = np.full((len(FINGERTIP_NAMES), 3), np.nan)
        self.fingertip_stamps = np.full(len(FINGERTIP_NAMES), -1 if self.sensed else np.iinfo(np.int64).max,
                                        dtype=np.int64)
        self.goal: _Stamped | None = None
        self.trial: int | None = None
        self.trial_state: str | None = None
        self.pending_tick_ns: int | None = None
        self.last_observation: np.ndarray | None = None
        self.last_action: np.ndarray | None = None
        self.last_command_stamp_ns = -1
        self.commands_published = 0
        self.ticks = 0
        self.late_ticks = 0
        self.lstm_resets = 0
        self.rejected_messages = 0
        self.skipped: dict[str, int] = {}
        self.skip_kind = ""
        self.last_skip = ""
        self._last_diagnostics_ns: int | None = None
        self._reported_kind = ""

        self.commands = node.create_publisher(msgs.JointState, "hand/command", DEFAULT_QOS)
        self.diagnostics = node.create_publisher(msgs.DiagnosticArray, "/diagnostics", DEFAULT_QOS)
        node.create_subscription(msgs.JointState, "hand/joint_states", self.on_joint_states, DEFAULT_QOS)
        node.create_subscription(msgs.PoseStamped, "object/pose", self.on_pose, DEFAULT_QOS)
        if self.sensed:
            for index, name in enumerate(FINGERTIP_NAMES):
                node.create_subscription(msgs.PoseStamped, f"hand/fingertips/{name}",
                                         lambda message, index=index: self.on_fingertip(index, message), DEFAULT_QOS)
        node.create_subscription(msgs.QuaternionStamped, "goal/orientation", self.on_goal, DEFAULT_QOS)
        node.create_subscription(msgs.String, "trial/status", self.on_trial_status, DEFAULT_QOS)
        node.create_subscription(msgs.Bool, "hand/reset", self.on_reset, DEFAULT_QOS)
        node.create_timer(self.core.period_s, self.on_timer)

    # ------------------------------------------------------------------ inputs

    def on_joint_states(self, message: msgs.JointState) -> None:
        """Remember each known joint's angle and stamp (other joints of a shared /joint_states are ignored)."""
        if len(message.position) != len(message.name):
            self._reject(f"hand/joint_states with {len(message.name)} names and {len(message.position)} positions")
            return
        lookup = self.joint_lookup
        known = [(lookup[name], i) for i, name in enumerate(message.name) if name in lookup]
        if not known:
            return
        rows, columns = (np.array(part) for part in zip(*known))
        self.joint_positions[rows] = np.asarray(message.position, dtype=np.float64)[columns]
        self.joint_stamps[rows] = message.header.stamp.to_ns()
        self._try_tick()

    def on_pose(self, message: msgs.PoseStamped) -> None:
        """The cube's pose (world frame)."""
        position = message.pose.position
        self.pose = _Stamped(
            (np.array([position.x, position.y, position.z]), quaternion_array(message.pose.orientation)),
            message.header.stamp.to_ns(),
        )
        self._try_tick()

    def on_fingertip(self, index: int, message: msgs.PoseStamped) -> None:
        """One fingertip's measured position (world frame)."""
        position = message.pose.position
        self.fingertips[index] = (position.x, position.y, position.z)
        self.fingertip_stamps[index] = message.header.stamp.to_ns()
        self._try_tick()

    def on_goal(self, message: msgs.QuaternionStamped) -> None:
        """The goal orientation (world frame)."""
        self.goal = _Stamped(quaternion_array(message.quaternion), message.header.stamp.to_ns())

    def on_trial_status(self, message: msgs.String) -> None:
        """A new trial, or the end of one, resets the LSTM state; only a running trial is acted on."""
        try:
            status = json.loads(message.data)
            trial, state = int(status["trial"]), str(status["state"])
        except (ValueError, KeyError, TypeError) as error:
            self._reject(f"trial/status is not JSON with 'trial' and 'state': {error}")
            return
        ended = self.trial_state == "running" and state != "running"
        if ended:
            self.goal = None  # the goal manager sends the next trial's goal only once it runs
        if ended or trial != self.trial:
            self._reset()
        self.trial, self.trial_state = trial, state

    def on_reset(self, message: msgs.Bool) -> None:
        """The goal manager asked the driver for a new episode: this trial's memory is over."""
        if message.data:
            self.goal = None
            self._reset()

    def _reset(self) -> None:
        self.core.reset()
        self.lstm_resets += 1

    def _reject(self, reason: str) -> None:
        self.rejected_messages += 1
        logger.warning("%s", reason)

    # ------------------------------------------------------------------- ticks

    def on_timer(self) -> None:
        """One control period: a tick still waiting for its inputs runs now with what it has, then the new one."""
        if self.pending_tick_ns is not None:
            self.late_ticks += 1
            self._run(self.pending_tick_ns)
        now = self.node.now_ns()
        # a late tick may have been answered by inputs of this one's time already: one command per state
        self.pending_tick_ns = now if now > self.last_command_stamp_ns else None
        self._try_tick()

    def _try_tick(self) -> None:
        tick = self.pending_tick_ns
        if tick is None:
            return
        if self.sync and not (self.joint_stamps.min() >= tick and self.pose is not None and self.pose.stamp_ns >= tick
                              and self.fingertip_stamps.min() >= tick):
            return
        self._run(tick)

    def missing_input(self, tick_ns: int) -> tuple[str, str]:
        """(kind, explanation) of why no command can be computed at tick_ns; ("", "") if it can."""
        if self.trial_state is not None and self.trial_state != "running":
            return "trial_not_running", f"trial {self.trial} is {self.trial_state}"
        stale_ns = self.config.stale_periods * self.period_ns
        oldest_joint_ns = int(self.joint_stamps.min())
        if oldest_joint_ns < 0:
            missing = [n for n, s in zip(self.core.joint_map.shadow_joint_names, self.joint_stamps) if s < 0]
            return "no_joint_states", f"no joint states yet for {len(missing)} joints ({', '.join(missing[:3])} ...)"
        if tick_ns - oldest_joint_ns > stale_ns:
            return "stale_joint_states", f"joint states stale: {(tick_ns - oldest_joint_ns) / 1e9:.3f} s old"
        if self.fingertip_stamps.min() < 0:
            return "no_fingertips", "no sensed fingertip positions yet (hand/fingertips/*)"
        if tick_ns - int(self.fingertip_stamps.min()) > stale_ns:
            age_s = (tick_ns - int(self.fingertip_stamps.min())) / 1e9
            return "stale_fingertips", f"fingertips stale: {age_s:.3f} s old"
        if self.pose is None:
            return "no_pose", "no object pose yet"
        if tick_ns - self.pose.stamp_ns > stale_ns:
            return "stale_pose", f"object pose stale: {(tick_ns - self.pose.stamp_ns) / 1e9:.3f} s old"
        if self.goal is None:
            return "no_goal", "no goal yet"
        if not np.all(np.isfinite(self.joint_positions)):
            return "nonfinite_joint_states", "joint states hold NaN or inf"
        return "", ""

    def _run(self, tick_ns: int) -> None:
        self.pending_tick_ns = None
        self.ticks += 1
        kind, reason = self.missing_input(tick_ns)
        if kind:
            self.skipped[kind] = self.skipped.get(kind, 0) + 1
            if kind != self.skip_kind:
                logger.warning("no command: %s", reason)
            self.skip_kind, self.last_skip = kind, reason
            self._maybe_publish_diagnostics()
            return
        self.skip_kind = self.last_skip = ""
        position, quaternion = self.pose.value  # type: ignore[union-attr]
        goal = self.goal.value  # type: ignore[union-attr]
        observation = self.core.observation(self.joint_positions, position, quaternion, goal,
                                            self.fingertips if self.sensed else None)
        action = self.core.act(observation)
        targets = self.core.command_targets(action, self.joint_positions)
        stamp_ns = int(self.joint_stamps.max())
        self.commands.publish(msgs.JointState(
            header=msgs.Header(stamp=msgs.Time.from_ns(stamp_ns), frame_id="hand"),
            name=list(self.core.joint_map.command_names), position=targets, velocity=np.zeros(0), effort=np.zeros(0),
        ))
        self.last_observation, self.last_action = observation, action
        self.last_command_stamp_ns = stamp_ns
        self.commands_published += 1
        self._maybe_publish_diagnostics()

    # ------------------------------------------------------------- diagnostics

    def diagnostic_status(self) -> msgs.DiagnosticStatus:
        """OK while commands flow; WARN with the reason while inputs are missing or stale."""
        level = msgs.DiagnosticStatus.WARN if self.last_skip else msgs.DiagnosticStatus.OK
        values = {
            "checkpoint": self.config.checkpoint,
            "goal_mode": self.core.task.goal_mode,
            "ticks": self.ticks,
            "commands_published": self.commands_published,
            "last_command_stamp_ns": self.last_command_stamp_ns,
            "late_ticks": self.late_ticks,
            "lstm_resets": self.lstm_resets,
            "trial": self.trial,
            "trial_state": self.trial_state,
            "rejected_messages": self.rejected_messages,
            **{f"skipped_{kind}": count for kind, count in sorted(self.skipped.items())},
        }
        return msgs.DiagnosticStatus(
            level=level, name=f"{self.node.name}: policy", message=self.last_skip or "ok", hardware_id="policy",
            values=[msgs.KeyValue(key=key, value=str(value)) for key, value in values.items()],
        )

    def publish_diagnostics(self) -> None:
        """Publish the node's status on /diagnostics now."""
        self._last_diagnostics_ns = self.node.now_ns()
        self._reported_kind = self.skip_kind
        self.diagnostics.publish(msgs.DiagnosticArray(header=msgs.Header(stamp=self.node.now()),
                                                      status=[self.diagnostic_status()]))

    def _maybe_publish_diagnostics(self) -> None:
        now = self.node.now_ns()
        due = self._last_diagnostics_ns is None or now - self._last_diagnostics_ns >= self.config.diagnostics_period_s * 1e9
        if due or self.skip_kind != self._reported_kind:
            self.publish_diagnostics()


def main(argv: list[str] | None = None) -> int:
    """`python -m ros_nodes.policy --ros-args -p checkpoint:=policy.pt -p use_sim_time:=true ...`"""
    return run_node("policy", PolicyNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
