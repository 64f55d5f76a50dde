"""How many threads a process should use: one per core it may run on, within a hard limit."""
from __future__ import annotations

import os

import numpy as np

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
