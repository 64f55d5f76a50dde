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


def test_a_goal_curriculum_keeps_xyz_goals_near_and_pi_is_the_whole_task():
    rng = np.random.default_rng(5)
    current = rotations.uniform(rng, 2000)
    near = task.sample_goals(rng, current, "xyz", 0.4, max_distance=1.2)
    distances = rotations.angle_between(near, current)
    assert distances.min() >= 0.4 and distances.max() <= 1.2 + 1e-9
    # at pi the draws are the task's own, one for one: the same generator state gives the same goals
    state = np.random.default_rng(6)
    whole = task.sample_goals(state, current, "xyz", 0.4, max_distance=np.pi)
    np.testing.assert_array_equal(whole, task.sample_goals(np.random.default_rng(6), current, "xyz", 0.4))


def test_relative_goal_rotates_cube_onto_goal():
    rng = np.random.default_rng(2)
    cube, goal = rotations.uniform(rng, 100), rotations.uniform(rng, 100)
    relative = task.relative_goal(cube, goal)
    assert np.all(relative[:, 0] >= 0)
    reached = rotations.multiply(relative, cube)
    assert rotations.angle_between(reached, goal).max() == pytest.approx(0.0, abs=1e-6)


def test_smoothed_targets_and_implied_actions_invert_each_other():
    config = TaskConfig(action_ema=0.3, relative_action_scale=0.5)
    ctrl_range = np.array([[0.0, 1.6], [-0.4, 0.4]])
    previous, current = np.array([[0.4, 0.1]]), np.array([[0.5, 0.0]])
    # new targets 0.5 + 0.5 * 0.5 * 0.8 = 0.7 and 0 - 0.5 * 0.5 * 0.4 = -0.1; EMA: 0.3 * new + 0.7 * previous
    targets = task.smoothed_targets(np.array([[0.5, -0.5]]), current, previous, ctrl_range, config)
    np.testing.assert_allclose(targets, [[0.3 * 0.7 + 0.7 * 0.4, 0.3 * -0.1 + 0.7 * 0.1]])
    np.testing.assert_allclose(task.implied_actions(targets, previous, current, ctrl_range, config), [[0.5, -0.5]])
    # a target no single action reaches reads back as an action beyond 1: (0.3 * 1.5 + 0.7 * 0.4 - 0.28) / 0.3 = 1.5
    # is the new target, (1.5 - 0.5) / (0.5 * 0.8) = 2.5
    far = np.array([[0.3 * 1.5 + 0.7 * 0.4, 0.07]])
    assert task.implied_actions(far, previous, current, ctrl_range, config)[0, 0] == pytest.approx(2.5)


def test_episode_outcome_of_hand_built_steps():
    config = TaskConfig(success_threshold_rad=0.4, drop_height_m=0.1, max_consecutive_successes=3)
    # success; plain step; drop (close to the goal, still no success); third success = the limit; timeout;
    # a physics error close to the goal; a detector that sees the cube off the palm at palm height
    distance = np.array([0.3, 0.9, 0.1, 0.39, 1.0, 0.2, 0.2])
    height = np.array([0.15, 0.15, 0.05, 0.15, 0.15, 0.15, 0.15])
    successes = np.array([0, 1, 1, 2, 0, 0, 0])
    since = np.array([5, 5, 5, 5, 100, 5, 5])
    invalid = np.array([False, False, False, False, False, True, False])
    off_palm = np.array([False, False, False, False, False, False, True])
    outcome = task.episode_outcome(distance, height, successes, since, 100, config, invalid, off_palm)
    np.testing.assert_array_equal(outcome.success, [True, False, False, True, False, False, False])
    np.testing.assert_array_equal(outcome.successes, [1, 1, 1, 3, 0, 0, 0])
    np.testing.assert_array_equal(outcome.since_success, [0, 5, 5, 0, 100, 5, 5])
    np.testing.assert_array_equal(outcome.dropped, [False, False, True, False, False, False, True])
    np.testing.assert_array_equal(outcome.terminated, [False, False, True, True, False, False, True])
    np.testing.assert_array_equal(outcome.timed_out, [False, False, False, False, True, False, False])
    assert [task.ENDED_BY[code] for code in outcome.ended_by] == ["", "", "drop", "max_successes", "timeout", "",
                                                                  "drop"]
    # seconds instead of steps, one episode as 0-d arrays: 7.99 s after the last success is not yet 8 s
    one = task.episode_outcome(1.0, 0.15, 2, 7.99, 8.0, config)
    assert not one.timed_out and not one.terminated and int(one.successes) == 2
    assert task.episode_outcome(1.0, 0.15, 2, 8.0, 8.0, config).timed_out
