"""Held-out evaluation: position error (mm) and rotation error (deg) statistics, and a PNG grid of samples."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from sim.atomic import atomic_write
from vision.config import EvaluationConfig
from vision.dataset import PoseDataset, write_json_atomic
from vision.geometry import cube_axes_points, position_error_mm, project_points, rotation_error_deg
from sim.cores import resolve_device
from vision.inference import model_from_checkpoint
from vision.model import PoseNet

AXIS_COLOURS = ((230, 40, 40), (40, 200, 40), (50, 90, 255))
HEADER_HEIGHT = 24


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, median, 90th percentile and maximum of a 1-D array of errors."""
    values = np.asarray(values, np.float64)
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": float(values.max()),
    }


def predict_dataset(
    model: PoseNet, dataset: PoseDataset, indices: Sequence[int], batch_size: int, progress: bool = False
) -> dict[str, np.ndarray]:
    """Predicted and true poses of dataset samples: position/quaternion (K, 3|4) and true_* alike, float64."""
    model.eval()
    device = next(model.parameters()).device
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in ("position", "quaternion", "true_position",
                                                                  "true_quaternion")}
    indices = list(indices)
    with torch.inference_mode():
        for start in tqdm(range(0, len(indices), batch_size), desc="predict", unit="batch", disable=not progress):
            batch = [dataset[index] for index in indices[start : start + batch_size]]
            position, quaternion = model(torch.stack([item["images"] for item in batch]).to(device))
            outputs["position"].append(position.cpu().numpy())
            outputs["quaternion"].append(quaternion.cpu().numpy())
            outputs["true_position"].append(torch.stack([item["position"] for item in batch]).numpy())
            outputs["true_quaternion"].append(torch.stack([item["quaternion"] for item in batch]).numpy())
    return {name: np.concatenate(parts).astype(np.float64) for name, parts in outputs.items()}


def error_metrics(predictions: dict[str, np.ndarray]) -> dict[str, Any]:
    """Position error mm and rotation error deg summaries of predict_dataset's output."""
    return {
        "count": int(len(predictions["position"])),
        "position_error_mm": summarize(position_error_mm(predictions["position"], predictions["true_position"])),
        "rotation_error_deg": summarize(rotation_error_deg(predictions["quaternion"], predictions["true_quaternion"])),
    }


def draw_axes(
    image: np.ndarray,
    position: np.ndarray,
    quaternion: np.ndarray,
    intrinsics: np.ndarray,
    extrinsics: np.ndarray,
    length: float,
    thickness: int,
    tip_radius: int = 0,
) -> None:
    """Draw the cube's x, y, z axes (red, green, blue) onto an RGB image (H, W, 3) in place."""
    pixels, depth = project_points(cube_axes_points(position, quaternion, length), intrinsics, extrinsics)
    if np.any(depth <= 0) or not np.all(np.isfinite(pixels)):
        return
    limit = 8 * max(image.shape[:2])
    points = np.clip(np.round(pixels), -limit, limit).astype(np.int32)
    centre = tuple(int(value) for value in points[0])
    for tip, colour in zip(points[1:], AXIS_COLOURS):
        cv2.line(image, centre, (int(tip[0]), int(tip[1])), colour, thickness, cv2.LINE_AA)
        if tip_radius:
            cv2.circle(image, (int(tip[0]), int(tip[1])), tip_radius, colour, -1, cv2.LINE_AA)


def scaled_intrinsics(intrinsics: np.ndarray, factor: float) -> np.ndarray:
    """Intrinsics (3, 3) of the same camera after resizing its image by `factor` (pixel centres at integers)."""
    scaled = np.asarray(intrinsics, np.float64).copy()
    scaled[:2, :2] *= factor
    scaled[:2, 2] = (scaled[:2, 2] + 0.5) * factor - 0.5
    return scaled


def sample_grid(
    dataset: PoseDataset, indices: Sequence[int], predictions: dict[str, np.ndarray], config: EvaluationConfig
) -> np.ndarray:
    """RGB grid (rows = samples, columns = cameras): true axes thick, predicted axes thin with dots at the tips."""
    cell = config.grid_cell_size
    rows = []
    for row, index in enumerate(indices):
        sample = dataset.raw(int(index))
        factor = cell / sample["images"].shape[2]
        cells = []
        for camera, image in enumerate(sample["images"]):
            canvas = np.ascontiguousarray(cv2.resize(image, (cell, cell), interpolation=cv2.INTER_LINEAR))
            intrinsics = scaled_intrinsics(sample["intrinsics"][camera], factor)
            extrinsics = sample["extrinsics"][camera]
            length = config.axis_length_m
            draw_axes(canvas, sample["position"], sample["quaternion"], intrinsics, extrinsics, length, 3)
            draw_axes(canvas, predictions["position"][row], predictions["quaternion"][row], intrinsics, extrinsics,
                      length, 1, tip_radius=3)
            cells.append(canvas)
        header = np.full((HEADER_HEIGHT, cell * len(cells), 3), 255, np.uint8)
        position_error = position_error_mm(predictions["position"][row], predictions["true_position"][row])
        rotation_error = rotation_error_deg(predictions["quaternion"][row], predictions["true_quaternion"][row])
        text = (f"seed {int(sample['seeds'])}: {position_error:.1f} mm, {rotation_error:.1f} deg "
                "(thick true, thin predicted)")
        cv2.putText(header, text, (4, HEADER_HEIGHT - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.vstack((header, np.hstack(cells))))
    return np.vstack(rows)


def write_png_atomic(path: Path, image_rgb: np.ndarray) -> None:
    """Encode an RGB image (H, W, 3) as PNG and write it through a temporary file."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode PNG for {path}")
    atomic_write(path, lambda temporary: temporary.write_bytes(encoded.tobytes()))


def evaluate(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    config: EvaluationConfig,
    max_samples: int | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset; writes out_dir/metrics.json and out_dir/samples.png, returns the metrics."""
    model, _ = model_from_checkpoint(checkpoint)
    model.to(resolve_device(device, "device"))
    dataset = PoseDataset(data_dir, model.config.input_size, model.config.camera_count, crop=model.config.crop)
    count = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    indices = np.arange(count)
    predictions = predict_dataset(model, dataset, indices, config.batch_size, progress)
    metrics = {"checkpoint": str(checkpoint), "dataset": str(data_dir), **error_metrics(predictions)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "metrics.json", metrics)
    if config.grid_samples:
        shown = indices[: config.grid_samples]
        subset = {name: values[: len(shown)] for name, values in predictions.items()}
        write_png_atomic(out_dir / "samples.png", sample_grid(dataset, shown, subset, config))
    return metrics
