"""`inhand vision render/train/eval/export` end to end on the stand-in renderer, and `inhand bench vision`."""
from __future__ import annotations

import json
import sys

import cv2

from vision import bench, cli

SMALL = ["--set", "dataset.image_size=48", "--set", "model.input_size=48", "--set", "dataset.shard_size=8"]


def test_render_train_eval_export(tmp_path, capsys):
    data, run, report = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    assert cli.main(["render", "--synthetic", "--out", str(data), "--count", "12", "--seed-start", "1000", *SMALL]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"dataset": str(data), "count": 12, "shards": 2}

    train_settings = ["--set", "train.steps=3", "--set", "train.batch_size=4", "--set", "train.validation_fraction=0.2"]
    assert cli.main(["train", "--data", str(data), "--run-dir", str(run), *SMALL, *train_settings]) == 0
    assert (run / "checkpoint.pt").is_file()

    assert cli.main(["eval", "--checkpoint", str(run / "checkpoint.pt"), "--data", str(data), "--out", str(report),
                     "--set", "evaluation.grid_samples=2", "--set", "evaluation.grid_cell_size=64"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["count"] == 12
    assert set(metrics["position_error_mm"]) == {"mean", "median", "p90", "max"}
    assert set(metrics["rotation_error_deg"]) == {"mean", "median", "p90", "max"}
    grid = cv2.imread(str(report / "samples.png"))
    assert grid.shape == (2 * (24 + 64), 3 * 64, 3)

    capsys.readouterr()
    assert cli.main(["export", "--checkpoint", str(run / "model.pt"), "--out", str(tmp_path / "pose.onnx")]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_difference_vs_torch"] < 1e-4


def test_errors_are_reported_not_raised(tmp_path, capsys, monkeypatch):
    assert cli.main(["train", "--data", str(tmp_path / "none"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "no dataset manifest" in capsys.readouterr().err
    assert cli.main(["render", "--out", str(tmp_path), "--count", "1", "--set", "model.input_size=7"]) == 2
    assert "model.input_size" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sim.render", None)  # as on a checkout without the MuJoCo renderer
    assert cli.main(["render", "--out", str(tmp_path / "d"), "--count", "1"]) == 2
    assert "render_pose_sample is not available" in capsys.readouterr().err


def test_bench_prints_json_figures(capsys):
    assert bench.main(["--input-size", "48", "--repeats", "2", "--no-onnx"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["input_size"] == 48 and figures["batch"] == 1 and figures["threads"] == 2
    assert figures["torch_network_ms"] > 0 and figures["torch_end_to_end_ms"] > 0
