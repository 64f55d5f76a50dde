"""Checkpoint files: one torch zip of tensors and plain data, read with weights_only=True, checked by a digest.

A training checkpoint holds everything a run needs to continue (actor, critic, optimizer, normalizers, config,
counters, RNG states); an inference checkpoint only the actor (with its normalizer), the env spec and the config.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from sim.atomic import atomic_write
from sim.errors import CheckpointError

FORMAT = "inhand-policy"
VERSION = 1
KINDS = ("training", "inference")


def digest(payload: Any) -> str:
    """SHA-256 over a canonical encoding of nested dicts, lists, tensors and scalars."""
    hasher = hashlib.sha256()
    _feed(hasher, payload)
    return hasher.hexdigest()


def _feed(hasher: Any, value: Any) -> None:
    if isinstance(value, dict):
        hasher.update(b"{")
        for key in sorted(value, key=repr):
            _feed(hasher, key)
            _feed(hasher, value[key])
        hasher.update(b"}")
    elif isinstance(value, (list, tuple)):
        hasher.update(b"[")
        for item in value:
            _feed(hasher, item)
        hasher.update(b"]")
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        hasher.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        hasher.update(tensor.numpy().tobytes())
    else:
        hasher.update(repr((type(value).__name__, value)).encode())


def save(path: str | Path, kind: str, payload: dict[str, Any]) -> Path:
    """Write `payload` (tensors and plain data only) as a checkpoint of `kind`, atomically."""
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind {kind!r}: expected one of {KINDS}")
    content = {"format": FORMAT, "version": VERSION, "kind": kind, **payload}
    content["digest"] = digest(content)
    return atomic_write(path, lambda temp: torch.save(content, temp))


def load(path: str | Path, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """Read and verify a checkpoint (never unpickling arbitrary objects); CheckpointError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt or not a torch file): {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an {FORMAT} checkpoint")
    if content.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {content.get('version')!r}; this code reads {VERSION}")
    stored = content.pop("digest", None)
    if stored != digest(content):
        raise CheckpointError(f"{path}: contents do not match the stored digest: the file is corrupt")
    if content.get("kind") not in kinds:
        raise CheckpointError(f"{path}: a {content.get('kind')!r} checkpoint; this needs one of {kinds}")
    return content
