"""The drop detector: a small CNN that tells from the three whole camera images whether the cube is on the palm.

The pose estimator was trained on cubes on the palm only, so with the cube on the table it still reports a pose on
the palm; this network is trained on renders of cubes on and off the palm (sim.palm_renders, `inhand vision render
--palm`), labelled by the task's drop rule (the cube's centre below the env's drop_height_m is off the palm). The
pose estimator node publishes its probability on object/on_palm, and the goal manager ends the trial as a drop when
it stays low. Images pass through vision's one preprocessing function, uncropped.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sim.config_loading import ConfigError, from_mapping, to_mapping
from sim import checkpoint
from sim.errors import CheckpointError
from vision.config import AugmentationConfig, PalmConfig
from vision.dataset import load_shard, read_manifest
from vision.preprocess import normalize_pixels, preprocess, resize_images

KIND = "palm_detector"


class PalmNet(nn.Module):
    """Per camera a tower of stride-2 3x3 convolutions; the flattened maps of all cameras -> FC -> one logit.

    The maps stay spatial (no pooling) because where the cube is, palm or table, is the whole question."""

    def __init__(self, config: PalmConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels_in, size = 3, config.input_size
        for channels in config.channels:
            layers += [nn.Conv2d(channels_in, channels, 3, stride=2, padding=1), nn.ReLU()]
            channels_in, size = channels, (size + 1) // 2
        self.tower = nn.Sequential(*layers)
        self.camera_count = config.camera_count
        self.head = nn.Sequential(nn.Linear(config.camera_count * channels_in * size * size, config.hidden_size),
                                  nn.ReLU(), nn.Linear(config.hidden_size, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (N, cameras, S, S, 3) -> logits (N,) of the cube being on the palm."""
        count = images.shape[0]
        features = self.tower(images.flatten(0, 1).permute(0, 3, 1, 2))
        return self.head(features.reshape(count, -1)).squeeze(-1)


def load_palm_dataset(folders: Sequence[str | Path], config: PalmConfig,
                      drop_height_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, cameras, S, S, 3) uint8 at the network's input size, on_palm labels (N,) bool) of datasets."""
    images, labels = [], []
    for folder in folders:
        manifest = read_manifest(folder)
        if not manifest.get("complete"):
            raise ConfigError(f"{folder}: the dataset is not complete; finish it with the same `inhand vision render`")
        if len(manifest["camera_names"]) != config.camera_count:
            raise ConfigError(f"{folder}: {len(manifest['camera_names'])} cameras, the detector takes "
                              f"{config.camera_count}")
        for shard in manifest["shards"]:
            arrays = load_shard(Path(folder) / shard["file"], ("images", "position"))
            images.append(resize_images(arrays["images"], config.input_size))
            labels.append(arrays["position"][:, 2] >= drop_height_m)
    return np.concatenate(images), np.concatenate(labels)


def _augmented(images: np.ndarray, augmentation: AugmentationConfig, generator: torch.Generator) -> torch.Tensor:
    from vision.train import augment

    return augment(normalize_pixels(torch.from_numpy(images)), augmentation, generator)


def predict(model: PalmNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities (N,) that the cube is on the palm, for images (N, cameras, S, S, 3) at the input size."""
    model.eval()
    with torch.no_grad():
        logits = [model(normalize_pixels(torch.from_numpy(images[start : start + batch_size])))
                  for start in range(0, len(images), batch_size)]
    return torch.sigmoid(torch.cat(logits)).numpy()


def detection_metrics(probabilities: np.ndarray, on_palm: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Per-image accuracy, the share of off-palm images seen off (drops detected) and of on-palm images seen on."""
    said_on = probabilities >= threshold
    off = ~on_palm
    return {
        "images": int(len(on_palm)),
        "off_palm_images": int(off.sum()),
        "accuracy": round(float(np.mean(said_on == on_palm)), 4),
        "off_palm_detected": round(float(np.mean(~said_on[off])), 4) if off.any() else None,
        "on_palm_kept": round(float(np.mean(said_on[on_palm])), 4) if on_palm.any() else None,
        "threshold": threshold,
    }


def train_palm_detector(config: PalmConfig, augmentation: AugmentationConfig, train_images: np.ndarray,
                        train_labels: np.ndarray, progress: bool = True) -> tuple[PalmNet, list[float]]:
    """The trained network and the mean loss of each epoch (binary cross-entropy, classes weighted equally)."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = PalmNet(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    positive = float(np.mean(train_labels))
    if not 0.0 < positive < 1.0:
        raise ConfigError(f"the training images are all {'on' if positive else 'off'} the palm: the detector needs "
                          "both")
    loss_function = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1.0 - positive) / positive))
    steps_per_epoch = int(np.ceil(len(train_labels) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate,
                                                   total_steps=config.epochs * steps_per_epoch)
    losses = []
    with tqdm(total=config.epochs * steps_per_epoch, desc="palm-train", unit="step", disable=not progress) as bar:
        for _ in range(config.epochs):
            model.train()
            order = rng.permutation(len(train_labels))
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                rows = order[start : start + config.batch_size]
                logits = model(_augmented(train_images[rows], augmentation, generator))
                loss = loss_function(logits, torch.from_numpy(train_labels[rows]).float())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach()) * len(rows)
                bar.update(1)
            losses.append(total / len(order))
    return model.eval(), losses


def save_palm_detector(model: PalmNet, config: PalmConfig, drop_height_m: float, path: Path,
                       metrics: dict[str, Any]) -> Path:
    """An inference checkpoint (weights, config, the drop height its labels used) and its eval JSON beside it."""
    from sim.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    checkpoint.save(path, KIND, {"model": weights, "config": to_mapping(config), "drop_height_m": drop_height_m})
    eval_path = path.with_suffix(".eval.json")
    atomic_write(eval_path, lambda temporary: temporary.write_text(json.dumps(metrics, indent=2) + "\n"))
    return eval_path


class PalmDetector:
    """Three camera images of one instant -> the probability that the cube is on the palm."""

    def __init__(self, model: PalmNet, config: PalmConfig) -> None:
        self.model = model.eval()
        self.config = config

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> PalmDetector:
        """Load a `inhand vision palm-train` checkpoint; CheckpointError for a missing or foreign file."""
        content = checkpoint.load(path, (KIND,))
        try:
            config = from_mapping(PalmConfig, content["config"], source=str(path))
            model = PalmNet(config)
            model.load_state_dict(content["model"])
        except (ConfigError, RuntimeError) as error:
            raise CheckpointError(f"{path}: the weights do not fit the stored config ({error})") from None
        return cls(model, config)

    def probability(self, images: np.ndarray) -> float:
        """uint8 images (cameras, H, W, 3) of any size -> P(cube on the palm)."""
        batch = preprocess(images, self.config.input_size, self.config.camera_count, crop=1.0)
        with torch.no_grad():
            return float(torch.sigmoid(self.model(batch))[0])


def train_and_evaluate(config: PalmConfig, augmentation: AugmentationConfig, train: Sequence[Path],
                       heldout: Sequence[Path], out: Path, drop_height_m: float,
                       progress: bool = True) -> dict[str, Any]:
    """Train on `train`, evaluate on `heldout` (unseen seeds), write the checkpoint and its eval JSON; the JSON."""
    started = time.monotonic()
    images, labels = load_palm_dataset(train, config, drop_height_m)
    model, losses = train_palm_detector(config, augmentation, images, labels, progress)
    heldout_images, heldout_labels = load_palm_dataset(heldout, config, drop_height_m)
    metrics = {
        "checkpoint": str(out),
        "heldout": {"data": [str(folder) for folder in heldout],
                    **detection_metrics(predict(model, heldout_images), heldout_labels)},
        "training": {"data": [str(folder) for folder in train], "images": int(len(labels)),
                     "on_palm_share": round(float(np.mean(labels)), 4), "epoch_losses": [round(v, 5) for v in losses],
                     "train_accuracy": detection_metrics(predict(model, images), labels)["accuracy"],
                     "minutes": round((time.monotonic() - started) / 60.0, 2)},
        "label": f"on the palm: cube centre at or above {drop_height_m} m (the env's drop_height_m)",
        "parameters": int(sum(parameter.numel() for parameter in model.parameters())),
    }
    save_palm_detector(model, config, drop_height_m, out, metrics)
    return metrics
