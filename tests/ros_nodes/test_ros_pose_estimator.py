"""pose_estimator node on inproc: the pose equals vision's PoseEstimator on sim-rendered images, stamped like them;
images of different stamps are never combined; bad images are reported on /diagnostics; bad checkpoints stop it."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.bench_system import write_untrained_pose_checkpoint
from ros_nodes.hand_driver import DriverConfig, SimHand, quaternion_array
from ros_nodes.pose_estimator import PoseEstimatorNode, main
from ros_nodes.transport import SENSOR_QOS, create_node
from sim.paths import data_path
from vision.inference import OnnxPoseEstimator, PoseEstimator, export_onnx, model_from_checkpoint
from vision.on_palm import PalmDetector

CAMERAS = ("left", "front", "right")
SIZE = 40
_DOMAINS = itertools.count(7300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_untrained_pose_checkpoint(tmp_path_factory.mktemp("pose") / "model.pt", input_size=48, seed=2)


@pytest.fixture(scope="module")
def rendered() -> np.ndarray:
    """Two sets of the three cameras (2, 3, SIZE, SIZE, 3) of a real sim state, 20 control steps apart."""
    hand = SimHand(DriverConfig(camera_height=SIZE, camera_width=SIZE, randomize=False, seed=5))
    try:
        first = hand.render()
        commands = hand.joint_map.commands_from_joints(hand.joint_positions())
        for _ in range(20):
            hand.step(commands + 0.3)
        return np.stack([first, hand.render()])
    finally:
        hand.close()


class Rig:
    """The pose estimator node and a camera node standing in for the driver, on one inproc domain."""

    def __init__(self, checkpoint: Path, **parameters: object) -> None:
        domain = next(_DOMAINS)
        self.estimator_node = create_node("pose_estimator", backend="inproc", domain_id=domain,
                                          parameters={"checkpoint": str(checkpoint), "threads": 0, **parameters})
        self.estimator = PoseEstimatorNode(self.estimator_node)
        self.node = create_node("cameras", backend="inproc", domain_id=domain)
        self.images = {c: self.node.create_publisher(msgs.Image, f"cameras/{c}/image_raw", SENSOR_QOS) for c in CAMERAS}
        self.poses: list[msgs.PoseStamped] = []
        self.on_palm: list[float] = []
        self.diagnostics: list[msgs.DiagnosticStatus] = []
        self.node.create_subscription(msgs.PoseStamped, "object/pose", self.poses.append)
        self.node.create_subscription(msgs.Float64, "object/on_palm", lambda message: self.on_palm.append(message.data))
        self.node.create_subscription(msgs.DiagnosticArray, "/diagnostics",
                                      lambda message: self.diagnostics.extend(message.status))

    def publish(self, camera: str, image: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> None:
        height, width = image.shape[:2]
        self.images[camera].publish(msgs.Image(
            header=msgs.Header(stamp=msgs.Time.from_ns(stamp_ns), frame_id=f"{camera}_camera"), height=height,
            width=width, encoding=encoding, is_bigendian=0, step=width * 3, data=np.ascontiguousarray(image).ravel()))
        self.spin()

    def spin(self) -> None:
        for _ in range(3):
            self.estimator_node.spin_once(0.01)
            self.node.spin_once(0.01)

    def close(self) -> None:
        self.estimator_node.shutdown()
        self.node.shutdown()


def pose_arrays(message: msgs.PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    p = message.pose.position
    return np.array([p.x, p.y, p.z]), quaternion_array(message.pose.orientation)


def test_the_published_pose_is_the_estimators_on_the_same_images_with_their_stamp(checkpoint, rendered) -> None:
    rig = Rig(checkpoint)
    reference = PoseEstimator(model_from_checkpoint(checkpoint)[0])
    try:
        stamps = [1_700_000_000_080_000_000, 1_700_000_000_160_000_000]
        for images, stamp in zip(rendered, stamps):
            for camera, image in zip(CAMERAS, images):
                assert not rig.poses or rig.poses[-1].header.stamp.to_ns() != stamp  # not before the third image
                rig.publish(camera, image, stamp)
        assert [m.header.stamp.to_ns() for m in rig.poses] == stamps
        assert {m.header.frame_id for m in rig.poses} == {"world"}
        for message, images in zip(rig.poses, rendered):
            position, quaternion = pose_arrays(message)
            expected_position, expected_quaternion = reference.predict(images)
            np.testing.assert_allclose(position, expected_position, atol=1e-5, rtol=0)
            np.testing.assert_allclose(quaternion, expected_quaternion, atol=1e-5, rtol=0)
        # the checkpoint's positions sit within millimetres of the cube resting on the palm (world frame)
        assert 0.14 < pose_arrays(rig.poses[0])[0][2] < 0.20
        assert not np.allclose(pose_arrays(rig.poses[0])[1], pose_arrays(rig.poses[1])[1])  # the images matter
        # and the shipped drop detector's probability on the same images, one per pose
        detector = PalmDetector.from_checkpoint(data_path("assets/checkpoints/palm_detector.pt"))
        np.testing.assert_allclose(rig.on_palm, [detector.probability(images) for images in rendered], atol=1e-6)
        assert min(rig.on_palm) > 0.5  # the cube lies on the palm in both
    finally:
        rig.close()


def test_without_a_drop_detector_there_is_no_on_palm_topic(checkpoint, rendered) -> None:
    rig = Rig(checkpoint, palm_checkpoint="")
    try:
        for camera, image in zip(CAMERAS, rendered[0]):
            rig.publish(camera, image, 80_000_000)
        assert len(rig.poses) == 1 and rig.on_palm == []
    finally:
        rig.close()


def test_onnx_backend_gives_the_same_pose(checkpoint, rendered, tmp_path: Path) -> None:
    onnx = export_onnx(model_from_checkpoint(checkpoint)[0], tmp_path / "pose.onnx")
    rig = Rig(onnx, backend="onnx")
    try:
        for camera, image in zip(CAMERAS, rendered[0]):
            rig.publish(camera, image, 80_000_000)
        position, quaternion = pose_arrays(rig.poses[0])
        expected_position, expected_quaternion = OnnxPoseEstimator(onnx).predict(rendered[0])
        np.testing.assert_allclose(position, expected_position, atol=1e-5, rtol=0)
        np.testing.assert_allclose(quaternion, expected_quaternion, atol=1e-5, rtol=0)
    finally:
        rig.close()


def test_images_of_different_stamps_are_never_combined(checkpoint, rendered) -> None:
    rig = Rig(checkpoint, max_pending_sets=2)
    try:
        left, front, right = rendered[0]
        rig.publish("left", left, 80_000_000)
        rig.publish("front", front, 80_000_000)
        rig.publish("right", right, 80_000_001)  # one nanosecond off: a set of its own
        assert rig.poses == []
        rig.publish("left", left, 160_000_000)  # a third incomplete set: the oldest is dropped (bounded buffer)
        assert sorted(rig.estimator.pending) == [80_000_001, 160_000_000]
        assert rig.estimator.incomplete_sets_dropped == 1
        rig.publish("front", front, 80_000_000)  # its set is gone: it does not complete anything
        rig.publish("front", front, 160_000_000)
        rig.publish("right", right, 160_000_000)
        assert [m.header.stamp.to_ns() for m in rig.poses] == [160_000_000]
        assert rig.estimator.pending == {}  # the older incomplete set went with the completed newer one
        rig.publish("left", left, 80_000_001)  # older than the last estimate: ignored
        assert rig.estimator.pending == {} and rig.estimator.late_images == 1
    finally:
        rig.close()


def test_wrong_encoding_or_size_is_reported_naming_the_topic(checkpoint, rendered) -> None:
    rig = Rig(checkpoint, image_height=SIZE, image_width=SIZE)
    try:
        left, front, right = rendered[0]
        rig.publish("left", left, 80_000_000, encoding="bgr8")
        warning = rig.diagnostics[-1]
        assert warning.level == msgs.DiagnosticStatus.WARN
        assert warning.message == "/cameras/left/image_raw: image rejected: encoding 'bgr8'; accepted: rgb8"
        rig.publish("front", front[:-2], 80_000_000)
        assert rig.diagnostics[-1].message == (
            f"/cameras/front/image_raw: image rejected: size {SIZE - 2}x{SIZE}; accepted: {SIZE}x{SIZE} (HxW)")
        values = {kv.key: kv.value for kv in rig.diagnostics[-1].values}
        assert values["images_rejected"] == "2" and values["rejected /cameras/front/image_raw"] == "1"
        rig.publish("right", right, 80_000_000)
        assert rig.poses == []  # nothing estimated from an incomplete set
        for camera, image in zip(CAMERAS, rendered[1]):
            rig.publish(camera, image, 160_000_000)
        assert [m.header.stamp.to_ns() for m in rig.poses] == [160_000_000]  # and the node lives on
        rig.estimator.publish_diagnostics()
        rig.spin()
        assert rig.diagnostics[-1].level == msgs.DiagnosticStatus.OK
    finally:
        rig.close()


def test_missing_or_corrupt_checkpoint_is_a_clear_startup_error(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("INHAND_TRANSPORT", "inproc")
    missing = tmp_path / "absent.pt"
    assert main(["--ros-args", "-p", f"checkpoint:={missing}"]) == 2
    assert f"{missing}: pose estimator checkpoint not found" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert main(["--ros-args", "-p", f"checkpoint:={corrupt}"]) == 2
    assert f"{corrupt}: not a readable checkpoint (truncated, corrupt or not a torch file)" in capsys.readouterr().err
    corrupt_onnx = tmp_path / "corrupt.onnx"
    corrupt_onnx.write_bytes(b"not a model")
    assert main(["--ros-args", "-p", f"checkpoint:={corrupt_onnx}", "-p", "backend:=onnx"]) == 2
    assert f"{corrupt_onnx}: not a readable ONNX model" in capsys.readouterr().err
    shipped = data_path("assets/checkpoints/pose_estimator.pt")
    assert main(["--ros-args", "-p", f"checkpoint:={shipped}", "-p", f"palm_checkpoint:={missing}"]) == 2
    assert f"{missing}: drop detector checkpoint not found" in capsys.readouterr().err
