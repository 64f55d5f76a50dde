"""hand_driver node: the Shadow Hand behind one set of topics, simulated in MuJoCo ("sim") or real ("shadow").

Both backends take hand/command (sensor_msgs/JointState: position targets by Shadow command name, rh_<F>J0 = J1 + J2
for coupled fingers), hand/enable (std_msgs/Bool) and hand/reset (std_msgs/Bool, true = start a new episode; the
real hand holds where it is) through one CommandIntake and its SafetyFilter every control period, publish
hand/joint_states (Shadow names) and /diagnostics. "sim" also publishes /clock (sim time), the three cameras
(image_raw rgb8 + camera_info), the cube's true pose on object/pose_true and on object/pose_sensed the pose the env's
observation model reports to the policy (env_config's observation_noise: a per-episode bias and per-step noise, as a
motion-capture system would measure it), and likewise each fingertip's position as the env's fingertip markers
report it (noise, markers that freeze) on hand/fingertips/<ff|mf|rf|lf|th>; "shadow" drives Shadow's per-joint
position controllers (/sh_rh_<joint>_position_controller/command, std_msgs/Float64) and republishes the hand's
/joint_states.

The simulated hand is the env's: a ReorientBatch of one whose step_commands puts the safe targets through the env's
command path (sim.actuation: action noise, delay, backlash, pushes, timing jitter, physics, as env_config says;
unmodeled_effects false switches those off, randomize false everything). The safety limits are the env's command
ranges and the fastest its EMA moves a target (safety.trained_rate_limits), so a policy trained there is not
reshaped; the shadow backend also keeps the real hand's joint ranges (JointMap.hand_limits).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import mujoco
import numpy as np

from ros_nodes import msgs
from ros_nodes.command_intake import CommandIntake
from ros_nodes.joint_map import JointMap, controller_topic
from ros_nodes.node_main import config_from_parameters, run_node
from ros_nodes.safety import SafetyFilter, trained_rate_limits
from ros_nodes.transport import DEFAULT_QOS, SENSOR_QOS, Node, QosProfile
from sim.batch import episode_seed
from sim.config import UNMODELED_EFFECTS, EnvConfig, load_env_config
from sim.config_loading import ConfigError, bound, choice
from sim.scene import FINGERTIP_NAMES

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "config/ros_driver.yaml"
FINGERTIP_TOPICS = tuple(f"hand/fingertips/{name}" for name in FINGERTIP_NAMES)
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
CLOCK_PUBLISH_QOS = QosProfile(depth=1, reliable=True)


@dataclass(frozen=True)
class DriverConfig:
    """config/ros_driver.yaml; every key is also a node parameter of the same name."""

    backend: str = field(default="sim", metadata=choice("sim", "shadow"))
    control_period_s: float = field(default=0.08, metadata=bound(0.001, 1.0))
    # 0 = each joint as fast as the env's EMA moves its target (trained_rate_limits); else a cap on that
    max_rate_rad_s: float = field(default=0.0, metadata=bound(0.0, 50.0))
    watchdog_periods: int = field(default=3, metadata=bound(1, 1000))
    start_enabled: bool = True
    diagnostics_period_s: float = field(default=1.0, metadata=bound(0.05, 60.0))
    env_config: str = "config/env.yaml"
    # the cube starts each episode as in this goal mode ("" = the checkpoint's training, else env_config's)
    goal_mode: str = field(default="", metadata=choice("", "xyz", "z"))
    checkpoint: str = ""  # the policy whose training goal mode the sim follows when goal_mode is ""
    randomize: bool = True
    unmodeled_effects: bool = True
    seed: int = field(default=0, metadata=bound(0, 2**31 - 1))
    real_time_factor: float = field(default=1.0, metadata=bound(0.01, 100.0))
    publish_images: bool = True
    camera_height: int = field(default=200, metadata=bound(16, 2048))
    camera_width: int = field(default=200, metadata=bound(16, 2048))
    # images every this many control periods: rendering three cameras costs CPU a small machine may need
    image_period_steps: int = field(default=1, metadata=bound(1, 1000))
    shadow_joint_states_topic: str = "/joint_states"


def driver_env_config(config: DriverConfig) -> EnvConfig:
    """The env config of the simulated hand: env_config in the goal mode asked for (or the checkpoint's), as
    `inhand eval` tests a policy; all randomization off (randomize false) or its unmodeled effects off
    (unmodeled_effects false)."""
    env_config = load_env_config(config.env_config)
    goal_mode = config.goal_mode
    if not goal_mode and config.checkpoint:
        from ros_nodes.policy import checkpoint_goal_mode

        goal_mode = checkpoint_goal_mode(config.checkpoint) or ""
    if goal_mode:
        env_config = env_config.with_options(goal_mode=goal_mode)
    if not config.randomize:
        return env_config.with_options(randomize=False)
    if not config.unmodeled_effects:
        return replace(env_config, randomization=env_config.randomization.disabled(*UNMODELED_EFFECTS))
    return env_config


def safety_filter(joint_map: JointMap, config: DriverConfig, env_config: EnvConfig) -> SafetyFilter:
    """The driver's SafetyFilter: the env's command ranges (and on the real hand its joint ranges too), each joint
    as fast as the env's EMA moves it, capped at max_rate_rad_s when that is set."""
    limits = joint_map.command_limits
    if config.backend == "shadow":
        limits = np.stack((np.maximum(limits[:, 0], joint_map.hand_limits[:, 0]),
                           np.minimum(limits[:, 1], joint_map.hand_limits[:, 1])), axis=1)
    rates = trained_rate_limits(joint_map.command_limits, env_config.task)
    if config.max_rate_rad_s > 0:
        rates = np.minimum(rates, config.max_rate_rad_s)
    return SafetyFilter(joint_map.command_names, limits[:, 0], limits[:, 1], rates, config.control_period_s,
                        config.watchdog_periods, enabled=config.start_enabled)


def quaternion_message(wxyz: np.ndarray) -> msgs.Quaternion:
    """MuJoCo's (w, x, y, z) -> geometry_msgs/Quaternion (x, y, z, w)."""
    w, x, y, z = (float(v) for v in wxyz)
    return msgs.Quaternion(x=x, y=y, z=z, w=w)


def quaternion_array(message: msgs.Quaternion) -> np.ndarray:
    """geometry_msgs/Quaternion -> (w, x, y, z) (4,)."""
    return np.array([message.w, message.x, message.y, message.z], dtype=np.float64)


def pose_message(position: np.ndarray, wxyz: np.ndarray, stamp: msgs.Time,
                 frame_id: str = "world") -> msgs.PoseStamped:
    """A cube pose (position (3,) m, quaternion (4,) w, x, y, z) as geometry_msgs/PoseStamped."""
    return msgs.PoseStamped(
        header=msgs.Header(stamp=stamp, frame_id=frame_id),
        pose=msgs.Pose(position=msgs.Point(x=float(position[0]), y=float(position[1]), z=float(position[2])),
                       orientation=quaternion_message(wxyz)),
    )


def camera_info(name: str, height: int, width: int, focal_px: float, stamp: msgs.Time) -> msgs.CameraInfo:
    """Pinhole CameraInfo of a MuJoCo camera (square pixels, principal point at the centre, no distortion)."""
    cx, cy = width / 2.0, height / 2.0
    return msgs.CameraInfo(
        header=msgs.Header(stamp=stamp, frame_id=f"{name}_camera"),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([focal_px, 0.0, cx, 0.0, focal_px, cy, 0.0, 0.0, 1.0]),
        r=np.eye(3).ravel(),
        p=np.array([focal_px, 0.0, cx, 0.0, 0.0, focal_px, cy, 0.0, 0.0, 0.0, 1.0, 0.0]),
    )


class SimHand:
    """The simulated hand and cube: a ReorientBatch of one (randomized physics and cube placement on reset),
    stepped with commanded targets through the env's command path."""

    def __init__(self, config: DriverConfig, env_config: EnvConfig | None = None) -> None:
        from sim.batch import ReorientBatch
        from sim.scene import load_model

        env_config = env_config or driver_env_config(config)
        self.seed = config.seed
        self.episode = 0  # episode i starts from episode_seed(seed, i), so runs of one seed start alike
        self.batch = ReorientBatch(env_config, 1, seed=config.seed, autoreset=False)
        self.batch.reset(episode_seed(self.seed, self.episode))
        self.model, self.data = self.batch.models[0], self.batch.datas[0]
        self.index = self.batch.index
        self.joint_map = JointMap.from_model(load_model(env_config.task.physics_timestep), self.index.hand_joint_names)
        self.control_period_ns = int(round(self.batch.control_dt * 1e9))
        self.time_ns = 0
        self.rig = None
        if config.publish_images:
            from sim.render import CameraRig

            self.rig = CameraRig(self.model, config.camera_height, config.camera_width)

    def joint_positions(self) -> np.ndarray:
        """Hand joint positions (24,) in Shadow units and order."""
        return self.joint_map.joints_to_shadow(self.data.qpos[self.index.hand_qpos])

    def joint_velocities(self) -> np.ndarray:
        """Hand joint velocities (24,) in Shadow units and order."""
        return self.joint_map.joints_to_shadow(self.data.qvel[self.index.hand_dof])

    def cube_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Cube position (3,) m and orientation (4,) w, x, y, z in the world frame."""
        start = self.index.cube_qpos
        return self.data.qpos[start : start + 3].copy(), self.data.qpos[start + 3 : start + 7].copy()

    def held_commands(self) -> np.ndarray:
        """The targets (20,) (Shadow units) the hand was last commanded: what it holds when told to hold, so a
        hand under load keeps its pose instead of sinking target by target."""
        return self.joint_map.ctrl_to_commands(self.batch.actuation.commands[0])

    def sensed_fingertips(self) -> np.ndarray:
        """Fingertip positions (5, 3) as the env's markers report them this period (noise, frozen markers)."""
        return self.batch.reported_fingertips[0].copy()

    def sensed_cube_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The cube's position (3,) and orientation (4,) as the env's observation noise reports them this period."""
        return self.batch.reported_position[0].copy(), self.batch.reported_quaternion[0].copy()

    def step(self, commands: np.ndarray) -> None:
        """Apply command targets (20,) (Shadow units) for one control period, with the env's unmodeled effects, then
        draw the period's observation noise as the env's step does."""
        self.batch.step_commands(self.joint_map.commands_to_ctrl(commands)[None])
        self.batch.advance_observation_noise()
        self.time_ns += self.control_period_ns

    def reset(self) -> None:
        """A new episode: freshly randomized physics, the cube dropped on the palm; sim time goes on."""
        self.episode += 1
        self.batch.reset(episode_seed(self.seed, self.episode))

    def render(self) -> np.ndarray:
        """Camera images (3, H, W, 3) uint8."""
        mujoco.mj_forward(self.model, self.data)
        return self.rig.render(self.data)  # type: ignore[union-attr]

    def focal_px(self, height: int) -> np.ndarray:
        """Focal length in pixels of each camera (3,)."""
        from sim.render import camera_parameters

        return camera_parameters(self.model, self.data, height)["focal_px"]

    def close(self) -> None:
        """Free the renderer."""
        if self.rig is not None:
            self.rig.close()
            self.rig = None


class HandDriver:
    """The driver node's logic; step() (sim) or control_shadow() (shadow) runs once per control period."""

    def __init__(self, node: Node, config: DriverConfig | None = None, start_timer: bool = True) -> None:
        self.node = node
        self.config = config or config_from_parameters(node, DriverConfig, DEFAULT_CONFIG)
        config = self.config
        self.sim: SimHand | None = None
        env_config = driver_env_config(config)
        if config.backend == "sim":
            self.sim = SimHand(config, env_config)
            self.joint_map = self.sim.joint_map
            if abs(self.sim.control_period_ns - config.control_period_s * 1e9) > 1e3:
                self.sim.close()
                raise ConfigError(
                    f"control_period_s = {config.control_period_s} but {config.env_config} steps the sim in "
                    f"{self.sim.control_period_ns / 1e9} s (physics_timestep x substeps); make them equal"
                )
        else:
            from ros_nodes.joint_map import default_joint_map

            self.joint_map = default_joint_map()
        joint_map = self.joint_map
        self.safety = safety_filter(joint_map, config, env_config)
        self.intake = CommandIntake(joint_map, self.safety)
        self.steps = 0
        self._last_diagnostics_ns: int | None = None
        self._reported_limit_hits = 0

        self.joint_states = node.create_publisher(msgs.JointState, "hand/joint_states", DEFAULT_QOS)
        self.diagnostics = node.create_publisher(msgs.DiagnosticArray, "/diagnostics", DEFAULT_QOS)
        node.create_subscription(msgs.JointState, "hand/command", self.on_command, DEFAULT_QOS)
        node.create_subscription(msgs.Bool, "hand/enable", self.on_enable, DEFAULT_QOS)
        node.create_subscription(msgs.Bool, "hand/reset", self.on_reset, DEFAULT_QOS)
        if self.sim is not None:
            self.clock = node.create_publisher(msgs.Clock, "/clock", CLOCK_PUBLISH_QOS)
            self.pose_true = node.create_publisher(msgs.PoseStamped, "object/pose_true", DEFAULT_QOS)
            self.pose_sensed = node.create_publisher(msgs.PoseStamped, "object/pose_sensed", DEFAULT_QOS)
            self.fingertips = [node.create_publisher(msgs.PoseStamped, topic, DEFAULT_QOS)
                               for topic in FINGERTIP_TOPICS]
            self.images = {}
            self.camera_infos = {}
            if config.publish_images:
                from sim.scene import CAMERA_NAMES

                for camera in CAMERA_NAMES:
                    self.images[camera] = node.create_publisher(msgs.Image, f"cameras/{camera}/image_raw", SENSOR_QOS)
                    self.camera_infos[camera] = node.create_publisher(
                        msgs.CameraInfo, f"cameras/{camera}/camera_info", SENSOR_QOS
                    )
            if start_timer:
                node.create_timer(config.control_period_s / config.real_time_factor, self.step)
        else:
            self.shadow_positions = np.full(len(joint_map.shadow_joint_names), np.nan)
            self.controllers = [
                node.create_publisher(msgs.Float64, controller_topic(name), DEFAULT_QOS) for name in joint_map.command_names
            ]
            node.create_subscription(msgs.JointState, config.shadow_joint_states_topic, self.on_shadow_joint_states)
            if start_timer:
                node.create_timer(config.control_period_s, self.control_shadow)

    # ------------------------------------------------------------------ inputs

    def now_s(self) -> float:
        """The driver's time: sim time on the sim backend, the node's clock on the real hand."""
        return (self.sim.time_ns if self.sim is not None else self.node.now_ns()) / 1e9

    def on_command(self, message: msgs.JointState) -> None:
        """Position targets by command name (CommandIntake's rules)."""
        self.intake.command(list(message.name), np.asarray(message.position, dtype=np.float64),
                            message.header.stamp.to_ns(), self.now_s())

    def on_enable(self, message: msgs.Bool) -> None:
        """Enable (true) or disable (false, hold position)."""
        self.intake.enable(bool(message.data))

    def on_reset(self, message: msgs.Bool) -> None:
        """A reset request (true): the next control period starts a new episode (sim) or holds (real hand)."""
        if message.data:
            self.intake.request_reset()

    def on_shadow_joint_states(self, message: msgs.JointState) -> None:
        """The real hand's /joint_states: remember the positions and republish the hand's joints."""
        known = {name: i for i, name in enumerate(self.joint_map.shadow_joint_names)}
        keep = [i for i, name in enumerate(message.name) if name in known]
        if not keep:
            return
        positions = np.asarray(message.position, dtype=np.float64)
        if len(positions) == len(message.name):
            self.shadow_positions[[known[message.name[i]] for i in keep]] = positions[keep]
        velocity = np.asarray(message.velocity)
        effort = np.asarray(message.effort)
        self.joint_states.publish(
            msgs.JointState(
                header=message.header,
                name=[message.name[i] for i in keep],
                position=positions[keep] if len(positions) == len(message.name) else np.zeros(0),
                velocity=velocity[keep] if len(velocity) == len(message.name) else np.zeros(0),
                effort=effort[keep] if len(effort) == len(message.name) else np.zeros(0),
            )
        )

    # ----------------------------------------------------------------- control

    def step(self) -> None:
        """Sim: apply one control period of safe targets, then publish the new state."""
        sim = self.sim
        assert sim is not None, "step() is the sim backend's control loop"
        if self.intake.begin_period(sim.time_ns):
            sim.reset()
        sim.step(self.intake.targets(sim.held_commands(), self.now_s()))
        self.steps += 1
        self.publish_sim_state()
        self._maybe_publish_diagnostics()

    def publish_sim_state(self) -> None:
        """/clock, joint states, true cube pose and (if configured) camera images, all stamped with sim time."""
        sim = self.sim
        assert sim is not None
        stamp = msgs.Time.from_ns(sim.time_ns)
        self.clock.publish(msgs.Clock(clock=stamp))
        self.joint_states.publish(
            msgs.JointState(
                header=msgs.Header(stamp=stamp, frame_id="hand"),
                name=list(self.joint_map.shadow_joint_names),
                position=sim.joint_positions(),
                velocity=sim.joint_velocities(),
                effort=np.zeros(0),
            )
        )
        self.pose_true.publish(pose_message(*sim.cube_pose(), stamp))
        self.pose_sensed.publish(pose_message(*sim.sensed_cube_pose(), stamp))
        for publisher, position in zip(self.fingertips, sim.sensed_fingertips()):
            publisher.publish(pose_message(position, IDENTITY, stamp))
        if self.images and self.steps % self.config.image_period_steps == 0:
            frames = sim.render()
            height, width = frames.shape[1:3]
            focal = sim.focal_px(height)
            for (camera, publisher), frame, focal_px in zip(self.images.items(), frames, focal):
                publisher.publish(
                    msgs.Image(
                        header=msgs.Header(stamp=stamp, frame_id=f"{camera}_camera"),
                        height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3,
                        data=np.ascontiguousarray(frame).reshape(-1),
                    )
                )
                self.camera_infos[camera].publish(camera_info(camera, height, width, float(focal_px), stamp))

    def control_shadow(self) -> None:
        """Real hand: one control period of safe targets to Shadow's position controllers."""
        self.intake.begin_period(self.node.now_ns())  # the real hand holds where it is
        if np.isnan(self.shadow_positions).any():
            return  # nothing is sent before every joint's position is known
        current = self.joint_map.commands_from_joints(self.shadow_positions)
        targets = self.intake.targets(current, self.now_s())
        for publisher, target in zip(self.controllers, targets):
            publisher.publish(msgs.Float64(data=float(target)))
        self.steps += 1
        self._maybe_publish_diagnostics()

    # ------------------------------------------------------------- diagnostics

    def diagnostic_status(self) -> msgs.DiagnosticStatus:
        """The safety layer's state as one DiagnosticStatus (WARN on limits hit or watchdog, ERROR on NaN/inf)."""
        counters = self.safety.counters
        level, notes = msgs.DiagnosticStatus.OK, []
        if counters.limit_hits > self._reported_limit_hits:
            level = msgs.DiagnosticStatus.WARN
            notes.append("targets clamped to joint limits")
        if self.safety.watchdog_tripped:
            level = msgs.DiagnosticStatus.WARN
            notes.append("watchdog: no command, holding position")
        if counters.nonfinite_rejected or self.intake.rejected_messages:
            level = max(level, msgs.DiagnosticStatus.WARN)
            notes.append("commands rejected")
        if not self.safety.enabled:
            notes.append("disabled, holding position")
        self._reported_limit_hits = counters.limit_hits
        values: dict[str, Any] = {
            "backend": self.config.backend,
            "enabled": self.safety.enabled,
            "commands_accepted": counters.commands_accepted,
            "limit_hits": counters.limit_hits,
            "clamped_joints": ",".join(sorted(counters.clamped_joints)),
            "nonfinite_rejected": counters.nonfinite_rejected,
            "malformed_rejected": self.intake.rejected_messages,
            "dropped_before_reset": self.intake.dropped_before_reset,
            "last_rejection": self.safety.last_rejection or self.intake.last_message_error,
            "watchdog_trips": counters.watchdog_trips,
            "watchdog_holding": self.safety.watchdog_tripped,
            "rate_limited_periods": counters.rate_limited_updates,
            "commanded_periods": counters.commanded_updates,
            "altered_periods": counters.altered_updates,
            "altered_fraction": round(counters.altered_fraction, 6),
            "control_periods": self.steps,
        }
        return msgs.DiagnosticStatus(
            level=level,
            name=f"{self.node.name}: safety",
            message="; ".join(notes) or "ok",
            hardware_id=f"shadow_hand_{self.config.backend}",
            values=[msgs.KeyValue(key=key, value=str(value).lower() if isinstance(value, bool) else str(value))
                    for key, value in values.items()],
        )

    def publish_diagnostics(self) -> None:
        """Publish the safety status on /diagnostics now."""
        stamp = msgs.Time.from_ns(self.sim.time_ns if self.sim is not None else self.node.now_ns())
        self.diagnostics.publish(msgs.DiagnosticArray(header=msgs.Header(stamp=stamp), status=[self.diagnostic_status()]))

    def _maybe_publish_diagnostics(self) -> None:
        now_ns = int(self.now_s() * 1e9)
        if self._last_diagnostics_ns is None or now_ns - self._last_diagnostics_ns >= self.config.diagnostics_period_s * 1e9:
            self._last_diagnostics_ns = now_ns
            self.publish_diagnostics()

    def close(self) -> None:
        """Free the simulation's renderer."""
        if self.sim is not None:
            self.sim.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m ros_nodes.hand_driver --ros-args -p backend:=sim ...`"""
    return run_node("hand_driver", HandDriver, argv)


if __name__ == "__main__":
    raise SystemExit(main())
