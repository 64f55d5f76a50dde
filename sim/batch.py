"""N reorientation envs stepped in one process: MuJoCo per env, everything else as numpy over the batch.

This is the one implementation of the task; the gymnasium env is a batch of one and the vectorized envs
are batches in worker processes. Python work per step is a short loop of MuJoCo calls plus array math over
all envs, so its cost is shared by the batch (DESIGN.md §2, speed).
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import mujoco
import numpy as np

from sim import contract, perturbations, rotations, task
from sim.actuation import Actuation
from sim.adr import NO_BOUNDARY, adr_table, choose_boundary, episode_randomization
from sim.config import EnvConfig, Randomization
from sim.cores import check_num_threads
from sim.perturbations import EpisodeEffects
from sim.randomization import capture_nominal, randomize_physics
from sim.rows import RowPool
from sim.scene import SceneIndex, index_scene, load_model

logger = logging.getLogger(__name__)

# where a new cube is dropped onto the palm (the palm's surface is at z ~= 0.14 m)
CUBE_START_POSITION = np.array([1.0, 0.87, 0.2])
CUBE_START_JITTER_M = 0.005
N_WARNINGS = len(mujoco.mjtWarning.__members__) - 1  # the last member is the count mjNWARNING
# MuJoCo resets the data itself after these, so the episode's state is gone
FATAL_WARNINGS = np.array(
    [int(mujoco.mjtWarning.mjWARN_BADQPOS), int(mujoco.mjtWarning.mjWARN_BADQVEL), int(mujoco.mjtWarning.mjWARN_BADQACC)]
)

# (name, size) of each observation block, in order; the sizes of "policy" and "critic" are their sums
POLICY_BLOCKS: tuple[tuple[str, int], ...] = (
    ("fingertip_positions", 15),  # 5 fingertips x xyz, noisy, markers may freeze
    ("object_position", 3),  # noisy
    ("relative_goal", 4),  # quaternion from the (noisy) cube orientation to the goal
)
CRITIC_BLOCKS: tuple[tuple[str, int], ...] = (
    *POLICY_BLOCKS,  # noise-free here
    ("object_orientation", 4),
    ("goal_orientation", 4),
    ("joint_positions", 24),
    ("joint_velocities", 24),
    ("object_linear_velocity", 3),
    ("object_angular_velocity", 3),
)
OBSERVATION_SIZES = {
    "policy": sum(size for _, size in POLICY_BLOCKS),
    "critic": sum(size for _, size in CRITIC_BLOCKS),
}


# the relative goal's first column in the critic observation: the sizes of the blocks before it
_CRITIC_NAMES = [name for name, _ in CRITIC_BLOCKS]
_CRITIC_RELATIVE_GOAL = sum(size for _, size in CRITIC_BLOCKS[: _CRITIC_NAMES.index("relative_goal")])


def critic_goal_angle(critic: np.ndarray) -> np.ndarray:
    """The angle (N,) from each cube to its goal, read from the noise-free critic observations (N, critic size)."""
    relative = np.asarray(critic)[:, _CRITIC_RELATIVE_GOAL : _CRITIC_RELATIVE_GOAL + 4]
    return rotations.angle_between(relative, np.array([1.0, 0.0, 0.0, 0.0]))


def episode_seed(seed: int, episode: int) -> int:
    """The reset seed of episode `episode` (0, 1, ...) of a run seeded `seed`: runs that reset every episode with it
    (the sim driver, `inhand bench fidelity`'s env loop) start their i-th episodes alike (physics, effects, cube)."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


@dataclass
class StepResult:
    """What one batch step returns; arrays are (N, ...)."""

    observation: dict[str, np.ndarray]
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, np.ndarray]


class ReorientBatch:
    """N Shadow Hand + cube simulations with Dactyl's task logic and randomizations."""

    def __init__(self, config: EnvConfig, num_envs: int, seed: int | None = None, autoreset: bool = True,
                 num_threads: int = 1):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        num_threads = check_num_threads(num_threads)
        self.config = config
        self.num_envs = num_envs
        self.autoreset = autoreset
        # the envs share nothing, so which thread steps a row cannot change its result
        self.num_threads = min(num_threads, num_envs)
        self.rows = RowPool(self.num_threads)
        task_config = config.task
        base = load_model(task_config.physics_timestep)
        self.index: SceneIndex = index_scene(base)
        self.nominal = capture_nominal(base, self.index)
        self.models = [copy.copy(base) for _ in range(num_envs)]
        self.datas = [mujoco.MjData(model) for model in self.models]
        self.actuation = Actuation(config, self.models, self.datas, self.index.cube_body, self.rows, self._gather)
        self.actuated_qpos = self.actuation.actuated_qpos
        self.ctrl_range = self.actuation.ctrl_range
        self.n_actuators = base.nu
        self.control_dt = self.actuation.control_dt
        self.timeout_steps = int(round(task_config.timeout_s / self.control_dt))
        cube_mass = base.body_mass[self.index.cube_body]
        self.cube_masses = np.full(num_envs, cube_mass)

        n, a = num_envs, self.n_actuators
        self.qpos = np.zeros((n, base.nq))
        self.qvel = np.zeros((n, base.nv))
        self.fingertips = np.zeros((n, 5, 3))
        self.warning_counts = np.zeros((n, N_WARNINGS), dtype=np.int64)
        self.goal = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        self.distance = np.zeros(n)
        self.successes = np.zeros(n, dtype=np.int64)
        self.steps_since_success = np.zeros(n, dtype=np.int64)
        self.episode_return = np.zeros(n)
        self.episode_length = np.zeros(n, dtype=np.int64)
        self.frozen_markers = np.zeros((n, 5), dtype=np.int64)
        self.reported_fingertips = np.zeros((n, 5, 3))  # this step's readings, with noise (and frozen markers)
        self.reported_position = np.zeros((n, 3))
        self.reported_quaternion = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        self.physics_steps = 0
        self.rng = np.random.default_rng(seed)
        self.effects = EpisodeEffects.draw(self.rng, n, a, config.randomization)
        # automatic domain randomization: the learner sets the boundary values, each episode draws inside them
        self.adr_table = adr_table(config)
        self.adr_values = self.adr_table.nominal_values() if self.adr_table is not None else np.zeros(0)
        self.adr_boundary = np.full(n, NO_BOUNDARY, dtype=np.int64)  # the boundary each env's episode evaluates

    # ------------------------------------------------------------------ reset

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start a new episode in every env; a seed restarts the batch's random stream."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.reset_envs(np.arange(self.num_envs))
        return self.observe()

    def set_adr_values(self, values: np.ndarray) -> None:
        """The ADR boundary values (K,) that episodes starting from now draw within."""
        values = np.asarray(values, dtype=float)
        if self.adr_table is None:
            raise ValueError("ADR values given, but randomization.mode is fixed: the ranges are the configured ones")
        if values.shape != self.adr_values.shape:
            raise ValueError(f"ADR values of shape {values.shape}: this env config has {len(self.adr_values)} boundaries")
        self.adr_values = values.copy()

    def reset_envs(self, rows: np.ndarray) -> None:
        """New randomized physics, cube pose and goal for the envs in `rows`."""
        task_config = self.config.task
        rows = [int(row) for row in rows]
        randomizations = {row: self._episode_randomization(row) for row in rows}
        pending = rows
        # draws happen here in row order; only the settling physics runs on the threads, so the thread count
        # cannot change an episode
        for _ in range(task_config.max_reset_attempts):
            for row in pending:
                self._place_cube(row, randomizations[row])
            self._settle(pending, task_config.settle_steps)
            for _ in range(task_config.max_settle_steps - task_config.settle_steps):
                moving = [row for row in pending if self._landed(row) and not self._at_rest(row)]
                if not moving:
                    break
                self._settle(moving, 1)
            pending = [row for row in pending if not (self._landed(row) and self._at_rest(row))]
            if not pending:
                break
        else:
            raise RuntimeError(
                f"envs {pending}: the cube fell off the palm or was still moving after task.max_settle_steps in all "
                f"{task_config.max_reset_attempts} reset attempts; check task.settle_steps, max_settle_steps, "
                "rest_speed_m_s, rest_angular_speed_rad_s, drop_height_m and the physics randomization ranges"
            )
        for row in rows:
            model, data = self.models[row], self.datas[row]
            self.cube_masses[row] = model.body_mass[self.index.cube_body]
            self.actuation.reset_rows([row], data.ctrl)
            self.warning_counts[row] = data.warning.number
            self.effects.assign(np.array([row]), EpisodeEffects.draw(self.rng, 1, self.n_actuators, randomizations[row]))
        cube_quaternion = self.qpos[rows, self.index.cube_qpos + 3 : self.index.cube_qpos + 7]
        self.goal[rows] = task.sample_goals(
            self.rng, cube_quaternion, task_config.goal_mode, task_config.success_threshold_rad,
            task_config.goal_max_angle_rad
        )
        self.distance[rows] = rotations.angle_between(cube_quaternion, self.goal[rows])
        for row in rows:
            self.datas[row].mocap_quat[self.index.goal_mocap] = self.goal[row]
        self.successes[rows] = 0
        self.steps_since_success[rows] = 0
        self.episode_return[rows] = 0.0
        self.episode_length[rows] = 0
        self.frozen_markers[rows] = 0
        self.reported_fingertips[rows] = self.fingertips[rows]

    def _episode_randomization(self, row: int) -> Randomization:
        """The configured ranges, or under ADR the current boundaries (one of them maybe pinned)."""
        if self.adr_table is None:
            return self.config.randomization
        self.adr_boundary[row] = choose_boundary(self.rng, self.adr_table)
        return episode_randomization(self.config.randomization, self.adr_table, self.adr_values,
                                     int(self.adr_boundary[row]))

    def _place_cube(self, row: int, randomization: Randomization) -> None:
        """Randomized physics, the hand at its zero pose holding still, a new cube dropped onto the palm."""
        task_config = self.config.task
        model, data = self.models[row], self.datas[row]
        index = self.index
        randomize_physics(model, self.nominal, self.rng, randomization.physics)
        mujoco.mj_setConst(model, data)
        mujoco.mj_resetData(model, data)
        hand_joints = self.nominal.hand_joints
        data.qpos[index.hand_qpos] = np.clip(0.0, model.jnt_range[hand_joints, 0], model.jnt_range[hand_joints, 1])
        start = CUBE_START_POSITION + np.append(self.rng.uniform(-1, 1, 2) * CUBE_START_JITTER_M, 0.0)
        orientation = task.sample_orientations(self.rng, 1, task_config.goal_mode)[0]
        data.qpos[index.cube_qpos : index.cube_qpos + 7] = np.concatenate((start, orientation))
        data.ctrl[:] = np.clip(data.qpos[self.actuated_qpos], self.ctrl_range[:, 0], self.ctrl_range[:, 1])

    def _settle(self, rows: list[int], control_steps: int) -> None:
        """The hand holds still for `control_steps` control periods in the envs in `rows`, on the threads."""
        physics_steps = control_steps * self.config.task.substeps
        self.rows.run(lambda chunk: self._settle_rows(chunk, physics_steps), rows)
        self.physics_steps += physics_steps * len(rows)

    def _settle_rows(self, rows: Iterator[int], physics_steps: int) -> None:
        for row in rows:
            model, data = self.models[row], self.datas[row]
            if physics_steps:
                mujoco.mj_step(model, data, physics_steps)
            mujoco.mj_forward(model, data)
            self._gather(row)

    def _landed(self, row: int) -> bool:
        data = self.datas[row]
        return bool(data.qpos[self.index.cube_qpos + 2] >= self.config.task.drop_height_m
                    and not data.warning.number[FATAL_WARNINGS].any())

    def _at_rest(self, row: int) -> bool:
        task_config, velocity = self.config.task, self.qvel[row, self.index.cube_dof : self.index.cube_dof + 6]
        return bool(np.linalg.norm(velocity[:3]) <= task_config.rest_speed_m_s
                    and np.linalg.norm(velocity[3:]) <= task_config.rest_angular_speed_rad_s)

    # ------------------------------------------------------------------- step

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every env one control period; finished envs restart when autoreset is on."""
        task_config = self.config.task
        index = self.index
        self.actuation.set_actions(self._normalize_actions(actions), self.qpos[:, self.actuated_qpos], self.effects,
                                   self.rng)
        physics_error, new_warnings = self._advance()

        cube_position = self.qpos[:, index.cube_qpos : index.cube_qpos + 3]
        cube_quaternion = self.qpos[:, index.cube_qpos + 3 : index.cube_qpos + 7]
        distance = rotations.angle_between(cube_quaternion, self.goal)
        outcome = task.episode_outcome(distance, cube_position[:, 2], self.successes, self.steps_since_success + 1,
                                       self.timeout_steps, task_config, invalid=physics_error)
        success, dropped = outcome.success, outcome.dropped
        reward = task.reward(self.distance, distance, success, dropped, task_config)
        self.successes = outcome.successes
        self.steps_since_success = outcome.since_success
        if success.any():
            rows = np.flatnonzero(success)
            self.goal[rows] = task.sample_goals(
                self.rng, cube_quaternion[rows], task_config.goal_mode, task_config.success_threshold_rad,
                task_config.goal_max_angle_rad
            )
            distance[rows] = rotations.angle_between(cube_quaternion[rows], self.goal[rows])
            for row in rows:
                self.datas[row].mocap_quat[index.goal_mocap] = self.goal[row]
        self.distance = distance
        self.episode_return += reward
        self.episode_length += 1

        terminated = outcome.terminated
        timed_out = outcome.timed_out
        truncated = timed_out | (physics_error & ~terminated)
        done = terminated | truncated
        info = {
            contract.IS_SUCCESS: success,
            contract.CONSECUTIVE_SUCCESSES: self.successes.copy(),
            contract.DROPPED: dropped,
            contract.TIMED_OUT: timed_out,
            contract.PHYSICS_ERROR: physics_error,
            contract.MUJOCO_WARNINGS: new_warnings.sum(axis=1),
            contract.EPISODE_DONE: done,
            contract.EPISODE_RETURN: self.episode_return.copy(),
            contract.EPISODE_LENGTH: self.episode_length.copy(),
            contract.ADR_BOUNDARY: self.adr_boundary.copy(),
        }
        critic = self.critic_observation()
        if self.autoreset:
            info[contract.FINAL_CRITIC] = critic
            if done.any():
                rows = np.flatnonzero(done)
                self.reset_envs(rows)
                critic = critic.copy()
                critic[rows] = self.critic_observation(rows)
        self.advance_observation_noise()
        observation = {"policy": self.policy_observation(), "critic": critic}
        return StepResult(observation, reward.astype(np.float32), terminated, truncated, info)

    def step_commands(self, commands: np.ndarray) -> np.ndarray:
        """Advance every env one control period towards commanded targets (N, A) in actuator units, as a robot's
        controller sends them (the sim driver, replay's re-simulation), with the env's unmodeled effects and none
        of its task logic; returns which envs hit a physics error (N,)."""
        commands = np.asarray(commands, dtype=np.float64)
        expected = (self.num_envs, self.n_actuators)
        if commands.shape != expected or not np.all(np.isfinite(commands)):
            raise ValueError(f"commands must be finite, of shape {expected}; got shape {commands.shape}")
        self.actuation.set_commands(commands, self.qpos[:, self.actuated_qpos], self.effects, self.rng)
        return self._advance()[0]

    def place(self, row: int, hand_qpos: np.ndarray, cube_pose: np.ndarray, targets: np.ndarray) -> None:
        """Put env `row` at rest in a given state: hand joints (24,), cube position + quaternion (7,), holding
        `targets` (A,) (a recorded state to re-simulate from)."""
        data, index = self.datas[row], self.index
        data.qpos[index.hand_qpos] = hand_qpos
        data.qpos[index.cube_qpos : index.cube_qpos + 7] = cube_pose
        data.qvel[:] = 0.0
        data.ctrl[:] = np.clip(targets, self.ctrl_range[:, 0], self.ctrl_range[:, 1])
        mujoco.mj_forward(self.models[row], data)
        self._gather(row)
        self.actuation.reset_rows([row], data.ctrl)

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        """The command path's control period for every env; (physics error (N,), new MuJoCo warnings (N, W))."""
        self.actuation.advance(self.effects, self.rng, self.cube_masses)
        self.physics_steps += self.config.task.substeps * self.num_envs
        new_warnings = np.stack([data.warning.number for data in self.datas]) - self.warning_counts
        self.warning_counts += new_warnings
        if new_warnings.any():
            self._report_warnings(new_warnings)
        return new_warnings[:, FATAL_WARNINGS].sum(axis=1) > 0, new_warnings

    def close(self) -> None:
        """Stop the physics threads."""
        self.rows.close()

    def _normalize_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        expected = (self.num_envs, self.n_actuators)
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        if self.config.task.action_type == "discrete":
            bins = self.config.task.action_bins
            if not np.issubdtype(actions.dtype, np.integer) or actions.min() < 0 or actions.max() >= bins:
                raise ValueError(f"discrete actions must be integer bins in [0, {bins - 1}]")
            return task.bins_to_actions(actions, bins)
        if not np.all(np.isfinite(actions)):
            raise ValueError("continuous actions must be finite")
        return np.clip(actions, -1.0, 1.0)

    def _gather(self, row: int) -> None:
        data = self.datas[row]
        # site positions of mj_step are from before its last integration; recompute them for the new qpos
        mujoco.mj_kinematics(self.models[row], data)
        self.qpos[row] = data.qpos
        self.qvel[row] = data.qvel
        self.fingertips[row] = data.site_xpos[self.index.fingertip_site_ids]

    def _report_warnings(self, new_warnings: np.ndarray) -> None:
        for row, kind in zip(*np.nonzero(new_warnings)):
            logger.warning(
                "env %d: MuJoCo warning %s x%d at episode step %d",
                row, mujoco.mjtWarning(kind).name, new_warnings[row, kind], self.episode_length[row],
            )

    # ------------------------------------------------------------ observation

    def critic_observation(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The noise-free full state (N, critic size) of the envs in `rows`, float32."""
        index = self.index
        qpos, qvel = self.qpos[rows], self.qvel[rows]
        cube_quaternion = qpos[:, index.cube_qpos + 3 : index.cube_qpos + 7]
        goal = self.goal[rows]
        return np.concatenate(
            (
                self.fingertips[rows].reshape(len(qpos), -1),
                qpos[:, index.cube_qpos : index.cube_qpos + 3],
                task.relative_goal(cube_quaternion, goal),
                cube_quaternion,
                goal,
                qpos[:, index.hand_qpos],
                qvel[:, index.hand_dof],
                qvel[:, index.cube_dof : index.cube_dof + 6],
            ),
            axis=1,
        ).astype(np.float32)

    def advance_observation_noise(self) -> None:
        """Draw this step's observation noise: markers freeze or thaw, fingertip and cube-pose readings get noise."""
        randomization = self.config.randomization
        index = self.index
        self.frozen_markers = perturbations.freeze_markers(
            self.frozen_markers, self.effects.freeze_rate_hz, self.rng, randomization, self.control_dt
        )
        self.reported_fingertips = perturbations.noisy_fingertips(
            self.fingertips, self.reported_fingertips, self.frozen_markers, self.effects, self.rng, randomization
        )
        self.reported_position, self.reported_quaternion = perturbations.noisy_object_pose(
            self.qpos[:, index.cube_qpos : index.cube_qpos + 3],
            self.qpos[:, index.cube_qpos + 3 : index.cube_qpos + 7],
            self.effects, self.rng, randomization,
        )

    def policy_observation(self) -> np.ndarray:
        """The policy's noisy inputs (N, policy size), float32, from this step's readings and the current goals."""
        return task.policy_observation(self.reported_fingertips, self.reported_position, self.reported_quaternion,
                                       self.goal)

    def observe(self) -> dict[str, np.ndarray]:
        """Policy (noisy) and critic (exact) observations of every env, after drawing this step's noise."""
        self.advance_observation_noise()
        return {"policy": self.policy_observation(), "critic": self.critic_observation()}
