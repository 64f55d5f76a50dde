"""Writing videos and images atomically, so a killed job leaves no half-written file."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from sim.atomic import atomic_write


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Encode RGB frames (H, W, 3) uint8 as H.264 MP4 at `fps`."""
    stack = np.stack(list(frames))
    if stack.ndim != 4 or stack.shape[-1] != 3:
        raise ValueError(f"{path}: frames must be (H, W, 3) RGB, got a stack of shape {stack.shape}")
    return atomic_write(
        path,
        lambda temp: iio.imwrite(temp, stack, fps=fps, codec="libx264", macro_block_size=1, plugin="FFMPEG"),
        suffix=".mp4",
    )


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB image (H, W, 3) uint8 as PNG."""
    return atomic_write(path, lambda temp: iio.imwrite(temp, image, extension=".png"), suffix=".png")
