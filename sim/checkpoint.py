"""The one checkpoint format of every artifact: a policy, a policy's training state, a pose estimator and its
training state. A file is one torch zip of tensors and plain data, read with weights_only=True (never unpickling
arbitrary objects), stamped with format, version and kind, and checked against a digest of its contents.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from sim.atomic import atomic_write
from sim.errors import CheckpointError

# The name predates the pose estimator joining the format; it stays so that every policy and training file
# written so far (a running campaign's too) reads unchanged.
FORMAT = "inhand-policy"
VERSION = 1
# kind -> what a file of that kind holds, for error messages
KINDS = {
    "training": "policy training state",
    "inference": "policy",
    "pose_training": "pose-estimator training state",
    "pose_inference": "pose estimator",
    "palm_detector": "drop detector (`inhand vision palm-train`)",
}
POLICY_KINDS = ("training", "inference")
POSE_KINDS = ("pose_training", "pose_inference")
CONVERT_HINT = "convert it once with `inhand vision convert {path} --out NEW.pt`"


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
        raise ValueError(f"checkpoint kind {kind!r}: expected one of {tuple(KINDS)}")
    content = {"format": FORMAT, "version": VERSION, "kind": kind, **payload}
    content["digest"] = digest(content)
    return atomic_write(path, lambda temp: torch.save(content, temp))


def read(path: str | Path) -> Any:
    """The raw contents of a torch file, loaded with weights_only=True; CheckpointError if it is none."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt or not a torch file): {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error


def is_legacy_pose(content: Any) -> bool:
    """Whether `content` is a pose-estimator file from before this format: a bare dict with model and config."""
    return isinstance(content, dict) and "format" not in content and {"model", "config"} <= set(content)


def load(path: str | Path, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Read and verify a checkpoint of one of `kinds`; CheckpointError naming what is wrong on any problem."""
    content = read(path)
    if is_legacy_pose(content):
        raise CheckpointError(f"{path}: a pose-estimator file from before the {FORMAT} checkpoint format; "
                              + CONVERT_HINT.format(path=path))
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an {FORMAT} checkpoint")
    if content.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {content.get('version')!r}; this code reads {VERSION}")
    stored = content.pop("digest", None)
    if stored != digest(content):
        raise CheckpointError(f"{path}: contents do not match the stored digest: the file is corrupt")
    kind = content.get("kind")
    if kind not in kinds:
        wanted = " or a ".join(f"{KINDS[name]} ({name!r})" for name in kinds)
        raise CheckpointError(f"{path}: holds a {KINDS.get(kind, 'checkpoint of unknown kind')} ({kind!r}); "
                              f"this needs a {wanted}")
    return content
