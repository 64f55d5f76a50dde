"""Pose-estimator files written before they joined sim.checkpoint's format, converted once into it.

Such a file is a bare torch dict: "model" and "config", with "kind" training or inference (none: inference).
A training file's metrics history then lived only in the run folder's metrics.jsonl, as one row per split
({"split", "step", values...}); the converted file carries it as the format's metrics table.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim import checkpoint
from sim.errors import CheckpointError
from sim.metrics_log import METRICS_NAME, pack_rows
from vision.inference import config_from_checkpoint, model_from_checkpoint
from vision.train import metrics_row

LEGACY_KINDS = {"training": "pose_training", "inference": "pose_inference"}


def legacy_metrics_rows(path: Path, last_step: int) -> list[dict[str, Any]]:
    """The rows of an old run's metrics.jsonl up to `last_step` (later ones were lost with the run), as
    metrics rows of today's layout; none when the file is missing."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            split, step = record.pop("split"), record.pop("step")
            if step <= last_step:
                rows.append(metrics_row(split, step, record))
    return rows


def convert_legacy_pose(source: str | Path, out: str | Path) -> str:
    """Write the old pose-estimator file `source` as a checkpoint at `out` (atomically); returns its new kind."""
    source = Path(source)
    content = checkpoint.read(source)
    if not checkpoint.is_legacy_pose(content):
        if isinstance(content, dict) and content.get("format") == checkpoint.FORMAT:
            raise CheckpointError(f"{source}: already an {checkpoint.FORMAT} checkpoint "
                                  f"({content.get('kind')!r}); nothing to convert")
        raise CheckpointError(f"{source}: not a pose-estimator file from before the {checkpoint.FORMAT} format "
                              "(a torch dict with 'model' and 'config' entries)")
    legacy_kind = content.pop("kind", "inference")
    if legacy_kind not in LEGACY_KINDS:
        raise CheckpointError(f"{source}: kind {legacy_kind!r}; an old pose-estimator file is one of "
                              f"{tuple(LEGACY_KINDS)}")
    config_from_checkpoint(content, str(source))  # a config this code cannot read is refused before any write
    kind = LEGACY_KINDS[legacy_kind]
    if kind == "pose_training":
        content["metrics"] = pack_rows(legacy_metrics_rows(source.parent / METRICS_NAME, int(content["step"])))
    checkpoint.save(out, kind, content)
    model_from_checkpoint(out)  # the weights must load into the network the config describes
    return kind
