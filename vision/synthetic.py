"""A cheap stand-in renderer: flat-shaded cube silhouettes with coloured axes seen by three pinhole cameras.

It has the signature the dataset writer expects from the real renderer, render_sample(seed) ->
(images (cameras, S, S, 3) uint8, position (3,), quaternion (4,), {"intrinsics", "extrinsics"}), and serves
tests, smoke runs of the whole pipeline, and CI where no EGL renderer is available.
"""
from __future__ import annotations

import cv2
import numpy as np

from sim import rotations
from vision.geometry import cube_axes_points, intrinsics_from_fovy, project_points

CUBE_CENTRE = np.array([0.0, 0.0, 0.05])
POSITION_RANGE_M = 0.03
CUBE_HALF_SIZE_M = 0.0285
CAMERA_DISTANCE_M = 0.5
CAMERA_FOVY_DEG = 20.0
CAMERA_AZIMUTHS_DEG = (-60.0, 0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 30.0)
CAMERA_ELEVATION_DEG = 35.0


def look_at_extrinsics(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """OpenCV camera-from-world transform (4, 4) of a camera at `eye` looking at `target`."""
    forward = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack((right, down, forward))
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = -rotation @ np.asarray(eye, np.float64)
    return transform


def synthetic_cameras(camera_count: int, image_size: int) -> dict[str, np.ndarray]:
    """Fixed cameras on a ring around CUBE_CENTRE: intrinsics (cameras, 3, 3), extrinsics (cameras, 4, 4)."""
    if not 1 <= camera_count <= len(CAMERA_AZIMUTHS_DEG):
        raise ValueError(f"synthetic cameras: camera_count must be in [1, {len(CAMERA_AZIMUTHS_DEG)}]")
    elevation = np.radians(CAMERA_ELEVATION_DEG)
    extrinsics = []
    for azimuth in np.radians(CAMERA_AZIMUTHS_DEG[:camera_count]):
        horizontal = np.cos(elevation)
        direction = np.array([np.cos(azimuth) * horizontal, np.sin(azimuth) * horizontal, np.sin(elevation)])
        extrinsics.append(look_at_extrinsics(CUBE_CENTRE + CAMERA_DISTANCE_M * direction, CUBE_CENTRE))
    intrinsics = np.repeat(intrinsics_from_fovy(CAMERA_FOVY_DEG, image_size, image_size)[None], camera_count, axis=0)
    return {"intrinsics": intrinsics, "extrinsics": np.stack(extrinsics)}


def render_synthetic_sample(
    seed: int, image_size: int = 64, camera_count: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A random cube pose drawn by every camera; the background grey level and pixel noise vary with the seed."""
    rng = np.random.default_rng(seed)
    position = CUBE_CENTRE + rng.uniform(-POSITION_RANGE_M, POSITION_RANGE_M, size=3)
    quaternion = rotations.canonical(rotations.uniform(rng, 1)[0])
    cameras = synthetic_cameras(camera_count, image_size)
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64) * CUBE_HALF_SIZE_M
    corners = corners @ rotations.to_matrix(quaternion).T + position
    axes = cube_axes_points(position, quaternion, 1.6 * CUBE_HALF_SIZE_M)
    images = np.empty((camera_count, image_size, image_size, 3), np.uint8)
    # Drawing happens at 4x with a sub-pixel shift so edges carry position information below one pixel.
    shift, scale = 2, 4
    for camera in range(camera_count):
        intrinsics, extrinsics = cameras["intrinsics"][camera], cameras["extrinsics"][camera]
        canvas = np.full((image_size * scale, image_size * scale, 3), rng.integers(40, 120), np.uint8)
        corner_pixels, _ = project_points(corners, intrinsics, extrinsics)
        hull = cv2.convexHull(np.round(corner_pixels * scale * (1 << shift)).astype(np.int32))
        cv2.fillConvexPoly(canvas, hull, (200, 200, 200), lineType=cv2.LINE_AA, shift=shift)
        axis_pixels, _ = project_points(axes, intrinsics, extrinsics)
        fixed = np.round(axis_pixels * scale * (1 << shift)).astype(np.int32)
        for tip, colour in zip(fixed[1:], ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
            cv2.line(canvas, tuple(fixed[0]), tuple(tip), colour, scale * 2, cv2.LINE_AA, shift)
        image = cv2.resize(canvas, (image_size, image_size), interpolation=cv2.INTER_AREA).astype(np.int16)
        image += rng.integers(-6, 7, size=image.shape, dtype=np.int16)
        images[camera] = np.clip(image, 0, 255).astype(np.uint8)
    return images, position, quaternion, cameras
