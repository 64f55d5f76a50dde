"""Unit quaternions in MuJoCo's (w, x, y, z) order, vectorized over leading axes (..., 4)."""
from __future__ import annotations

import numpy as np


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b, then a), shapes (..., 4)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    product = np.empty(np.broadcast_shapes(a.shape, b.shape))
    product[..., 0] = aw * bw - ax * bx - ay * by - az * bz
    product[..., 1] = aw * bx + ax * bw + ay * bz - az * by
    product[..., 2] = aw * by - ax * bz + ay * bw + az * bx
    product[..., 3] = aw * bz + ax * by - ay * bx + az * bw
    return product


def conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse rotation of unit quaternions (..., 4)."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def normalize(q: np.ndarray) -> np.ndarray:
    """Scale quaternions (..., 4) to unit length."""
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def canonical(q: np.ndarray) -> np.ndarray:
    """Pick the sign with w >= 0: q and -q are the same rotation."""
    q = np.asarray(q, dtype=np.float64)
    return np.where(q[..., :1] < 0.0, -q, q)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle in [0, pi] that takes orientation a to b, shapes (..., 4) -> (...)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    dot = np.abs(np.einsum("...i,...i->...", a, b)) / np.sqrt(
        np.einsum("...i,...i->...", a, a) * np.einsum("...i,...i->...", b, b)
    )
    return 2.0 * np.arccos(np.minimum(dot, 1.0))


def from_axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) rotating by `angle` (...) about unit `axis` (..., 3)."""
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate((np.cos(half), np.sin(half) * np.asarray(axis, dtype=np.float64)), axis=-1)


def about_z(angle: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) for rotations by `angle` (...) about the z axis."""
    angle = np.asarray(angle, dtype=np.float64)
    axis = np.broadcast_to(np.array([0.0, 0.0, 1.0]), angle.shape + (3,))
    return from_axis_angle(axis, angle)


def uniform(rng: np.random.Generator, count: int) -> np.ndarray:
    """Uniformly random rotations (count, 4) (Shoemake's method)."""
    u1, u2, u3 = rng.random((3, count))
    return np.stack(
        (
            np.sqrt(u1) * np.cos(2 * np.pi * u3),
            np.sqrt(1 - u1) * np.sin(2 * np.pi * u2),
            np.sqrt(1 - u1) * np.cos(2 * np.pi * u2),
            np.sqrt(u1) * np.sin(2 * np.pi * u3),
        ),
        axis=-1,
    )


def uniform_near(rng: np.random.Generator, centres: np.ndarray, min_angle: float, max_angle: float) -> np.ndarray:
    """Random rotations (N, 4), each uniform over SO(3) restricted to those between `min_angle` and `max_angle`
    rad from its centre (N, 4): a uniformly random axis, and an angle from the Haar density of rotation angles,
    proportional to 1 - cos(angle), truncated to [min_angle, max_angle] (drawn by inverting its CDF)."""
    if not 0.0 <= min_angle < max_angle <= np.pi:
        raise ValueError(f"need 0 <= min_angle < max_angle <= pi, got {min_angle}, {max_angle}")
    centres = np.asarray(centres, dtype=np.float64)
    count = len(centres)
    axes = random_axis(rng, count)
    # the CDF is (angle - sin(angle)) / pi; it is increasing, so bisection inverts it to float precision
    targets = rng.uniform(min_angle - np.sin(min_angle), max_angle - np.sin(max_angle), count)
    low, high = np.full(count, min_angle), np.full(count, max_angle)
    for _ in range(60):
        middle = 0.5 * (low + high)
        below = middle - np.sin(middle) < targets
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return normalize(multiply(from_axis_angle(axes, 0.5 * (low + high)), centres))


def random_axis(rng: np.random.Generator, count: int) -> np.ndarray:
    """Uniformly random unit vectors (count, 3)."""
    vectors = rng.normal(size=(count, 3))
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4)."""
    w, x, y, z = np.moveaxis(normalize(q), -1, 0)
    return np.stack(
        (
            np.stack((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)), axis=-1),
            np.stack((2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)), axis=-1),
            np.stack((2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)), axis=-1),
        ),
        axis=-2,
    )
