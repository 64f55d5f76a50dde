"""Unmodeled effects and observation noise, each against its configured range and hand-computed cases."""
import numpy as np
import pytest

from sim import perturbations, rotations
from sim.config import Randomization
from sim.perturbations import EpisodeEffects


def test_episode_draws_lie_in_their_ranges():
    config = Randomization()
    effects = EpisodeEffects.draw(np.random.default_rng(0), 5000, 20, config)
    assert effects.delayed.mean() == pytest.approx(0.5, abs=0.01)
    assert effects.timing_rate.min() >= 1250 and effects.timing_rate.max() <= 10000
    assert effects.backlash_width.min() >= 0 and effects.backlash_width.max() <= 0.02
    assert effects.force_probability.min() >= 0.001 and effects.force_probability.max() <= 0.1
    assert effects.action_bias.std() == pytest.approx(0.015, rel=0.05)
    assert effects.object_position_bias.std() == pytest.approx(0.005, rel=0.05)
    angles = rotations.angle_between(effects.object_rotation_bias, np.array([1.0, 0, 0, 0]))
    # the angle of a rotation by N(0, s^2) about a random axis is |N(0, s^2)|: mean s * sqrt(2/pi)
    assert angles.mean() == pytest.approx(0.05 * np.sqrt(2 / np.pi), rel=0.05)


def test_disabled_effects_are_neutral():
    effects = EpisodeEffects.draw(np.random.default_rng(0), 10, 20, Randomization().disabled())
    assert not effects.delayed.any() and not effects.timing_rate.any() and not effects.backlash_width.any()
    assert not effects.force_probability.any() and not effects.action_bias.any()
    np.testing.assert_array_equal(effects.object_rotation_bias, np.tile([1.0, 0, 0, 0], (10, 1)))


def test_backlash_dead_band():
    width = np.array([0.2, 0.2, 0.0])
    previous = np.array([0.0, 0.0, 0.0])
    # inside the band nothing moves; beyond it the output trails the command by half the width
    np.testing.assert_allclose(perturbations.apply_backlash(previous, np.array([0.05, 0.3, 0.3]), width), [0.0, 0.2, 0.3])
    np.testing.assert_allclose(perturbations.apply_backlash(np.array([0.2]), np.array([-0.3]), np.array([0.2])), [-0.2])


def test_action_noise_statistics():
    config = Randomization()
    rng = np.random.default_rng(1)
    effects = EpisodeEffects.draw(rng, 20000, 20, config)
    effects.action_bias[:] = 0.1
    noisy = perturbations.noisy_actions(np.zeros((20000, 20)), effects, rng, config)
    assert noisy.mean() == pytest.approx(0.1, abs=0.002) and noisy.std() == pytest.approx(0.05, rel=0.03)
    # multiplicative noise: actions of 1 vary by 1 * 1.5% on top of the additive 5%
    effects.action_bias[:] = 0.0
    effects.action_additive_std[:] = 0.0
    scaled = perturbations.noisy_actions(np.full((20000, 20), 0.5), effects, rng, config)
    assert scaled.std() == pytest.approx(0.5 * 0.015, rel=0.03)
    # each env uses its own magnitude: envs with zero magnitudes get their actions back unchanged
    effects.action_multiplicative_std[:10000] = 0.0
    mixed = perturbations.noisy_actions(np.full((20000, 20), 0.5), effects, rng, config)
    assert (mixed[:10000] == 0.5).all() and mixed[10000:].std() == pytest.approx(0.5 * 0.015, rel=0.03)
    effects.action_bias[:] = 1.0
    assert perturbations.noisy_actions(np.ones((20000, 20)), effects, rng, config).max() <= 1.0


def test_control_periods_exponential_jitter():
    rng = np.random.default_rng(2)
    periods = perturbations.control_periods(0.08, np.full(100000, 2000.0), rng)
    assert periods.min() >= 0.08 and (periods - 0.08).mean() == pytest.approx(1 / 2000.0, rel=0.02)
    np.testing.assert_array_equal(perturbations.control_periods(0.08, np.zeros(3), rng), 0.08)


def test_random_forces_decay_and_scale_with_mass():
    config = Randomization()
    rng = np.random.default_rng(3)
    forces = np.ones((4, 3))
    quiet = EpisodeEffects.draw(rng, 4, 20, config)
    quiet.force_probability[:] = 0.0
    decayed = perturbations.update_forces(forces.copy(), quiet, np.ones(4), rng, config)
    np.testing.assert_allclose(decayed, 0.99)
    always = EpisodeEffects.draw(rng, 20000, 20, config)
    always.force_probability[:] = 1.0
    pushed = perturbations.update_forces(np.zeros((20000, 3)), always, np.full(20000, 0.1), rng, config)
    assert pushed.std() == pytest.approx(0.1, rel=0.03)  # 1 m/s^2 * 0.1 kg
    always.force_acceleration_std[:10000] = 3.0
    pushed = perturbations.update_forces(np.zeros((20000, 3)), always, np.full(20000, 0.1), rng, config)
    assert pushed[:10000].std() == pytest.approx(0.3, rel=0.03) and pushed[10000:].std() == pytest.approx(0.1, rel=0.03)


def test_marker_freezing_rate_and_duration():
    config = Randomization()
    rng = np.random.default_rng(4)
    frozen = np.zeros((2000, 5), dtype=np.int64)
    starts = 0
    for _ in range(200):
        before = frozen
        frozen = perturbations.freeze_markers(frozen, np.full(2000, 0.2), rng, config, 0.08)
        starts += int(((frozen == 13) & (before <= 1)).sum())
    # 0.2 freezes per second per marker while not frozen; 1 s = 13 steps of 80 ms
    free_marker_seconds = 2000 * 5 * 200 * 0.08 * (1 - 0.2 * 1.04 / (1 + 0.2 * 1.04))
    assert starts / free_marker_seconds == pytest.approx(0.2, rel=0.1)
    assert frozen.max() == 13


def test_frozen_markers_repeat_their_last_report():
    config = Randomization()
    rng = np.random.default_rng(5)
    true = np.ones((1, 5, 3))
    before = np.zeros((1, 5, 3))
    frozen = np.array([[3, 0, 0, 0, 0]])
    effects = EpisodeEffects.draw(rng, 1, 20, config)
    effects.fingertip_bias[:] = 0.0
    reported = perturbations.noisy_fingertips(true, before, frozen, effects, rng, config)
    np.testing.assert_array_equal(reported[0, 0], 0.0)
    assert np.abs(reported[0, 1:] - 1.0).max() < 0.01
