"""pose_estimator node: the three camera images of one instant -> the CNN pose estimator -> the cube's pose.

Subscribes cameras/<name>/image_raw (sensor_msgs/Image rgb8, sensor-data QoS as the driver publishes them) for the
cameras the network was trained with, in its order, and groups them by header stamp: a set is complete when every
camera sent an image of the same stamp (the sim driver stamps the three together; real cameras need a hardware
trigger). A completed set discards the older incomplete ones, and at most max_pending_sets incomplete ones are kept
(the oldest goes first). Each complete set runs through vision's one preprocessing function and network (torch, or
ONNX Runtime on an `inhand vision export` file) and becomes object/pose (geometry_msgs/PoseStamped) stamped with the
images' stamp, in frame_id: the frame the network's positions were trained in (the sim's world frame). With a drop
detector (palm_checkpoint, vision.on_palm) the same images then give object/on_palm (std_msgs/Float64): the
probability that the cube is on the palm, which the pose alone cannot tell (the pose network only ever saw cubes on
the palm and keeps placing a fallen one there); the goal manager ends a trial as a drop when it stays low.

An image of another encoding, of a size other than image_height x image_width (when those are set), or whose data
does not fill height x step, is dropped and reported on /diagnostics (WARN, naming the topic and what is accepted).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ros_nodes import msgs
from ros_nodes.hand_driver import quaternion_message
from ros_nodes.node_main import config_from_parameters, run_node
from ros_nodes.transport import DEFAULT_QOS, SENSOR_QOS, Node
from sim.config_loading import ConfigError, bound, choice
from sim.paths import data_path
from vision.inference import CheckpointError, OnnxPoseEstimator, PoseEstimator, model_from_checkpoint
from vision.on_palm import PalmDetector

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "config/ros_pose_estimator.yaml"
ENCODING = "rgb8"


@dataclass(frozen=True)
class PoseEstimatorNodeConfig:
    """config/ros_pose_estimator.yaml; every key is also a node parameter of the same name."""

    checkpoint: str = "assets/checkpoints/pose_estimator.pt"  # torch: model.pt of `inhand vision train`; onnx: .onnx
    palm_checkpoint: str = "assets/checkpoints/palm_detector.pt"  # `inhand vision palm-train`; "" = no object/on_palm
    backend: str = field(default="torch", metadata=choice("torch", "onnx"))
    threads: int = field(default=1, metadata=bound(0, 256))  # inference threads; 0 = the library's default
    cameras: tuple[str, ...] = ("left", "front", "right")  # in the network's input order
    frame_id: str = "world"
    image_height: int = field(default=0, metadata=bound(0, 4096))  # 0 = any height
    image_width: int = field(default=0, metadata=bound(0, 4096))  # 0 = any width
    max_pending_sets: int = field(default=4, metadata=bound(1, 1000))
    diagnostics_period_s: float = field(default=1.0, metadata=bound(0.05, 60.0))


def resolve_pose_checkpoint(path: str, kind: str = "pose estimator") -> Path:
    """A checkpoint path as given, else under the package's share folder; CheckpointError naming both if absent."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    if not candidate.is_absolute():
        try:
            return data_path(path)
        except FileNotFoundError:
            pass
    writers = {"pose estimator": "-p checkpoint:=FILE (launch files: pose_checkpoint:=FILE); `inhand vision train` "
                                 "writes model.pt, `inhand vision export` an ONNX file",
               "drop detector": "-p palm_checkpoint:=FILE (launch files: palm_checkpoint:=FILE, \"\" for none); "
                                "`inhand vision palm-train` writes one"}
    raise CheckpointError(
        f"{path}: {kind} checkpoint not found (relative to {Path.cwd()} or the inhand package); pass {writers[kind]}"
    )


def load_estimator(checkpoint: str, backend: str, threads: int,
                   cameras: tuple[str, ...]) -> PoseEstimator | OnnxPoseEstimator:
    """The estimator of a checkpoint on `backend`; CheckpointError for a missing, corrupt or mismatched file."""
    path = resolve_pose_checkpoint(checkpoint)
    if backend == "onnx":
        if path.suffix != ".onnx":
            raise CheckpointError(f"{path}: backend 'onnx' takes an .onnx file (`inhand vision export`), not "
                                  f"{path.suffix or 'a file without suffix'}; use backend 'torch' for .pt")
        try:
            estimator: PoseEstimator | OnnxPoseEstimator = OnnxPoseEstimator(path, threads)
        except Exception as error:  # onnxruntime raises its own types for unreadable models
            raise CheckpointError(f"{path}: not a readable ONNX model ({error})") from None
        if estimator.camera_count != len(cameras):
            raise CheckpointError(f"{path}: the network takes {estimator.camera_count} cameras, "
                                  f"the node is configured for {len(cameras)} {list(cameras)}")
        return estimator
    import torch

    model, config = model_from_checkpoint(path)
    trained_cameras = tuple(config.dataset.camera_names)
    if trained_cameras != tuple(cameras):
        raise CheckpointError(f"{path}: the network was trained on cameras {list(trained_cameras)} in that order; "
                              f"the node is configured for {list(cameras)}")
    estimator = PoseEstimator(model)
    if threads > 0:
        torch.set_num_threads(threads)
    return estimator


def image_array(message: msgs.Image, expected: tuple[int, int]) -> np.ndarray:
    """An rgb8 Image -> (H, W, 3) uint8; ValueError saying what is wrong and what is accepted."""
    if message.encoding != ENCODING:
        raise ValueError(f"encoding {message.encoding!r}; accepted: {ENCODING}")
    height, width, step = int(message.height), int(message.width), int(message.step)
    wanted_height, wanted_width = expected
    if (wanted_height and height != wanted_height) or (wanted_width and width != wanted_width):
        raise ValueError(f"size {height}x{width}; accepted: {wanted_height or 'any'}x{wanted_width or 'any'} (HxW)")
    if height < 1 or width < 1 or step < 3 * width or len(message.data) != height * step:
        raise ValueError(f"{len(message.data)} data bytes for {height}x{width} with step {step}; an rgb8 image needs "
                         "step >= 3 x width and height x step bytes")
    rows = np.asarray(message.data, dtype=np.uint8).reshape(height, step)
    return rows[:, : 3 * width].reshape(height, width, 3)


class PoseEstimatorNode:
    """The node: synchronized image sets in, object/pose and /diagnostics out."""

    def __init__(self, node: Node, config: PoseEstimatorNodeConfig | None = None,
                 estimator: PoseEstimator | OnnxPoseEstimator | None = None) -> None:
        self.node = node
        self.config = config or config_from_parameters(node, PoseEstimatorNodeConfig, DEFAULT_CONFIG)
        config = self.config
        if not config.cameras or len(set(config.cameras)) != len(config.cameras):
            raise ConfigError(f"cameras must name distinct cameras, got {list(config.cameras)}")
        self.estimator = estimator or load_estimator(config.checkpoint, config.backend, config.threads, config.cameras)
        self.palm: PalmDetector | None = None
        if config.palm_checkpoint:
            self.palm = PalmDetector.from_checkpoint(resolve_pose_checkpoint(config.palm_checkpoint, "drop detector"))
            if self.palm.config.camera_count != len(config.cameras):
                raise CheckpointError(f"{config.palm_checkpoint}: the drop detector takes "
                                      f"{self.palm.config.camera_count} cameras, the node has {len(config.cameras)}")
        self.on_palm = float("nan")
        self.pending: dict[int, dict[str, np.ndarray]] = {}  # stamp -> camera -> (H, W, 3)
        self.frame_ids: dict[int, str] = {}
        self.poses_published = 0
        self.incomplete_sets_dropped = 0
        self.rejected: dict[str, int] = {}  # topic -> images rejected
        self.last_rejection = ""
        self.inference_ms = 0.0
        self.late_images = 0
        self.last_stamp_ns = -1
        self._rejections_reported = 0

        self.pose_publisher = node.create_publisher(msgs.PoseStamped, "object/pose", DEFAULT_QOS)
        self.palm_publisher = node.create_publisher(msgs.Float64, "object/on_palm", DEFAULT_QOS)
        self.diagnostics = node.create_publisher(msgs.DiagnosticArray, "/diagnostics", DEFAULT_QOS)
        self.topics = {camera: node.resolve_topic(f"cameras/{camera}/image_raw") for camera in config.cameras}
        for camera in config.cameras:
            node.create_subscription(msgs.Image, f"cameras/{camera}/image_raw",
                                     lambda message, camera=camera: self.on_image(camera, message), SENSOR_QOS)
        node.create_timer(config.diagnostics_period_s, self.publish_diagnostics)

    def on_image(self, camera: str, message: msgs.Image) -> None:
        """Take one camera's image; estimate once every camera has one of this stamp."""
        stamp_ns = message.header.stamp.to_ns()
        try:
            image = image_array(message, (self.config.image_height, self.config.image_width))
        except ValueError as error:
            self._reject(self.topics[camera], str(error))
            return
        if stamp_ns <= self.last_stamp_ns:
            self.late_images += 1  # a set of this stamp or a newer one was estimated already
            return
        images = self.pending.setdefault(stamp_ns, {})
        images[camera] = image
        self.frame_ids.setdefault(stamp_ns, message.header.frame_id)
        if len(images) == len(self.config.cameras):
            self._estimate(stamp_ns)
        elif len(self.pending) > self.config.max_pending_sets:
            self._drop(min(self.pending))

    def _drop(self, stamp_ns: int) -> None:
        self.pending.pop(stamp_ns)
        self.frame_ids.pop(stamp_ns, None)
        self.incomplete_sets_dropped += 1

    def _estimate(self, stamp_ns: int) -> None:
        images = self.pending.pop(stamp_ns)
        self.frame_ids.pop(stamp_ns, None)
        for older in [stamp for stamp in self.pending if stamp < stamp_ns]:
            self._drop(older)
        self.last_stamp_ns = stamp_ns
        shapes = {camera: image.shape for camera, image in images.items()}
        if len(set(shapes.values())) != 1:
            self._reject(", ".join(self.topics[c] for c in self.config.cameras),
                         f"images of one stamp differ in size {shapes}; the cameras must share one size")
            return
        started = time.perf_counter()
        stacked = np.stack([images[camera] for camera in self.config.cameras])
        position, quaternion = self.estimator.predict(stacked)
        if self.palm is not None:
            self.on_palm = self.palm.probability(stacked)
        self.inference_ms = (time.perf_counter() - started) * 1e3
        self.pose_publisher.publish(msgs.PoseStamped(
            header=msgs.Header(stamp=msgs.Time.from_ns(stamp_ns), frame_id=self.config.frame_id),
            pose=msgs.Pose(position=msgs.Point(x=float(position[0]), y=float(position[1]), z=float(position[2])),
                           orientation=quaternion_message(quaternion)),
        ))
        if self.palm is not None:
            self.palm_publisher.publish(msgs.Float64(data=self.on_palm))
        self.poses_published += 1

    def _reject(self, topic: str, reason: str) -> None:
        self.rejected[topic] = self.rejected.get(topic, 0) + 1
        text = f"{topic}: image rejected: {reason}"
        changed, self.last_rejection = text != self.last_rejection, text
        if changed:  # a new problem is reported at once, a recurring one with the periodic status
            logger.warning("%s", text)
            self.publish_diagnostics()

    def diagnostic_status(self) -> msgs.DiagnosticStatus:
        """WARN naming the topic while images are rejected (since the last report), else OK."""
        rejected = sum(self.rejected.values())
        warn = rejected > self._rejections_reported
        self._rejections_reported = rejected
        values: dict[str, Any] = {
            "checkpoint": self.config.checkpoint,
            "backend": self.config.backend,
            "poses_published": self.poses_published,
            "last_stamp_ns": self.last_stamp_ns,
            "inference_ms": round(self.inference_ms, 3),
            "on_palm_probability": round(self.on_palm, 4),
            "incomplete_sets_dropped": self.incomplete_sets_dropped,
            "late_images": self.late_images,
            "images_rejected": rejected,
            **{f"rejected {topic}": count for topic, count in sorted(self.rejected.items())},
            "last_rejection": self.last_rejection,
        }
        return msgs.DiagnosticStatus(
            level=msgs.DiagnosticStatus.WARN if warn else msgs.DiagnosticStatus.OK,
            name=f"{self.node.name}: pose_estimator", message=self.last_rejection if warn else "ok",
            hardware_id="pose_estimator",
            values=[msgs.KeyValue(key=key, value=str(value)) for key, value in values.items()],
        )

    def publish_diagnostics(self) -> None:
        """Publish the node's status on /diagnostics now."""
        self.diagnostics.publish(msgs.DiagnosticArray(header=msgs.Header(stamp=self.node.now()),
                                                      status=[self.diagnostic_status()]))


def main(argv: list[str] | None = None) -> int:
    """`python -m ros_nodes.pose_estimator --ros-args -p checkpoint:=model.pt -p backend:=torch ...`"""
    return run_node("pose_estimator", PoseEstimatorNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
