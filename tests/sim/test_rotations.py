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
