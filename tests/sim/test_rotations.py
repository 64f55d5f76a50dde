"""Quaternion helpers and the task's rotation distance against hand-computed values."""
import numpy as np
import pytest

from sim import rotations

SQRT_HALF = np.sqrt(0.5)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([1, 0, 0, 0], [1, 0, 0, 0], 0.0),
        ([1, 0, 0, 0], [-1, 0, 0, 0], 0.0),  # q and -q are the same orientation
        ([1, 0, 0, 0], [SQRT_HALF, 0, 0, SQRT_HALF], np.pi / 2),  # 90 deg about z
        ([1, 0, 0, 0], [-SQRT_HALF, 0, 0, -SQRT_HALF], np.pi / 2),
        ([1, 0, 0, 0], [0, 1, 0, 0], np.pi),  # 180 deg about x
        ([SQRT_HALF, SQRT_HALF, 0, 0], [SQRT_HALF, -SQRT_HALF, 0, 0], np.pi),  # +90 vs -90 about x
        ([np.cos(0.1), 0, np.sin(0.1), 0], [np.cos(0.3), 0, np.sin(0.3), 0], 0.4),  # 0.2 rad vs 0.6 rad about y
    ],
)
def test_angle_between(a, b, expected):
    assert rotations.angle_between(np.array(a, float), np.array(b, float)) == pytest.approx(expected, abs=1e-7)


def test_multiply_composes_rotations():
    quarter_z = rotations.about_z(np.pi / 2)
    half_z = rotations.multiply(quarter_z, quarter_z)
    np.testing.assert_allclose(half_z, [0, 0, 0, 1], atol=1e-12)
    x_axis_turned = rotations.to_matrix(quarter_z) @ np.array([1.0, 0, 0])
    np.testing.assert_allclose(x_axis_turned, [0, 1, 0], atol=1e-12)


def test_conjugate_undoes_a_rotation():
    q = rotations.uniform(np.random.default_rng(0), 50)
    identity = rotations.multiply(q, rotations.conjugate(q))
    np.testing.assert_allclose(rotations.canonical(identity), np.tile([1.0, 0, 0, 0], (50, 1)), atol=1e-12)


def test_uniform_rotations_are_unit_and_spread():
    q = rotations.uniform(np.random.default_rng(1), 20000)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    # for uniform rotations the angle from identity has mean pi/2 + 2/pi
    angles = rotations.angle_between(q, np.array([1.0, 0, 0, 0]))
    assert angles.mean() == pytest.approx(np.pi / 2 + 2 / np.pi, abs=0.02)


def _truncated_haar_mean_angle(a: float, b: float) -> float:
    # the Haar density of rotation angles is (1 - cos t) / pi; integrals: t - sin t and t^2/2 - cos t - t sin t
    mass = (b - np.sin(b)) - (a - np.sin(a))
    moment = (b**2 / 2 - np.cos(b) - b * np.sin(b)) - (a**2 / 2 - np.cos(a) - a * np.sin(a))
    return moment / mass


@pytest.mark.parametrize("low, high", [(0.4, 1.0), (0.4, np.pi), (1.5, 2.0)])
def test_uniform_near_keeps_the_haar_angle_density_within_the_band(low, high):
    rng = np.random.default_rng(3)
    centres = rotations.uniform(rng, 20000)
    near = rotations.uniform_near(rng, centres, low, high)
    np.testing.assert_allclose(np.linalg.norm(near, axis=1), 1.0, atol=1e-12)
    angles = rotations.angle_between(near, centres)
    assert angles.min() >= low - 1e-9 and angles.max() <= high + 1e-9
    assert angles.mean() == pytest.approx(_truncated_haar_mean_angle(low, high), abs=0.01)
    # the axes of the relative rotations point every way: their mean vector is near zero
    relative = rotations.multiply(near, rotations.conjugate(centres))
    axes = relative[:, 1:] * np.sign(relative[:, :1])
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    assert np.abs(axes.mean(axis=0)).max() < 0.03


def test_uniform_near_over_the_whole_band_matches_uniform_rotations():
    # [0, pi] is no restriction: the mean angle is the uniform one, pi/2 + 2/pi
    rng = np.random.default_rng(4)
    angles = rotations.angle_between(rotations.uniform_near(rng, rotations.uniform(rng, 20000), 0.0, np.pi),
                                     np.array([1.0, 0, 0, 0]))
    assert angles.mean() == pytest.approx(np.pi / 2 + 2 / np.pi, abs=0.02)


def test_uniform_near_refuses_an_empty_band():
    with pytest.raises(ValueError, match="min_angle < max_angle"):
        rotations.uniform_near(np.random.default_rng(0), np.array([[1.0, 0, 0, 0]]), 1.0, 1.0)
