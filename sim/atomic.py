"""Atomic file writes: write a temp file beside the target, fsync it, rename it over the target.

A job killed mid-write leaves the previous file (or none), never a half-written one.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = ".tmp") -> Path:
    """Call write(temp_path) on a temp file beside `path`, then rename it over `path`.

    `suffix` ends the temp name, for writers that pick a format from the extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    # mkstemp creates 0600; the finished file gets the permissions any new file would
    os.fchmod(handle, 0o666 & ~_UMASK)
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
