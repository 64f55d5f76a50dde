"""Training metrics: one JSON line per update, TensorBoard scalars, and a PNG of the learning curves."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sim.atomic import atomic_write

# (metric key, panel title) of the PNG, plotted against env_steps
CURVES = (
    ("recent_successes_mean", "consecutive successes (recent episodes)"),
    ("recent_return_mean", "episode return (recent)"),
    ("recent_drop_rate", "drop rate (recent)"),
    ("policy_loss", "policy loss"),
    ("value_loss", "value loss (normalized)"),
    ("entropy", "entropy"),
    ("approx_kl", "approx KL"),
    ("samples_per_s", "samples / s"),
)
# keys of a metrics row that are not TensorBoard scalars
NOT_SCALARS = ("update", "env_steps")


def clean(value: Any) -> Any:
    """JSON-safe scalar: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """metrics.jsonl + tensorboard/ + curves.png in a run folder; resuming drops rows past the checkpoint."""

    def __init__(self, run_dir: str | Path, resume_update: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.rows = self._read_rows(resume_update)
        # rewrite without the rows of updates lost since the checkpoint (and any line cut short by a kill)
        atomic_write(self.path, lambda temp: temp.write_text("".join(json.dumps(row) + "\n" for row in self.rows)))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=resume_update + 1)

    def _read_rows(self, resume_update: int) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("update"), int) and row["update"] <= resume_update:
                rows.append(row)
        return rows

    def write(self, row: dict[str, Any]) -> None:
        """Append one update's metrics (flushed at once) and log its numeric values to TensorBoard."""
        row = {key: clean(value) for key, value in row.items()}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        self.rows.append(row)
        for key, value in row.items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, global_step=row["update"])
        self.writer.flush()

    def plot(self) -> Path:
        """Write curves.png (atomically) from all rows so far."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        columns = 4
        figure = Figure(figsize=(4 * columns, 3 * math.ceil(len(CURVES) / columns)))
        FigureCanvasAgg(figure)
        axes = figure.subplots(math.ceil(len(CURVES) / columns), columns, squeeze=False)
        for axis, (key, title) in zip(axes.flat, CURVES):
            points = [(row["env_steps"], row[key]) for row in self.rows if row.get(key) is not None]
            if points:
                axis.plot(*zip(*points), linewidth=1.2)
            axis.set_title(title, fontsize=9)
            axis.set_xlabel("env steps", fontsize=8)
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
        figure.subplots_adjust(left=0.05, right=0.98, bottom=0.1, top=0.93, hspace=0.45, wspace=0.3)
        path = self.run_dir / "curves.png"
        return atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=80))

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.writer.close()
