"""`inhand vision convert`: pose-estimator files from before the common checkpoint format, rewritten in it once;
the shipped pose estimator is in the format."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sim import checkpoint
from sim.config_loading import to_mapping
from sim.metrics_log import unpack_rows
from vision import cli
from vision.config import load_vision_config
from vision.inference import PoseEstimator, model_from_checkpoint, save_pose_estimator
from vision.model import PoseNet
from vision.train import train

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL = {"model.input_size": 48, "dataset.image_size": 48, "augmentation.enabled": False, "train.batch_size": 16,
         "train.lr_schedule": "constant", "train.log_every": 1, "train.validate_every": 4,
         "train.checkpoint_every": 4, "train.validation_fraction": 0.1}


def legacy_model_file(path: Path, config, seed: int = 0) -> PoseNet:
    """A pose-estimator file as `inhand vision train` wrote model.pt before the common format."""
    torch.manual_seed(seed)
    model = PoseNet(config.model).eval()
    torch.save({"kind": "inference", "model": model.state_dict(), "config": to_mapping(config), "step": 250,
                "validation": {"count": 5, "position_error_mm": {"mean": 3.5}}}, path)
    return model


def test_an_old_model_file_becomes_the_checkpoint_training_writes_today(tmp_path, capsys):
    config = load_vision_config(overrides=SMALL)
    model = legacy_model_file(tmp_path / "old.pt", config)
    assert cli.main(["convert", str(tmp_path / "old.pt"), "--out", str(tmp_path / "new.pt")]) == 0
    assert json.loads(capsys.readouterr().out) == {"source": str(tmp_path / "old.pt"), "out": str(tmp_path / "new.pt"),
                                                   "kind": "pose_inference"}
    converted = checkpoint.load(tmp_path / "new.pt", ("pose_inference",))
    save_pose_estimator(tmp_path / "today.pt", model, config, 250, {"count": 5, "position_error_mm": {"mean": 3.5}})
    assert checkpoint.digest(converted) == checkpoint.digest(checkpoint.load(tmp_path / "today.pt",
                                                                             ("pose_inference",)))
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 48, 48, 3), dtype=np.uint8)
    for ours, theirs in zip(PoseEstimator(model_from_checkpoint(tmp_path / "new.pt")[0]).predict_batch(images),
                            PoseEstimator(model).predict_batch(images)):
        np.testing.assert_array_equal(ours, theirs)


def test_an_old_training_file_carries_its_metrics_and_resumes(synthetic_dataset, tmp_path):
    config = load_vision_config(overrides={**SMALL, "train.steps": 6})
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(0)
    model = PoseNet(config.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate)
    torch.save({"kind": "training", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "config": to_mapping(config), "step": 4, "best_score": float("inf"), "torch_rng": torch.get_rng_state(),
                "dataset": [str(synthetic_dataset)]}, run / "old.pt")
    old_rows = [{"split": "train", "step": step, "loss": 10.0 - step, "lr": 0.001} for step in (1, 2, 3, 4, 5)]
    old_rows.insert(4, {"split": "validation", "step": 4, "count": 9, "position_error_mm": {"mean": 2.5}})
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in old_rows))
    assert cli.main(["convert", str(run / "old.pt"), "--out", str(run / "checkpoint.pt")]) == 0
    content = checkpoint.load(run / "checkpoint.pt", ("pose_training",))
    assert content["step"] == 4 and content["dataset"] == [str(synthetic_dataset)]
    assert content["metrics"]["keys"] == ["step", "train/loss", "train/lr", "validation/count",
                                          "validation/position_error_mm/mean"]
    rows = unpack_rows(content["metrics"], ("step",))  # step 5 was logged after the checkpoint: dropped
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 4]
    assert [row["train/loss"] for row in rows[:4]] == [9.0, 8.0, 7.0, 6.0]
    assert rows[4]["validation/count"] == 9.0 and rows[4]["validation/position_error_mm/mean"] == 2.5
    assert rows[4]["train/loss"] is None

    summary = train(config, synthetic_dataset, run, resume=True, progress=False)
    assert summary["step"] == 6
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line.get("train/loss") is not None) for line in lines] == [
        (1, True), (2, True), (3, True), (4, True), (4, False), (5, True), (6, True), (6, False)]


def test_files_that_need_no_conversion_are_refused(tmp_path, capsys):
    config = load_vision_config(overrides=SMALL)
    legacy_model_file(tmp_path / "old.pt", config)
    assert cli.main(["convert", str(tmp_path / "old.pt"), "--out", str(tmp_path / "old.pt")]) == 2
    assert "an input of this command" in capsys.readouterr().err
    current = save_pose_estimator(tmp_path / "current.pt", PoseNet(config.model), config, 0, {})
    assert cli.main(["convert", str(current), "--out", str(tmp_path / "again.pt")]) == 2
    assert "current.pt: already an inhand-policy checkpoint ('pose_inference'); nothing to convert" in (
        capsys.readouterr().err)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    assert cli.main(["convert", str(tmp_path / "foreign.pt"), "--out", str(tmp_path / "again.pt")]) == 2
    assert "foreign.pt: not a pose-estimator file from before the inhand-policy format" in capsys.readouterr().err
    assert not (tmp_path / "again.pt").exists()


def test_the_shipped_pose_estimator_is_in_the_format():
    path = REPO_ROOT / "assets/checkpoints/pose_estimator.pt"
    content = checkpoint.load(path, ("pose_inference",))
    assert content["step"] == 16000 and content["validation"]["count"] == 512
    model, config = model_from_checkpoint(path)
    assert config.model.input_size == 64 and tuple(config.dataset.camera_names) == ("left", "front", "right")
