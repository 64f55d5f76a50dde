"""The compute a process uses: threads (one per core it may run on, within a hard limit) and the torch device."""
from __future__ import annotations

import os

from typing import Any

import numpy as np

from sim.config_loading import ConfigError

MAX_THREADS = 64


def default_num_threads() -> int:
    """The cores this process may run on (its CPU affinity), at most MAX_THREADS."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_THREADS))


def check_num_threads(num_threads: object) -> int:
    """`num_threads` as an int; a ValueError naming the accepted range for anything outside [1, MAX_THREADS]."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or not (
        1 <= num_threads <= MAX_THREADS
    ):
        raise ValueError(f"num_threads must be an integer in [1, {MAX_THREADS}], got {num_threads!r}")
    return int(num_threads)


DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str, key: str) -> Any:
    """The torch.device for a config value of `key`: cpu, cuda, or auto (CUDA when torch sees one, else CPU)."""
    import torch

    if name not in DEVICES:
        raise ConfigError(f"key '{key}': {name!r} is not a device; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"key '{key}': 'cuda', but torch {torch.__version__} sees no CUDA device here; "
                          "use auto or cpu")
    return torch.device(name)
