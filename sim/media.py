"""Writing videos and images atomically (a temp file renamed into place), so a killed job leaves no half file."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import imageio.v3 as iio
import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


def _temporary_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    # mkstemp creates 0600; the finished file should get the permissions any new file would
    os.fchmod(handle, 0o666 & ~_UMASK)
    os.close(handle)
    return Path(name)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Encode RGB frames (H, W, 3) uint8 as H.264 MP4 at `fps`."""
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        stack = np.stack(list(frames))
        if stack.ndim != 4 or stack.shape[-1] != 3:
            raise ValueError(f"{path}: frames must be (H, W, 3) RGB, got a stack of shape {stack.shape}")
        iio.imwrite(temporary, stack, fps=fps, codec="libx264", macro_block_size=1, plugin="FFMPEG")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB image (H, W, 3) uint8 as PNG."""
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        iio.imwrite(temporary, image, extension=".png")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
