"""Pose-estimator checkpoints (sim.checkpoint's format), the estimator used at run time (torch or ONNX Runtime),
and ONNX export."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sim import checkpoint
from sim.atomic import atomic_write
from sim.config_loading import ConfigError, from_mapping, to_mapping
from sim.errors import CheckpointError
from vision.config import VisionConfig, check_consistency
from vision.model import PoseNet
from vision.preprocess import preprocess

ONNX_INPUT = "images"
ONNX_OUTPUTS = ("position", "quaternion")
ONNX_CROP_KEY = "inhand_crop"  # metadata: the crop fraction preprocessing must apply (ModelConfig.crop)


def save_pose_estimator(path: str | Path, model: PoseNet, config: VisionConfig, step: int,
                        validation: dict[str, Any]) -> Path:
    """Write an inference-only pose-estimator checkpoint: weights, config, training step, held-out metrics."""
    weights = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return checkpoint.save(path, "pose_inference", {"model": weights, "config": to_mapping(config), "step": step,
                                                    "validation": validation})


def config_from_checkpoint(content: dict[str, Any], source: str) -> VisionConfig:
    """The VisionConfig a pose-estimator checkpoint was trained with."""
    try:
        config = from_mapping(VisionConfig, content["config"], source=source)
        check_consistency(config, source)
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    return config


def model_from_checkpoint(path: str | Path) -> tuple[PoseNet, VisionConfig]:
    """The network (in eval mode) and config stored in a pose-estimator checkpoint (training or inference)."""
    content = checkpoint.load(path, checkpoint.POSE_KINDS)
    config = config_from_checkpoint(content, str(path))
    model = PoseNet(config.model)
    try:
        model.load_state_dict(content["model"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the stored model config ({error})") from None
    return model.eval(), config


class PoseEstimator:
    """Three camera images in, cube position (metres, hand frame) and unit quaternion (w-x-y-z, w >= 0) out."""

    def __init__(self, model: PoseNet) -> None:
        self.model = model.eval()
        self.input_size = model.config.input_size
        self.camera_count = model.config.camera_count
        self.crop = model.config.crop

    def predict_batch(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (N, cameras, H, W, 3) -> positions (N, 3), quaternions (N, 4)."""
        with torch.inference_mode():
            position, quaternion = self.model(preprocess(images, self.input_size, self.camera_count, self.crop))
        return position.numpy().astype(np.float64), quaternion.numpy().astype(np.float64)

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (cameras, H, W, 3) -> position (3,), quaternion (4,)."""
        position, quaternion = self.predict_batch(np.asarray(images)[None])
        return position[0], quaternion[0]


class OnnxPoseEstimator:
    """PoseEstimator's interface on an exported ONNX file, run with ONNX Runtime on the CPU."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape
        self.camera_count, self.input_size = int(shape[1]), int(shape[2])
        metadata = self.session.get_modelmeta().custom_metadata_map
        if ONNX_CROP_KEY not in metadata:
            raise CheckpointError(f"{path}: ONNX file lacks the '{ONNX_CROP_KEY}' metadata; re-export it with "
                                  f"inhand vision export")
        self.crop = float(metadata[ONNX_CROP_KEY])

    def predict_batch(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (N, cameras, H, W, 3) -> positions (N, 3), quaternions (N, 4)."""
        inputs = preprocess(images, self.input_size, self.camera_count, self.crop).numpy()
        position, quaternion = self.session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: inputs})
        return position.astype(np.float64), quaternion.astype(np.float64)

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (cameras, H, W, 3) -> position (3,), quaternion (4,)."""
        position, quaternion = self.predict_batch(np.asarray(images)[None])
        return position[0], quaternion[0]


def export_onnx(model: PoseNet, out_path: str | Path) -> Path:
    """Write `model` as ONNX (input: preprocessed float32 (N, cameras, S, S, 3); outputs position, quaternion)."""
    size, cameras = model.config.input_size, model.config.camera_count
    example = torch.zeros(1, cameras, size, size, 3)
    model = model.eval()

    def write(temporary: Path) -> None:
        with warnings.catch_warnings():
            # The TorchScript-based exporter is used on purpose: the torch.export one needs onnxscript.
            warnings.simplefilter("ignore", DeprecationWarning)
            # Shape checks in forward() become constants in the trace, which is right for one fixed input size.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                model,
                (example,),
                str(temporary),
                dynamo=False,
                input_names=[ONNX_INPUT],
                output_names=list(ONNX_OUTPUTS),
                dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUTS[0]: {0: "batch"}, ONNX_OUTPUTS[1]: {0: "batch"}},
                opset_version=17,
            )
        import onnx

        exported = onnx.load(str(temporary))
        onnx.helper.set_model_props(exported, {ONNX_CROP_KEY: repr(model.config.crop)})
        onnx.save(exported, str(temporary))

    return atomic_write(out_path, write, suffix=".onnx")


def onnx_max_difference(model: PoseNet, onnx_path: str | Path, images: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime outputs on uint8 images (N, cameras, H, W, 3)."""
    torch_position, torch_quaternion = PoseEstimator(model).predict_batch(images)
    onnx_position, onnx_quaternion = OnnxPoseEstimator(onnx_path).predict_batch(images)
    return float(max(np.abs(torch_position - onnx_position).max(), np.abs(torch_quaternion - onnx_quaternion).max()))
