"""Task logic as pure functions: rewards, actions, goals."""
import numpy as np
import pytest

from sim import rotations, task
from sim.config import TaskConfig


def test_reward_of_hand_built_transitions():
    config = TaskConfig()
    before = np.array([0.9, 0.9, 0.5, 1.2])
    after = np.array([0.35, 0.95, 0.5, 1.0])
    success = np.array([True, False, False, False])
    dropped = np.array([False, False, False, True])
    # 0.9-0.35+5 ; 0.9-0.95 ; 0 ; 1.2-1.0-20
    np.testing.assert_allclose(task.reward(before, after, success, dropped, config), [5.55, -0.05, 0.0, -19.8])


def test_bins_map_to_eleven_evenly_spaced_actions():
    bins = np.arange(11)[None]
    np.testing.assert_allclose(task.bins_to_actions(bins, 11), [np.linspace(-1, 1, 11)])
    assert task.bins_to_actions(np.array([[5]]), 11)[0, 0] == 0.0


def test_relative_targets_move_by_half_range_and_clip():
    ctrl_range = np.array([[0.0, 1.6], [-0.4, 0.4]])
    current = np.array([[0.5, 0.0]])
    np.testing.assert_allclose(task.relative_targets(np.array([[0.5, -0.5]]), current, ctrl_range, 1.0), [[0.9, -0.2]])
    np.testing.assert_allclose(task.relative_targets(np.array([[1.0, -1.0]]), current, ctrl_range, 1.0), [[1.3, -0.4]])
    np.testing.assert_allclose(task.relative_targets(np.array([[-1.0, 1.0]]), current, ctrl_range, 0.5), [[0.1, 0.2]])


def test_z_goals_are_yaw_only_and_xyz_goals_are_not():
    rng = np.random.default_rng(0)
    z_goals = task.sample_orientations(rng, 500, "z")
    np.testing.assert_allclose(z_goals[:, 1:3], 0.0, atol=1e-12)
    xyz_goals = task.sample_orientations(rng, 500, "xyz")
    assert np.abs(xyz_goals[:, 1:3]).mean() > 0.2


def test_new_goals_are_never_already_reached():
    rng = np.random.default_rng(1)
    current = rotations.uniform(rng, 2000)
    goals = task.sample_goals(rng, current, "xyz", 0.4)
    assert rotations.angle_between(goals, current).min() >= 0.4


def test_relative_goal_rotates_cube_onto_goal():
    rng = np.random.default_rng(2)
    cube, goal = rotations.uniform(rng, 100), rotations.uniform(rng, 100)
    relative = task.relative_goal(cube, goal)
    assert np.all(relative[:, 0] >= 0)
    reached = rotations.multiply(relative, cube)
    assert rotations.angle_between(reached, goal).max() == pytest.approx(0.0, abs=1e-6)
