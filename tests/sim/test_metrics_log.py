"""The metrics log of every training run: rows packed into a checkpoint and back, the log rewritten from a
checkpoint's history on resume, TensorBoard scalars at the row's step, curves.png from the layout's panels."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sim.metrics_log import MetricsLayout, MetricsLog, Panel, history_rows, pack_rows, unpack_rows

LAYOUT = MetricsLayout(step_key="step", integer_keys=("step", "samples"),
                       panels=(Panel("loss", ("loss",), x="step", x_label="step", log_y=True),
                               Panel("parts", ("part/*",), x="seconds", x_label="hours", x_scale=1 / 3600)))
ROWS = [{"step": 1, "samples": 32, "loss": 2.5, "part/a": None, "seconds": 1800.0},
        {"step": 2, "samples": 64, "loss": 1.25, "part/a": 0.5, "part/b": -1.0, "seconds": 3600.0}]


def test_rows_survive_the_packed_table_with_missing_cells_and_integer_counters():
    packed = pack_rows(ROWS)
    assert packed["keys"] == ["loss", "part/a", "part/b", "samples", "seconds", "step"] and packed["rows"] == 2
    rows = unpack_rows(packed, LAYOUT.integer_keys)
    assert rows == [{**ROWS[0], "part/b": None}, ROWS[1]]
    assert type(rows[1]["samples"]) is int and type(rows[1]["seconds"]) is float
    assert unpack_rows(pack_rows([]), LAYOUT.integer_keys) == []


def test_a_long_history_packs_small_and_exactly():
    # 10^4 updates of two counters and a column pinned at one value (an ADR boundary at its limit): 240 kB raw
    rows = [{"step": step, "samples": 5120 * step, "part/a": 0.3} for step in range(10_000)]
    assert pack_rows(rows)["columns"].numel() < 0.2 * 240_000
    assert pack_rows([{"part/a": row["part/a"]} for row in rows])["columns"].numel() < 0.01 * 80_000
    noise = np.random.default_rng(0).normal(size=10_000)
    noisy = [{**row, "loss": float(value)} for row, value in zip(rows, noise)]
    assert unpack_rows(pack_rows(noisy), LAYOUT.integer_keys) == noisy


def test_the_uncompressed_table_of_earlier_training_files_still_unpacks():
    table = torch.tensor([[2.5, math.nan, 1.0], [1.25, 0.5, 2.0]], dtype=torch.float64)
    assert unpack_rows({"keys": ["loss", "part/a", "step"], "table": table}, LAYOUT.integer_keys) == [
        {"loss": 2.5, "part/a": None, "step": 1}, {"loss": 1.25, "part/a": 0.5, "step": 2}]


def test_history_rows_read_the_packed_table_and_the_row_list_of_earlier_policy_files():
    assert history_rows({"metrics": pack_rows(ROWS)}, LAYOUT) == [{**ROWS[0], "part/b": None}, ROWS[1]]
    assert history_rows({"metrics": ROWS}, LAYOUT) == ROWS
    assert history_rows({}, LAYOUT) == []


def test_a_resumed_log_keeps_the_checkpoints_rows_and_drops_later_ones(tmp_path):
    log = MetricsLog(tmp_path, LAYOUT)
    for row in ROWS:
        log.write(row)
    log.write({"step": 3, "samples": 96, "loss": float("nan"), "seconds": 5400.0})  # after the last checkpoint
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3] and lines[2]["loss"] is None  # NaN is written as null
    resumed = MetricsLog(tmp_path, LAYOUT, history=ROWS)
    resumed.write({"step": 3, "samples": 96, "loss": 0.5, "seconds": 5400.0})
    resumed.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == [*ROWS, {"step": 3, "samples": 96, "loss": 0.5, "seconds": 5400.0}]


def test_tensorboard_gets_every_number_but_the_step_at_the_rows_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricsLog(tmp_path, LAYOUT)
    for row in ROWS:
        log.write(row)
    log.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["loss", "part/a", "part/b", "samples", "seconds"]
    assert [(event.step, event.value) for event in events.Scalars("loss")] == [(1, 2.5), (2, 1.25)]
    assert [(event.step, event.value) for event in events.Scalars("part/a")] == [(2, 0.5)]


def test_curves_png_is_drawn_from_the_panels(tmp_path):
    log = MetricsLog(tmp_path, LAYOUT, history=ROWS)
    path = log.plot()
    log.close()
    assert path == tmp_path / "curves.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_panel_spans_the_whole_history_even_where_its_metric_starts_late(tmp_path):
    log = MetricsLog(tmp_path, LAYOUT, history=ROWS)
    parts = log.figure().axes[1]
    log.close()
    # part/a and part/b exist only at 1.0 h, the rows span 0.5-1.0 h: that span plus 5% each side
    assert parts.get_xlim() == pytest.approx((0.5 - 0.025, 1.0 + 0.025))


@pytest.mark.parametrize("value, expected", [(float("inf"), None), (float("nan"), None), (1.5, 1.5), (3, 3)])
def test_clean_makes_values_json_safe(value, expected):
    from sim.metrics_log import clean

    assert clean(value) == expected
