"""Error summaries and axis drawing against hand-computed pixels."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vision.evaluate import draw_axes, error_metrics, scaled_intrinsics, summarize
from vision.synthetic import render_synthetic_sample
from vision.geometry import project_points

INTRINSICS = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]])


def test_summary_statistics():
    summary = summarize(np.arange(1.0, 11.0))
    assert summary == {"mean": 5.5, "median": 5.5, "p90": pytest.approx(9.1), "max": 10.0}


def test_error_metrics_of_known_offsets():
    h = math.sqrt(0.5)
    predictions = {
        "position": np.array([[0.0, 0.0, 0.002], [0.0, 0.004, 0.0]]),
        "true_position": np.zeros((2, 3)),
        "quaternion": np.array([[1.0, 0.0, 0.0, 0.0], [h, 0.0, 0.0, h]]),
        "true_quaternion": np.array([[-1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]),
    }
    metrics = error_metrics(predictions)
    assert metrics["count"] == 2
    assert metrics["position_error_mm"]["mean"] == pytest.approx(3.0)
    assert metrics["rotation_error_deg"]["mean"] == pytest.approx(45.0)
    assert metrics["rotation_error_deg"]["max"] == pytest.approx(90.0)


def test_axes_are_drawn_where_they_project():
    image = np.zeros((100, 100, 3), np.uint8)
    # Cube 1 m in front of the camera, axes 0.1 m long: x tip at pixel (60, 50), y tip at (50, 60).
    draw_axes(image, np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 0.0]), INTRINSICS, np.eye(4), 0.1, 1)
    assert image[50, 56, 0] > 200 and image[50, 56, 1] < 100  # red along +x
    assert image[56, 50, 1] > 150 and image[56, 50, 0] < 100  # green along +y
    assert image[40, 40].sum() == 0


def test_axes_behind_the_camera_are_not_drawn():
    image = np.zeros((100, 100, 3), np.uint8)
    draw_axes(image, np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0, 0.0]), INTRINSICS, np.eye(4), 0.1, 1)
    assert image.sum() == 0


def test_scaled_intrinsics_keep_the_principal_point_centred():
    intrinsics = np.array([[50.0, 0.0, 49.5], [0.0, 50.0, 49.5], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(scaled_intrinsics(intrinsics, 2.0), [[100.0, 0, 99.5], [0, 100.0, 99.5], [0, 0, 1.0]])


def test_synthetic_renders_put_the_cube_where_the_cameras_project_it():
    images, position, _, cameras = render_synthetic_sample(5, image_size=64)
    for camera, image in enumerate(images):
        (centre,), _ = project_points(position[None], cameras["intrinsics"][camera], cameras["extrinsics"][camera])
        bright = np.argwhere(image.min(axis=-1) > 150)  # the light-grey cube face pixels
        assert np.linalg.norm(bright.mean(axis=0)[::-1] - centre) < 3.0
