"""The metrics of a training run (policy or pose estimator): metrics.jsonl, TensorBoard scalars and curves.png.

A row is a flat mapping of metric names to numbers (None where a value is missing), keyed by a step counter.
The training checkpoint carries the rows (pack_rows), so a resumed run rewrites its log from them and continues
one curve, in its own folder or on another machine.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.atomic import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS_NAME = "metrics.jsonl"
TENSORBOARD_NAME = "tensorboard"
CURVES_NAME = "curves.png"
PLOT_COLUMNS = 5
# zlib's fastest level: 0.04 s per checkpoint for 10^4 rows of 51 keys; level 6 saves 5% more in four times that
COMPRESSION_LEVEL = 1


@dataclass(frozen=True)
class Panel:
    """One plot of curves.png: the rows' `keys` (a key ending in "*" stands for every key it begins) against `x`."""

    title: str
    keys: tuple[str, ...]
    x: str
    x_label: str
    x_scale: float = 1.0
    log_y: bool = False


@dataclass(frozen=True)
class MetricsLayout:
    """What a run's rows count in and how they are drawn."""

    step_key: str  # TensorBoard's global step
    integer_keys: tuple[str, ...]  # counters, which come back from a checkpoint's table as ints
    panels: tuple[Panel, ...]


def pack_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics rows as one float64 table, NaN where a row lacks a value, stored column by column and
    zlib-compressed (lossless): a column that barely changes (an ADR boundary at its limit, a counter) costs almost
    nothing, so 10^4 updates of history take about 1 MB of a training file instead of 4."""
    import torch

    keys = sorted({key for row in rows for key, value in row.items() if _is_number(value) or value is None})
    columns = np.array([[_as_float(row.get(key)) for row in rows] for key in keys], dtype=np.float64)
    compressed = zlib.compress(columns.tobytes(), COMPRESSION_LEVEL)
    return {"keys": keys, "rows": len(rows), "columns": torch.frombuffer(bytearray(compressed), dtype=torch.uint8)}


def unpack_rows(packed: dict[str, Any], integer_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """pack_rows inverted (also the uncompressed (rows, keys) table of files written before the columns):
    NaN cells become None; the integer keys come back as ints."""
    keys = packed["keys"]
    if "table" in packed:
        table = packed["table"].numpy()
    else:
        flat = np.frombuffer(zlib.decompress(packed["columns"].numpy().tobytes()), dtype=np.float64)
        table = flat.reshape(len(keys), packed["rows"]).T
    rows = []
    for values in table.tolist():
        row = {key: (None if math.isnan(value) else value) for key, value in zip(keys, values)}
        for key in integer_keys:
            if row.get(key) is not None:
                row[key] = int(row[key])
        rows.append(row)
    return rows


def history_rows(content: dict[str, Any], layout: MetricsLayout) -> list[dict[str, Any]]:
    """The metrics rows a training checkpoint carries: a packed table, or (policy files written before the table
    existed) a list of rows; none in older policy files."""
    metrics = content.get("metrics")
    if metrics is None:
        return []
    return unpack_rows(metrics, layout.integer_keys) if isinstance(metrics, dict) else [dict(row) for row in metrics]


def _as_float(value: Any) -> float:
    return float(value) if _is_number(value) else math.nan


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def clean(value: Any) -> Any:
    """JSON-safe scalar: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """metrics.jsonl + tensorboard/ + curves.png in a run folder, continuing `history` (a checkpoint's rows)."""

    def __init__(self, run_dir: str | Path, layout: MetricsLayout, history: list[dict[str, Any]] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.layout = layout
        self.path = self.run_dir / METRICS_NAME
        self.rows = list(history or [])
        resume_step = self.rows[-1][layout.step_key] if self.rows else 0
        # the checkpoint's history is the record: rows logged after it (lost with the kill) are dropped
        atomic_write(self.path, lambda temp: temp.write_text("".join(json.dumps(row) + "\n" for row in self.rows)))
        from torch.utils.tensorboard import SummaryWriter

        tensorboard = self.run_dir / TENSORBOARD_NAME
        fresh = not tensorboard.exists()
        self.writer = SummaryWriter(str(tensorboard), purge_step=resume_step + 1)
        if fresh:  # a run resumed in a new folder: its history goes to TensorBoard too
            for row in self.rows:
                self._add_scalars(row)
            self.writer.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (flushed at once) and log its numbers to TensorBoard at the row's step."""
        row = {key: clean(value) for key, value in row.items()}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        self.rows.append(row)
        self._add_scalars(row)
        self.writer.flush()

    def _add_scalars(self, row: dict[str, Any]) -> None:
        step = row[self.layout.step_key]
        for key, value in row.items():
            if key != self.layout.step_key and _is_number(value):
                self.writer.add_scalar(key, value, global_step=step)

    def plot(self) -> Path:
        """Write curves.png (atomically) from all rows so far."""
        figure = self.figure()
        return atomic_write(self.run_dir / CURVES_NAME, lambda temp: figure.savefig(temp, format="png", dpi=80))

    def figure(self) -> Figure:
        """The panels of curves.png drawn from all rows so far."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        panels = self.layout.panels
        columns = min(PLOT_COLUMNS, len(panels))
        lines = math.ceil(len(panels) / columns)
        figure = Figure(figsize=(4 * columns, 3 * lines))
        FigureCanvasAgg(figure)
        axes = figure.subplots(lines, columns, squeeze=False)
        for axis, panel in zip(axes.flat, panels):
            keys = [name for pattern in panel.keys for name in self._matching(pattern)]
            drawn = 0
            for key in keys:
                points = [(row[panel.x] * panel.x_scale, row[key]) for row in self.rows
                          if row.get(key) is not None and row.get(panel.x) is not None]
                if points:
                    axis.plot(*zip(*points), linewidth=1.2 if len(keys) == 1 else 0.8, label=key)
                    drawn += 1
            # a metric logged only from some update on (a key added later) still lines up with the others
            span = [row[panel.x] * panel.x_scale for row in self.rows if row.get(panel.x) is not None]
            if drawn and len(span) > 1:
                margin = 0.05 * (max(span) - min(span))  # matplotlib's own default margin
                axis.set_xlim(min(span) - margin, max(span) + margin)
            if panel.log_y:
                axis.set_yscale("log")
            if 1 < drawn <= 4:  # more lines than that make a legend that hides the curves
                axis.legend(fontsize=7)
            axis.set_title(panel.title, fontsize=9)
            axis.set_xlabel(panel.x_label, fontsize=8)
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
        for axis in axes.flat[len(panels):]:
            axis.set_visible(False)
        figure.subplots_adjust(left=0.05, right=0.98, bottom=0.1, top=0.93, hspace=0.45, wspace=0.3)
        return figure

    def _matching(self, pattern: str) -> list[str]:
        if not pattern.endswith("*"):
            return [pattern]
        return sorted({key for row in self.rows for key in row if key.startswith(pattern[:-1])})

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.writer.close()
