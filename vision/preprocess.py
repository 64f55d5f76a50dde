"""The one preprocessing path from camera images to network input, shared by training, evaluation and the node."""
from __future__ import annotations

import cv2
import numpy as np
import torch

# Pixels map from [0, 255] to roughly [-2, 2]: (value / 255 - PIXEL_MEAN) / PIXEL_STD.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.25


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 images (..., H, W, 3) to (..., size, size, 3); area filter when shrinking."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images shaped (..., H, W, 3), got {images.dtype} {images.shape}")
    height, width = images.shape[-3:-1]
    if (height, width) == (size, size):
        return images
    interpolation = cv2.INTER_AREA if size < min(height, width) else cv2.INTER_LINEAR
    flat = images.reshape(-1, height, width, 3)
    resized = np.stack([cv2.resize(image, (size, size), interpolation=interpolation) for image in flat])
    return resized.reshape(images.shape[:-3] + (size, size, 3))


def center_crop(images: np.ndarray, fraction: float) -> np.ndarray:
    """The centred square (..., S, S, 3) of images (..., H, W, 3) with S = round(fraction * min(H, W))."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"crop fraction must be in (0, 1], got {fraction}")
    height, width = images.shape[-3:-1]
    side = max(1, int(round(fraction * min(height, width))))
    top, left = (height - side) // 2, (width - side) // 2
    return images[..., top : top + side, left : left + side, :]


def normalize_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (..., H, W, 3) -> float32 network input of the same shape."""
    return (images.to(torch.float32) / 255.0 - PIXEL_MEAN) / PIXEL_STD


def preprocess(images: np.ndarray, size: int, camera_count: int = 3, crop: float = 1.0) -> torch.Tensor:
    """uint8 images (cameras, H, W, 3) or (N, cameras, H, W, 3) -> float32 tensor (N, cameras, size, size, 3).

    `crop` keeps the centred square of that fraction of each image before resizing (the cameras aim at the palm).
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[None]
    if images.ndim != 5 or images.shape[1] != camera_count or images.shape[-1] != 3:
        raise ValueError(
            f"expected images shaped ({camera_count}, H, W, 3) or (N, {camera_count}, H, W, 3), got {images.shape}"
        )
    return normalize_pixels(torch.from_numpy(np.ascontiguousarray(resize_images(center_crop(images, crop), size))))
