"""The drop detector: its network, metrics, renders on and off the palm, `inhand vision render --palm` and
`palm-train` end to end, and the shipped checkpoint on renders it never saw."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sim.config import load_env_config
from sim.errors import CheckpointError
from sim.palm_renders import PalmSampleRenderer
from sim.paths import data_path
from vision import cli
from vision.config import PalmConfig
from vision.on_palm import PalmDetector, PalmNet, detection_metrics, load_palm_dataset


def test_the_network_gives_one_logit_per_set_of_camera_images() -> None:
    model = PalmNet(PalmConfig(input_size=48, channels=(4, 8, 8), hidden_size=8))
    assert model(torch.zeros(2, 3, 48, 48, 3)).shape == (2,)
    # 48 -> 24 -> 12 -> 6: 3 cameras x 8 channels x 6 x 6 features into the hidden layer
    assert model.head[0].in_features == 3 * 8 * 6 * 6


def test_detection_metrics_of_a_hand_built_case() -> None:
    on_palm = np.array([True, True, True, False, False])
    probabilities = np.array([0.9, 0.4, 0.6, 0.2, 0.7])
    assert detection_metrics(probabilities, on_palm) == {"images": 5, "off_palm_images": 2, "accuracy": 0.6,
                                                         "off_palm_detected": 0.5, "on_palm_kept": 0.6667,
                                                         "threshold": 0.5}


def test_renders_hold_cubes_on_and_off_the_palm_labelled_by_the_drop_rule() -> None:
    renderer = PalmSampleRenderer(load_env_config(), 32)
    try:
        samples = [renderer(seed) for seed in range(12)]
    finally:
        renderer.close()
    heights = np.array([position[2] for _, position, _, _ in samples])
    assert all(images.shape == (3, 32, 32, 3) and images.dtype == np.uint8 for images, *_ in samples)
    assert (heights >= 0.10).sum() >= 3 and (heights < 0.10).sum() >= 3  # both kinds
    assert heights.min() > 0.02  # nothing sinks into the table (its top is at 0, the cube's half size 0.0285)
    np.testing.assert_allclose([np.linalg.norm(quaternion) for _, _, quaternion, _ in samples], 1.0)
    first_again = PalmSampleRenderer(load_env_config(), 32)
    try:
        np.testing.assert_array_equal(first_again(0)[0], samples[0][0])  # a seed is one sample
    finally:
        first_again.close()


def test_render_and_train_end_to_end(tmp_path, capsys) -> None:
    train, heldout, out = tmp_path / "train", tmp_path / "heldout", tmp_path / "palm.pt"
    small = ["--set", "dataset.image_size=32", "--set", "dataset.shard_size=8", "--set", "palm.input_size=32",
             "--set", "palm.channels=[4, 4]", "--set", "palm.epochs=1", "--set", "palm.batch_size=8"]
    assert cli.main(["render", "--palm", "--out", str(train), "--n", "16", "--seed", "100", *small]) == 0
    assert cli.main(["render", "--palm", "--out", str(heldout), "--n", "8", "--seed", "900", *small]) == 0
    manifest = json.loads((train / "manifest.json").read_text())
    assert manifest["cube_states"] == "on and off the palm (sim.palm_renders)"
    capsys.readouterr()
    assert cli.main(["palm-train", "--data", str(train), "--heldout", str(heldout), "--out", str(out), *small]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == json.loads(out.with_suffix(".eval.json").read_text())
    assert metrics["heldout"]["images"] == 8 and metrics["training"]["images"] == 16
    detector = PalmDetector.from_checkpoint(out)
    images, _ = load_palm_dataset([heldout], detector.config, 0.10)
    assert 0.0 <= detector.probability(images[0]) <= 1.0
    assert cli.main(["render", "--palm", "--synthetic", "--out", str(tmp_path / "x"), "--n", "1"]) == 2
    assert "--palm renders its own cube states" in capsys.readouterr().err


def test_a_pose_checkpoint_is_no_drop_detector() -> None:
    with pytest.raises(CheckpointError, match="holds a pose estimator .* needs a drop detector"):
        PalmDetector.from_checkpoint(data_path("assets/checkpoints/pose_estimator.pt"))


def test_the_shipped_detector_on_renders_it_never_saw() -> None:
    """24 renders of seeds outside its training and held-out ranges (7000000-7003999, 8000000-8000599): 11 with the
    cube on the palm and 13 off it, each seen as it is (its held-out accuracy is 0.987, palm_detector.eval.json;
    before episodes started with the cube at rest, these seeds gave other states, and one cube on the palm was
    taken for off)."""
    detector = PalmDetector.from_checkpoint(data_path("assets/checkpoints/palm_detector.pt"))
    renderer = PalmSampleRenderer(load_env_config(), 96)
    try:
        samples = [renderer(seed) for seed in range(9_000_000, 9_000_024)]
    finally:
        renderer.close()
    on_palm = np.array([position[2] >= 0.10 for _, position, _, _ in samples])
    said_on = np.array([detector.probability(images) >= 0.5 for images, *_ in samples])
    assert on_palm.sum() == 11
    assert not said_on[~on_palm].any() and said_on[on_palm].sum() == 11
