"""Pose errors, the sign-invariant orientation loss and camera projection against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vision.geometry import (
    camera_matrices,
    cube_axes_points,
    extrinsics_from_mujoco,
    intrinsics_from_fovy,
    matrix_from_6d,
    matrix_to_quaternion,
    orientation_loss,
    position_error_mm,
    position_loss,
    project_points,
    quaternion_to_matrix,
    rotation_error_deg,
)
from sim import rotations

H = math.sqrt(0.5)
IDENTITY = [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "a, b, degrees",
    [
        (IDENTITY, IDENTITY, 0.0),
        (IDENTITY, [-1.0, 0.0, 0.0, 0.0], 0.0),  # q and -q: the same orientation
        ([H, 0.0, 0.0, H], [-H, 0.0, 0.0, -H], 0.0),
        (IDENTITY, [H, 0.0, 0.0, H], 90.0),  # 90 deg about z
        (IDENTITY, [-H, 0.0, 0.0, -H], 90.0),
        (IDENTITY, [math.cos(math.pi / 6), 0.0, 0.0, math.sin(math.pi / 6)], 60.0),
        (IDENTITY, [0.0, 1.0, 0.0, 0.0], 180.0),  # half turn about x
        ([H, H, 0.0, 0.0], [H, 0.0, H, 0.0], 120.0),  # 90 about x vs 90 about y: cos(theta/2) = 1/2
    ],
)
def test_rotation_error_matches_hand_computed_angles(a, b, degrees):
    assert rotation_error_deg(np.array(a), np.array(b)) == pytest.approx(degrees, abs=1e-5)


def test_position_error_in_millimetres():
    assert position_error_mm(np.array([0.001, 0.002, 0.002]), np.zeros(3)) == pytest.approx(3.0)
    errors = position_error_mm(np.array([[0.0, 0.0, 0.01], [0.03, 0.04, 0.0]]), np.zeros((2, 3)))
    np.testing.assert_allclose(errors, [10.0, 50.0])


def test_orientation_loss_is_sign_invariant_and_one_minus_cos_of_the_angle():
    generator = torch.Generator().manual_seed(0)
    predicted = quaternion_to_matrix(torch.nn.functional.normalize(torch.randn(16, 4, generator=generator), dim=-1))
    true = torch.nn.functional.normalize(torch.randn(16, 4, generator=generator), dim=-1)
    assert float(orientation_loss(predicted, true)) == pytest.approx(float(orientation_loss(predicted, -true)))
    identity = torch.eye(3)[None]
    assert float(orientation_loss(identity, torch.tensor([[-1.0, 0.0, 0.0, 0.0]]))) == pytest.approx(0.0, abs=1e-6)
    # 90 deg about z: 1 - cos 90 = 1; 60 deg: 1 - 1/2; a half turn: 2
    assert float(orientation_loss(identity, torch.tensor([[H, 0.0, 0.0, H]]))) == pytest.approx(1.0, abs=1e-6)
    sixty = torch.tensor([[math.cos(math.pi / 6), 0.0, 0.0, math.sin(math.pi / 6)]])
    assert float(orientation_loss(identity, sixty)) == pytest.approx(0.5, abs=1e-6)
    assert float(orientation_loss(identity, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))) == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("quaternion", [IDENTITY, [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0],
                                        [0.0, H, H, 0.0], [H, 0.0, 0.0, H], [0.5, -0.5, 0.5, 0.5]])
def test_quaternion_matrix_round_trip_on_hand_built_rotations_including_half_turns(quaternion):
    matrix = quaternion_to_matrix(torch.tensor([quaternion]))
    np.testing.assert_allclose(matrix[0].numpy(), rotations.to_matrix(np.array(quaternion)), atol=1e-6)
    back = matrix_to_quaternion(matrix)[0].numpy()
    assert back[0] >= 0.0
    assert abs(float(np.dot(back, quaternion))) == pytest.approx(1.0, abs=1e-6)


def test_matrix_from_6d_is_gram_schmidt_on_the_two_columns():
    columns = torch.tensor([[2.0, 0.0, 0.0, 1.0, 3.0, 0.0]])  # x stays x; y keeps only its part orthogonal to x
    np.testing.assert_allclose(matrix_from_6d(columns)[0].numpy(), np.eye(3), atol=1e-6)
    generator = torch.Generator().manual_seed(1)
    matrices = matrix_from_6d(torch.randn(32, 6, generator=generator))
    np.testing.assert_allclose((matrices.transpose(1, 2) @ matrices).numpy(), np.tile(np.eye(3), (32, 1, 1)),
                               atol=1e-5)
    np.testing.assert_allclose(torch.linalg.det(matrices).numpy(), np.ones(32), atol=1e-5)
    back = quaternion_to_matrix(matrix_to_quaternion(matrices))
    np.testing.assert_allclose(back.numpy(), matrices.numpy(), atol=1e-5)


def test_position_loss_counts_squared_error_in_the_given_unit():
    predicted = torch.tensor([[0.01, 0.0, 0.0], [0.0, 0.02, 0.0]])
    assert float(position_loss(predicted, torch.zeros(2, 3), unit_m=0.01)) == pytest.approx((1.0 + 4.0) / 2)


def test_projection_of_points_in_front_of_an_opencv_camera():
    intrinsics = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])
    pixels, depth = project_points(np.array([[0.0, 0.0, 1.0], [0.1, -0.2, 2.0]]), intrinsics, np.eye(4))
    np.testing.assert_allclose(pixels, [[50.0, 40.0], [55.0, 30.0]])
    np.testing.assert_allclose(depth, [1.0, 2.0])


def test_mujoco_camera_looking_down_sees_world_x_right_and_world_y_up():
    # A MuJoCo camera with identity orientation looks along world -z; its image x is world x, image up is world y.
    extrinsics = extrinsics_from_mujoco(np.array([0.0, 0.0, 1.0]), np.eye(3))
    intrinsics = intrinsics_from_fovy(90.0, 101, 101)
    assert intrinsics[1, 1] == pytest.approx(50.5)
    points = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]])
    pixels, depth = project_points(points, intrinsics, extrinsics)
    np.testing.assert_allclose(depth, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(pixels, [[50.0, 50.0], [55.05, 50.0], [50.0, 44.95]])


def test_camera_matrices_accept_mujoco_form():
    params = {"position": np.array([[0.0, 0.0, 1.0]]), "rotation": np.eye(3)[None], "focal_px": np.array([80.0])}
    intrinsics, extrinsics = camera_matrices(params, 64)
    np.testing.assert_allclose(intrinsics[0], [[80.0, 0.0, 31.5], [0.0, 80.0, 31.5], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(extrinsics[0], extrinsics_from_mujoco(np.array([0.0, 0.0, 1.0]), np.eye(3)))
    with pytest.raises(ValueError, match="focal_px"):
        camera_matrices({"position": np.zeros((1, 3))}, 64)


def test_cube_axes_points_follow_the_rotation():
    quarter_turn_z = np.array([H, 0.0, 0.0, H])
    points = cube_axes_points(np.array([1.0, 2.0, 3.0]), quarter_turn_z, 0.5)
    np.testing.assert_allclose(points, [[1.0, 2.0, 3.0], [1.0, 2.5, 3.0], [0.5, 2.0, 3.0], [1.0, 2.0, 3.5]], atol=1e-12)
