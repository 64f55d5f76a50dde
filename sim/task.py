"""Dactyl's reorientation task as pure functions: goals, success, reward, actions (appendix C)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import rotations
from sim.config import TaskConfig


def sample_orientations(rng: np.random.Generator, count: int, mode: str) -> np.ndarray:
    """Orientations (count, 4): uniform over SO(3) for "xyz", uniform yaw of the upright cube for "z"."""
    if mode == "xyz":
        return rotations.uniform(rng, count)
    return rotations.about_z(rng.uniform(-np.pi, np.pi, count))


def sample_goals(
    rng: np.random.Generator, current: np.ndarray, mode: str, min_distance: float, max_distance: float = np.pi
) -> np.ndarray:
    """Goals (N, 4) for cubes at `current` (N, 4), each at least `min_distance` rad away so none is won for free.
    An xyz goal is at most `max_distance` rad away (below pi: a training curriculum; at pi, Dactyl's task)."""
    if mode == "xyz" and max_distance < np.pi:
        return rotations.uniform_near(rng, current, min_distance, max_distance)
    goals = sample_orientations(rng, len(current), mode)
    too_close = rotations.angle_between(goals, current) < min_distance
    while too_close.any():
        goals[too_close] = sample_orientations(rng, int(too_close.sum()), mode)
        too_close = rotations.angle_between(goals, current) < min_distance
    return goals


def relative_goal(cube: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """The rotation (N, 4) that takes the cube's orientation to the goal, sign-canonical (w >= 0)."""
    return rotations.canonical(rotations.multiply(goal, rotations.conjugate(cube)))


def policy_observation(
    fingertip_positions: np.ndarray, object_position: np.ndarray, object_quaternion: np.ndarray, goal: np.ndarray
) -> np.ndarray:
    """The policy's inputs (N, 22) float32: fingertips (N, 5, 3), cube position (N, 3), relative goal from the cube
    orientation (N, 4) to the goal (N, 4); the one assembly the sim and the robot's policy node share."""
    return np.concatenate(
        (
            np.asarray(fingertip_positions).reshape(len(object_position), -1),
            object_position,
            relative_goal(object_quaternion, goal),
        ),
        axis=1,
    ).astype(np.float32)


def reward(
    distance_before: np.ndarray, distance_after: np.ndarray, success: np.ndarray, dropped: np.ndarray,
    config: TaskConfig,
) -> np.ndarray:
    """r = d_t - d_{t+1}, plus the success bonus, plus the drop penalty (a negative number)."""
    return (
        distance_before
        - distance_after
        + config.success_bonus * success
        + config.drop_penalty * dropped
    )


def bins_to_actions(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Categorical action bins (N, A) in 0..n_bins-1 -> normalized actions in [-1, 1]."""
    return bins.astype(np.float64) * (2.0 / (n_bins - 1)) - 1.0


def relative_targets(
    actions: np.ndarray, actuated_positions: np.ndarray, ctrl_range: np.ndarray, scale: float
) -> np.ndarray:
    """New joint targets (N, A): current actuated positions moved by action * scale * half range, within range."""
    half_range = 0.5 * (ctrl_range[:, 1] - ctrl_range[:, 0])
    return np.clip(actuated_positions + actions * (scale * half_range), ctrl_range[:, 0], ctrl_range[:, 1])


def smoothed_targets(
    actions: np.ndarray, actuated_positions: np.ndarray, previous_targets: np.ndarray, ctrl_range: np.ndarray,
    config: TaskConfig,
) -> np.ndarray:
    """Normalized actions (N, A) -> the targets (N, A) sent to the hand: relative targets, then the EMA with the
    previous targets (N, A); the one formula the env and the policy node share."""
    new_targets = relative_targets(actions, actuated_positions, ctrl_range, config.relative_action_scale)
    return config.action_ema * new_targets + (1.0 - config.action_ema) * previous_targets


def implied_actions(
    targets: np.ndarray, previous_targets: np.ndarray, actuated_positions: np.ndarray, ctrl_range: np.ndarray,
    config: TaskConfig,
) -> np.ndarray:
    """The normalized actions (N, A) that smoothed_targets turns into `targets` from `previous_targets`: its inverse.

    Exact where the relative target was inside the control range; values beyond [-1, 1] mean a command no single
    action could give (an operator's, say). The sim driver uses it to put the env's action noise on commands.
    """
    if config.action_ema <= 0.0:
        raise ValueError("action_ema is 0: targets never move, so no action can be read back from them")
    half_range = 0.5 * (ctrl_range[:, 1] - ctrl_range[:, 0])
    new_targets = (targets - (1.0 - config.action_ema) * previous_targets) / config.action_ema
    return (new_targets - actuated_positions) / (config.relative_action_scale * half_range)


ENDED_BY = ("", "drop", "max_successes", "timeout")  # codes of Outcome.ended_by: 0 = the episode goes on


@dataclass(frozen=True)
class Outcome:
    """What one step (or one pose) means for N episodes; arrays (N,) or 0-d for one."""

    success: np.ndarray  # bool: within the success threshold of the goal (a new goal follows)
    successes: np.ndarray  # int: consecutive successes after this step
    since_success: np.ndarray  # time since the last success after this step, in the unit given
    dropped: np.ndarray  # bool
    max_reached: np.ndarray  # bool: max_consecutive_successes reached
    timed_out: np.ndarray  # bool: the timeout passed without a success (and nothing else ended the episode)

    @property
    def terminated(self) -> np.ndarray:
        """The episode ended by the task itself (drop or success limit), not by the clock."""
        return self.dropped | self.max_reached

    @property
    def ended_by(self) -> np.ndarray:
        """Index into ENDED_BY per episode: 0 while it goes on, else how it ended."""
        return np.select([self.dropped, self.max_reached, self.timed_out], [1, 2, 3], 0)


def episode_outcome(
    distance: np.ndarray, cube_height: np.ndarray, successes: np.ndarray, since_success: np.ndarray,
    timeout: float, config: TaskConfig, invalid: np.ndarray | bool = False, off_palm: np.ndarray | bool = False,
) -> Outcome:
    """Success, drop, success limit and timeout of Dactyl's task (appendix C) for one step of N episodes.

    distance: angle to the goal after the step (rad); cube_height: world z of the cube's centre (m); successes:
    consecutive successes before the step; since_success: time since the last success including this step, in
    the unit of `timeout` (control steps in the env, seconds on the robot). `invalid` marks states that cannot
    count (a physics error); `off_palm` a cube that a detector sees off the palm whatever its height reads.
    """
    dropped = (np.asarray(cube_height) < config.drop_height_m) | off_palm
    success = (np.asarray(distance) < config.success_threshold_rad) & ~dropped & ~np.asarray(invalid)
    successes = np.asarray(successes) + success
    since_success = np.where(success, 0, since_success)
    max_reached = (successes >= config.max_consecutive_successes) & ~dropped
    timed_out = (since_success >= timeout) & ~dropped & ~max_reached
    return Outcome(success, successes, since_success, dropped, max_reached, timed_out)
