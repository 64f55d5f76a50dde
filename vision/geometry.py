"""Pose errors, the sign-invariant orientation loss, and camera projection for drawing cube axes.

Camera parameters follow OpenCV's pinhole convention: `intrinsics` (3, 3) maps camera-frame points to pixels
(x right, y down, z forward; pixel (0, 0) is the centre of the top-left pixel), and `extrinsics` (4, 4) maps
points from the hand frame (the frame the cube pose is given in) to the camera frame.
"""
from __future__ import annotations

import numpy as np
import torch

from sim import rotations


def position_error_mm(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distance in millimetres between positions (..., 3) given in metres -> (...)."""
    return 1000.0 * np.linalg.norm(np.asarray(predicted, np.float64) - np.asarray(true, np.float64), axis=-1)


def rotation_error_deg(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Rotation angle in degrees [0, 180] between orientations (..., 4); q and -q are the same orientation."""
    return np.degrees(rotations.angle_between(predicted, true))


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) of unit quaternions (N, 4) w-x-y-z; q and -q give the same matrix."""
    w, x, y, z = quaternion.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def matrix_from_6d(columns: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) from two unnormalized 3-vectors (N, 6) by Gram-Schmidt (Zhou et al. 2019's
    continuous representation): the first vector gives the first column, the second fixes the second."""
    first = torch.nn.functional.normalize(columns[:, :3], dim=-1, eps=1e-8)
    second = columns[:, 3:] - (first * columns[:, 3:]).sum(dim=-1, keepdim=True) * first
    second = torch.nn.functional.normalize(second, dim=-1, eps=1e-8)
    return torch.stack((first, second, torch.linalg.cross(first, second)), dim=-1)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (N, 4) w-x-y-z with w >= 0 of rotation matrices (N, 3, 3).

    Each of the four textbook formulas divides by one of 4w, 4x, 4y, 4z; the one with the largest of those is
    used, which keeps the division well conditioned for every rotation.
    """
    m = matrix
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    squares = torch.stack((1 + trace, 1 + 2 * m[:, 0, 0] - trace, 1 + 2 * m[:, 1, 1] - trace,
                           1 + 2 * m[:, 2, 2] - trace), dim=-1)
    doubled = torch.sqrt(squares.clamp_min(1e-12))  # 2|w|, 2|x|, 2|y|, 2|z|
    candidates = torch.stack(
        (
            torch.stack((squares[:, 0], m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]), -1),
            torch.stack((m[:, 2, 1] - m[:, 1, 2], squares[:, 1], m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]), -1),
            torch.stack((m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], squares[:, 2], m[:, 1, 2] + m[:, 2, 1]), -1),
            torch.stack((m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1], squares[:, 3]), -1),
        ),
        dim=1,
    ) / (2 * doubled).unsqueeze(-1)
    best = torch.argmax(squares, dim=-1)
    quaternion = torch.gather(candidates, 1, best[:, None, None].expand(-1, 1, 4)).squeeze(1)
    quaternion = torch.nn.functional.normalize(quaternion, dim=-1)
    return torch.where(quaternion[:, :1] < 0, -quaternion, quaternion)


def orientation_loss(predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean of ||R_pred - R(q_true)||_F^2 / 4 = 1 - cos(angle) over predicted rotation matrices (N, 3, 3) and
    true unit quaternions (N, 4): zero for equal orientations, 2 for opposite ones, the same for q and -q."""
    return ((predicted - quaternion_to_matrix(true)) ** 2).sum(dim=(-2, -1)).mean() / 4.0


def position_loss(predicted: torch.Tensor, true: torch.Tensor, unit_m: float) -> torch.Tensor:
    """Mean squared position error (N, 3) measured in units of `unit_m` metres."""
    return (((predicted - true) / unit_m) ** 2).sum(dim=-1).mean()


def project_points(points: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hand-frame points (K, 3) -> pixel coordinates (K, 2) and camera-frame depth (K,)."""
    points = np.asarray(points, np.float64)
    camera = points @ np.asarray(extrinsics, np.float64)[:3, :3].T + np.asarray(extrinsics, np.float64)[:3, 3]
    depth = camera[:, 2]
    homogeneous = camera @ np.asarray(intrinsics, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels = homogeneous[:, :2] / homogeneous[:, 2:3]
    return pixels, depth


def cube_axes_points(position: np.ndarray, quaternion: np.ndarray, length: float) -> np.ndarray:
    """The cube centre and the tips of its x, y, z axes of `length` metres, as hand-frame points (4, 3)."""
    rotation = rotations.to_matrix(np.asarray(quaternion, np.float64))
    centre = np.asarray(position, np.float64)
    return np.vstack((centre, centre + length * rotation.T))


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics (3, 3) of a camera with vertical field of view `fovy_deg` (MuJoCo's cam_fovy)."""
    focal = 0.5 * height / np.tan(np.radians(fovy_deg) / 2.0)
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def extrinsics_from_mujoco(camera_position: np.ndarray, camera_rotation: np.ndarray) -> np.ndarray:
    """OpenCV camera-from-frame transform (4, 4) of a MuJoCo camera given in that frame.

    `camera_position` (3,) and `camera_rotation` (3, 3) are MuJoCo's cam_xpos / cam_xmat expressed in the frame
    of interest; a MuJoCo camera looks along its -z axis with y up, an OpenCV camera along +z with y down.
    """
    rotation_opencv = np.asarray(camera_rotation, np.float64).reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
    transform = np.eye(4)
    transform[:3, :3] = rotation_opencv.T
    transform[:3, 3] = -rotation_opencv.T @ np.asarray(camera_position, np.float64)
    return transform


def camera_matrices(camera_params: dict[str, np.ndarray], image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics (C, 3, 3) and extrinsics (C, 4, 4) from either form a renderer may return.

    Accepted: {"intrinsics", "extrinsics"} already in this module's convention, or MuJoCo's view of the cameras
    {"position" (C, 3) cam_xpos, "rotation" (C, 3, 3) cam_xmat, "focal_px" (C,)} for square images of
    `image_size`, in the same frame as the cube pose.
    """
    if {"intrinsics", "extrinsics"} <= set(camera_params):
        return np.asarray(camera_params["intrinsics"], np.float64), np.asarray(camera_params["extrinsics"], np.float64)
    if {"position", "rotation", "focal_px"} <= set(camera_params):
        positions = np.asarray(camera_params["position"], np.float64)
        rotations_ = np.asarray(camera_params["rotation"], np.float64).reshape(-1, 3, 3)
        focal = np.asarray(camera_params["focal_px"], np.float64).reshape(-1)
        centre = (image_size - 1) / 2.0
        intrinsics = np.zeros((len(focal), 3, 3))
        intrinsics[:, 0, 0] = intrinsics[:, 1, 1] = focal
        intrinsics[:, :2, 2] = centre
        intrinsics[:, 2, 2] = 1.0
        extrinsics = np.stack([extrinsics_from_mujoco(p, r) for p, r in zip(positions, rotations_)])
        return intrinsics, extrinsics
    raise ValueError(
        "camera parameters must hold 'intrinsics' and 'extrinsics', or MuJoCo's 'position', 'rotation' and "
        f"'focal_px'; got keys {sorted(camera_params)}"
    )
