"""Dactyl's reorientation task as pure functions: goals, success, reward, actions (appendix C)."""
from __future__ import annotations

import numpy as np

from sim import rotations
from sim.config import TaskConfig


def sample_orientations(rng: np.random.Generator, count: int, mode: str) -> np.ndarray:
    """Orientations (count, 4): uniform over SO(3) for "xyz", uniform yaw of the upright cube for "z"."""
    if mode == "xyz":
        return rotations.uniform(rng, count)
    return rotations.about_z(rng.uniform(-np.pi, np.pi, count))


def sample_goals(
    rng: np.random.Generator, current: np.ndarray, mode: str, min_distance: float
) -> np.ndarray:
    """Goals (N, 4) for cubes at `current` (N, 4), each at least `min_distance` rad away so none is won for free."""
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
