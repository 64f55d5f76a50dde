"""Training metrics: one JSON line per update, TensorBoard scalars, and a PNG of the learning curves."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sim.atomic import atomic_write

# (metric key, panel title, x axis) of the PNG; x is env steps or hours of training time (train_seconds)
CURVES = (
    ("recent_successes_mean", "consecutive successes (recent episodes)", "env_steps"),
    ("recent_successes_mean", "consecutive successes vs wall time", "train_seconds"),
    ("recent_return_mean", "episode return (recent)", "env_steps"),
    ("recent_drop_rate", "drop rate (recent)", "env_steps"),
    ("policy_loss", "policy loss", "env_steps"),
    ("value_loss", "value loss (normalized)", "env_steps"),
    ("entropy", "entropy", "env_steps"),
    ("approx_kl", "approx KL", "env_steps"),
    ("samples_per_s", "samples / s", "env_steps"),
    ("recent_length_mean", "episode length (recent, steps)", "env_steps"),
    # ADR runs only: a line per boundary (0 = nominal, 1 = its hard limit), and the summed log widths
    ("adr/*", "ADR boundaries: fraction of the way to the limit", "env_steps"),
    ("adr_entropy", "ADR entropy (nats per parameter)", "env_steps"),
)
X_AXES = {"env_steps": ("env steps", 1.0), "train_seconds": ("training hours", 1.0 / 3600.0)}
# keys of a metrics row that are not TensorBoard scalars
NOT_SCALARS = ("update", "env_steps")
INTEGER_KEYS = ("update", "env_steps", "episodes", "episodes_finished")


def pack_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics rows as one float64 table (rows, keys), NaN where a row lacks a value: a checkpoint stays small."""
    import torch

    keys = sorted({key for row in rows for key, value in row.items() if _is_number(value) or value is None})
    table = torch.full((len(rows), len(keys)), math.nan, dtype=torch.float64)
    for index, row in enumerate(rows):
        for column, key in enumerate(keys):
            value = row.get(key)
            if _is_number(value):
                table[index, column] = float(value)
    return {"keys": keys, "table": table}


def unpack_rows(packed: dict[str, Any]) -> list[dict[str, Any]]:
    """pack_rows inverted: NaN cells become None; update, env_steps and episodes come back as ints."""
    rows = []
    for values in packed["table"].tolist():
        row = {key: (None if math.isnan(value) else value) for key, value in zip(packed["keys"], values)}
        for key in INTEGER_KEYS:
            if row.get(key) is not None:
                row[key] = int(row[key])
        rows.append(row)
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def clean(value: Any) -> Any:
    """JSON-safe scalar: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """metrics.jsonl + tensorboard/ + curves.png in a run folder, continuing `history` (a checkpoint's rows)."""

    def __init__(self, run_dir: str | Path, history: list[dict[str, Any]] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.rows = list(history or [])
        resume_update = self.rows[-1]["update"] if self.rows else 0
        # the checkpoint's history is the record: rows logged after it (lost with the kill) are dropped
        atomic_write(self.path, lambda temp: temp.write_text("".join(json.dumps(row) + "\n" for row in self.rows)))
        from torch.utils.tensorboard import SummaryWriter

        tensorboard = self.run_dir / "tensorboard"
        fresh = not tensorboard.exists()
        self.writer = SummaryWriter(str(tensorboard), purge_step=resume_update + 1)
        if fresh:  # a run resumed in a new folder: its history goes to TensorBoard too
            for row in self.rows:
                self._add_scalars(row)
            self.writer.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Append one update's metrics (flushed at once) and log its numeric values to TensorBoard."""
        row = {key: clean(value) for key, value in row.items()}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        self.rows.append(row)
        self._add_scalars(row)
        self.writer.flush()

    def _add_scalars(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, global_step=row["update"])

    def plot(self) -> Path:
        """Write curves.png (atomically) from all rows so far."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        columns = 5
        figure = Figure(figsize=(4 * columns, 3 * math.ceil(len(CURVES) / columns)))
        FigureCanvasAgg(figure)
        axes = figure.subplots(math.ceil(len(CURVES) / columns), columns, squeeze=False)
        for axis, (pattern, title, x_key) in zip(axes.flat, CURVES):
            label, scale = X_AXES[x_key]
            keys = ([pattern] if not pattern.endswith("*") else
                    sorted({key for row in self.rows for key in row if key.startswith(pattern[:-1])}))
            for key in keys:
                points = [(row[x_key] * scale, row[key]) for row in self.rows if row.get(key) is not None]
                if points:
                    axis.plot(*zip(*points), linewidth=1.2 if len(keys) == 1 else 0.8)
            axis.set_title(title, fontsize=9)
            axis.set_xlabel(label, fontsize=8)
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
        for axis in axes.flat[len(CURVES):]:
            axis.set_visible(False)
        figure.subplots_adjust(left=0.05, right=0.98, bottom=0.1, top=0.93, hspace=0.45, wspace=0.3)
        path = self.run_dir / "curves.png"
        return atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=80))

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.writer.close()
