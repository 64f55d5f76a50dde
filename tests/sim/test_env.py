"""The gymnasium env and the batch behind it: checker, determinism, episode ends, rewards, stress."""
import logging

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim import rotations
from sim.batch import OBSERVATION_SIZES, ReorientBatch, critic_goal_angle
from sim.config import EnvConfig
from sim.config_loading import from_mapping

HOLD = np.full((1, 20), 5)  # the middle bin: action 0, targets stay where the joints are


@pytest.mark.parametrize("env_id", sorted(sim.VARIANTS))
def test_env_checker_passes(env_id):
    env = gymnasium.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_observation_sizes_are_derived_from_blocks():
    assert OBSERVATION_SIZES == {"policy": 15 + 3 + 4, "critic": 22 + 4 + 4 + 24 + 24 + 3 + 3}
    env = gymnasium.make("inhand/Reorient-v0")
    observation, _ = env.reset(seed=0)
    assert observation["policy"].shape == (22,) and observation["critic"].shape == (84,)
    assert env.unwrapped.model.nu == 20 and env.unwrapped.data.qpos.shape == (31,)


def rollout(env, seed: int, steps: int) -> list[np.ndarray]:
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [observation["policy"], observation["critic"]]
    for _ in range(steps):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trace += [observation["policy"], observation["critic"], np.array([reward])]
        if terminated or truncated:
            observation, _ = env.reset()
    return trace


def test_same_seed_same_trajectory_different_seed_different_model():
    first, second = gymnasium.make("inhand/Reorient-v0"), gymnasium.make("inhand/Reorient-v0")
    for a, b in zip(rollout(first, 7, 40), rollout(second, 7, 40)):
        np.testing.assert_array_equal(a, b)
    masses = first.unwrapped.model.body_mass.copy()
    second.reset(seed=8)
    assert not np.allclose(masses, second.unwrapped.model.body_mass)


def nominal_batch(**task_options) -> ReorientBatch:
    config = EnvConfig().with_options(randomize=False, **task_options)
    batch = ReorientBatch(config, 1, seed=0, autoreset=False)
    batch.reset(0)
    return batch


def cube_quaternion(batch: ReorientBatch) -> np.ndarray:
    start = batch.index.cube_qpos + 3
    return batch.qpos[0, start : start + 4].copy()


def test_reward_of_a_step_equals_hand_computed_distance_change():
    batch = nominal_batch()
    goal = batch.goal[0].copy()
    before = rotations.angle_between(cube_quaternion(batch), goal)
    assert batch.distance[0] == pytest.approx(before)
    result = batch.step(np.random.default_rng(0).integers(0, 11, (1, 20)))
    after = rotations.angle_between(cube_quaternion(batch), goal)
    assert not result.info["is_success"][0]
    assert result.reward[0] == pytest.approx(before - after, abs=1e-6)


def test_success_counts_pays_bonus_and_draws_a_new_goal():
    batch = nominal_batch()
    quaternion = cube_quaternion(batch)
    # a goal 0.3 rad from the cube (about z), then the sign-flipped copy: both are within 0.4 rad
    batch.goal[0] = -rotations.multiply(rotations.about_z(0.3), quaternion)
    batch.distance[0] = rotations.angle_between(quaternion, batch.goal[0])
    assert batch.distance[0] == pytest.approx(0.3)
    old_goal = batch.goal[0].copy()
    result = batch.step(HOLD)
    after = rotations.angle_between(cube_quaternion(batch), old_goal)
    assert result.info["is_success"][0] and result.info["consecutive_successes"][0] == 1
    assert result.reward[0] == pytest.approx(0.3 - after + 5.0, abs=1e-6)
    assert rotations.angle_between(batch.goal[0], cube_quaternion(batch)) >= 0.4
    assert not (result.terminated[0] or result.truncated[0])


def test_the_goal_angle_read_from_the_critic_observation_is_the_distance_the_task_uses():
    batch = nominal_batch(goal_mode="xyz")
    assert critic_goal_angle(batch.critic_observation())[0] == pytest.approx(batch.distance[0], abs=1e-6)
    quaternion = cube_quaternion(batch)
    # a goal 1.3 rad about z away: the relative rotation's angle, whichever sign the quaternion has
    batch.goal[0] = -rotations.multiply(rotations.about_z(1.3), quaternion)
    assert critic_goal_angle(batch.critic_observation())[0] == pytest.approx(1.3, abs=1e-6)


def test_reaching_the_success_limit_terminates():
    batch = nominal_batch(max_consecutive_successes=1)
    batch.goal[0] = cube_quaternion(batch)
    result = batch.step(HOLD)
    assert result.terminated[0] and not result.truncated[0]


def test_drop_terminates_with_penalty():
    batch = nominal_batch()
    batch.datas[0].qpos[batch.index.cube_qpos : batch.index.cube_qpos + 3] = [1.0, 0.6, 0.05]
    result = batch.step(HOLD)
    assert result.terminated[0] and result.info["dropped"][0]
    assert result.reward[0] < -19.0


def test_timeout_truncates_after_the_configured_time():
    batch = nominal_batch(timeout_s=0.4)  # 5 control steps of 80 ms
    for step in range(5):
        result = batch.step(HOLD)
        assert result.truncated[0] == (step == 4)
    assert result.info["timed_out"][0] and not result.terminated[0]


def test_autoreset_returns_final_critic_and_fresh_episode():
    config = EnvConfig().with_options(timeout_s=0.16)
    batch = ReorientBatch(config, 3, seed=1, autoreset=True)
    batch.reset(1)
    batch.step(np.full((3, 20), 5))
    before_reset = batch.critic_observation()
    result = batch.step(np.full((3, 20), 5))
    assert result.info["episode_done"].all() and (result.info["episode_length"] == 2).all()
    assert (batch.episode_length == 0).all()
    assert not np.allclose(result.info["final_critic"], result.observation["critic"])
    # the final observation is the state reached by the step, before the reset: the fingertips of a hand holding
    # still moved less than 2 cm in one 80 ms step
    positions = slice(0, 15)
    assert np.abs(result.info["final_critic"][:, positions] - before_reset[:, positions]).max() < 0.02


def maximal_config() -> EnvConfig:
    randomization = {
        "physics": {"mass_scale": [0.5, 1.5], "damping_scale": [0.3, 3.0], "actuator_gain_scale": [0.75, 1.5]},
        "action_delay": {"probability": 1.0},
        "backlash": {"max_width_rad": 0.05},
        "random_forces": {"probability_range": [0.1, 0.1], "acceleration_std": 2.0, "decay": 0.99},
        "control_timing": {"rate_range": [1250.0, 1250.0]},
        "marker_freeze": {"rate_hz": 2.0},
    }
    return from_mapping(EnvConfig, {"randomization": randomization})


def test_thousand_random_steps_at_maximum_randomization_stay_finite_and_warning_free(caplog):
    batch = ReorientBatch(maximal_config(), 4, seed=3, autoreset=True)
    observation = batch.reset(3)
    rng = np.random.default_rng(3)
    reported_warnings = 0
    with caplog.at_level(logging.WARNING, logger="sim.batch"):
        for _ in range(250):
            result = batch.step(rng.integers(0, 11, (4, 20)))
            for name in ("policy", "critic"):
                assert np.isfinite(result.observation[name]).all()
            assert np.isfinite(result.reward).all()
            reported_warnings += int(result.info["mujoco_warnings"].sum())
    totals = sum(int(data.warning.number.sum()) for data in batch.datas)
    assert reported_warnings == 0 and totals == 0 and not caplog.records
    assert observation["policy"].shape == (4, 22)


def test_a_mujoco_warning_is_reported_and_ends_the_episode(caplog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warnings to MUJOCO_LOG.TXT in the working directory
    batch = nominal_batch()
    batch.datas[0].qvel[batch.index.cube_dof] = 1e40  # unstable on purpose: MuJoCo resets the data
    with caplog.at_level(logging.WARNING, logger="sim.batch"):
        result = batch.step(HOLD)
    assert result.info["physics_error"][0] and result.truncated[0]
    assert result.info["mujoco_warnings"][0] >= 1
    assert any("mjWARN_BAD" in record.getMessage() for record in caplog.records)


def test_bad_actions_are_refused():
    batch = nominal_batch()
    with pytest.raises(ValueError, match=r"shape \(1, 20\)"):
        batch.step(np.zeros((1, 19), int))
    with pytest.raises(ValueError, match=r"integer bins in \[0, 10\]"):
        batch.step(np.full((1, 20), 11))
    continuous = nominal_batch(action_type="continuous")
    with pytest.raises(ValueError, match="finite"):
        continuous.step(np.full((1, 20), np.nan))


def test_render_returns_an_rgb_frame():
    env = gymnasium.make("inhand/Reorient-v0", render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()


def threaded_trace(num_threads: int, steps: int = 200) -> list[np.ndarray]:
    batch = ReorientBatch(EnvConfig(), 6, seed=11, autoreset=True, num_threads=num_threads)
    rng = np.random.default_rng(11)
    observation = batch.reset(11)
    trace = [observation["policy"], observation["critic"]]
    for _ in range(steps):
        result = batch.step(rng.integers(0, 11, (6, 20)))
        trace += [result.observation["policy"], result.observation["critic"], result.reward,
                  result.terminated, result.truncated, result.info["final_critic"]]
    batch.close()
    return trace


def test_physics_threads_give_bit_identical_episodes_at_full_randomization():
    one, two = threaded_trace(1), threaded_trace(2)
    ends = sum(int(step.sum()) for step in one[5::6]) + sum(int(step.sum()) for step in one[6::6])
    assert ends > 0  # the 200 steps cross episode ends, so resets are covered too
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def cube_speeds(batch: ReorientBatch) -> tuple[np.ndarray, np.ndarray]:
    velocity = batch.qvel[:, batch.index.cube_dof : batch.index.cube_dof + 6]
    return np.linalg.norm(velocity[:, :3], axis=1), np.linalg.norm(velocity[:, 3:], axis=1)


def test_every_episode_starts_with_the_cube_at_rest_on_the_palm():
    # without the rest check (any speed passes) a cube dropped in a random orientation often still tumbles after
    # the 3 settling steps; with it, every cube of the batch starts below both rest speeds
    tumbling = ReorientBatch(EnvConfig().with_options(rest_speed_m_s=10.0, rest_angular_speed_rad_s=100.0), 32,
                             seed=5, autoreset=False)
    tumbling.reset(5)
    linear, angular = cube_speeds(tumbling)
    assert (linear > 0.02).sum() >= 3 and (angular > 0.5).sum() >= 3
    batch = ReorientBatch(EnvConfig(), 32, seed=5, autoreset=False)
    batch.reset(5)
    linear, angular = cube_speeds(batch)
    assert linear.max() <= 0.02 and angular.max() <= 0.5
    cube_height = batch.qpos[:, batch.index.cube_qpos + 2]
    assert cube_height.min() >= batch.config.task.drop_height_m
    # some cubes needed more than the 3 settling steps; on average far fewer than the 15 allowed per placement
    settled = batch.physics_steps / (10 * 32)
    assert 3 < settled < 15
    for batch_ in (tumbling, batch):
        batch_.close()


def test_a_cube_that_never_comes_to_rest_is_an_error_naming_the_settling_keys():
    config = EnvConfig().with_options(rest_speed_m_s=0.0, max_reset_attempts=2)
    with pytest.raises(RuntimeError, match=r"envs \[0\]: the cube fell off the palm or was still moving after "
                                           r"task.max_settle_steps in all 2 reset attempts; check .*rest_speed_m_s"):
        ReorientBatch(config, 1, seed=0, autoreset=False).reset(0)


@pytest.mark.parametrize("bad", [0, -1, 65, 2.0, True])
def test_a_bad_thread_count_is_refused_with_the_range(bad):
    with pytest.raises(ValueError, match=r"num_threads must be an integer in \[1, 64\]"):
        ReorientBatch(EnvConfig(), 2, seed=0, num_threads=bad)


def test_reading_the_policy_observation_draws_nothing_and_advancing_the_noise_does():
    batch = ReorientBatch(EnvConfig(), 2, seed=4)
    batch.reset(4)
    state = batch.rng.bit_generator.state
    first = batch.policy_observation()
    np.testing.assert_array_equal(batch.policy_observation(), first)
    assert batch.rng.bit_generator.state == state
    batch.advance_observation_noise()
    assert batch.rng.bit_generator.state != state
    assert not np.array_equal(batch.policy_observation(), first)  # fresh per-step noise on an unmoved state
