"""Helpers for ros_nodes tests: sample messages of every type and conversion to rosbags messages."""
from __future__ import annotations

from typing import Any

import numpy as np

from ros_nodes import msgs


def to_rosbags(message: Any, typestore: Any) -> Any:
    """Our dataclass message -> the equivalent rosbags message object, field by field."""
    values = {}
    for spec in message.FIELDS:
        value = getattr(message, spec.name)
        if spec.is_message:
            value = [to_rosbags(v, typestore) for v in value] if spec.is_array else to_rosbags(value, typestore)
        elif spec.is_array and spec.element != "string":
            value = np.asarray(value, dtype=msgs.schema.PRIMITIVES[spec.element][2])
        values[spec.name] = value
    return typestore.types[message.ROS_TYPE](**values)


def header(sec: int = 1_700_000_000, nanosec: int = 123_456_789, frame_id: str = "palm") -> msgs.Header:
    """A header with a realistic stamp."""
    return msgs.Header(stamp=msgs.Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def sample_messages() -> list[tuple[str, Any]]:
    """(id, message) pairs covering every type, empty arrays, odd-length and non-ASCII strings."""
    rng = np.random.default_rng(7)
    joint_names = [f"rh_{finger}J{i}" for finger in ("FF", "MF", "RF", "LF") for i in range(1, 5)]
    joint_names += ["rh_LFJ5", "rh_THJ1", "rh_THJ2", "rh_THJ3", "rh_THJ4", "rh_THJ5", "rh_WRJ1", "rh_WRJ2"]
    image = rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    status = msgs.DiagnosticStatus(
        level=msgs.DiagnosticStatus.WARN, name="hand_driver: limits", message="clamped 2 joints",
        hardware_id="shadow-rh", values=[msgs.KeyValue("rh_FFJ3", "1.571"), msgs.KeyValue("odd", "x")],
    )
    return [
        ("time", msgs.Time(sec=-3, nanosec=999_999_999)),
        ("header_empty", msgs.Header()),
        ("header_odd", header(frame_id="abc")),
        ("bool_true", msgs.Bool(data=True)),
        ("bool_false", msgs.Bool()),
        ("float64", msgs.Float64(data=-1.25e-300)),
        ("string_odd", msgs.String(data="héllo, wörld")),
        ("string_empty", msgs.String()),
        ("multiarray_empty", msgs.Float64MultiArray()),
        ("multiarray", msgs.Float64MultiArray(
            layout=msgs.MultiArrayLayout(
                dim=[msgs.MultiArrayDimension("rows", 2, 6), msgs.MultiArrayDimension("c", 3, 3)], data_offset=1),
            data=np.arange(7, dtype=np.float64) / 3)),
        ("joint_state_24", msgs.JointState(
            header=header(), name=joint_names, position=rng.normal(size=24), velocity=rng.normal(size=24),
            effort=np.zeros(0))),
        ("joint_state_empty", msgs.JointState()),
        ("joint_state_odd", msgs.JointState(header=header(frame_id="x"), name=["a"], position=np.array([0.5]))),
        ("image", msgs.Image(header=header(frame_id="cam_left"), height=3, width=5, encoding="rgb8",
                             is_bigendian=0, step=15, data=image.reshape(-1))),
        ("image_empty", msgs.Image(encoding="rgb8")),
        ("camera_info", msgs.CameraInfo(
            header=header(frame_id="cam"), height=200, width=200, distortion_model="plumb_bob",
            d=np.array([0.1, -0.2, 0.0, 0.0, 0.01]), k=np.arange(9.0), r=np.eye(3).reshape(-1),
            p=np.arange(12.0), binning_x=1, binning_y=2,
            roi=msgs.RegionOfInterest(x_offset=1, y_offset=2, height=3, width=4, do_rectify=True))),
        ("camera_info_default", msgs.CameraInfo()),
        ("point", msgs.Point(x=1.0, y=-2.0, z=3.5)),
        ("quaternion", msgs.Quaternion(x=0.1, y=0.2, z=0.3, w=0.9)),
        ("vector3", msgs.Vector3(x=1e-9, y=0.0, z=-7.0)),
        ("pose", msgs.Pose(position=msgs.Point(0.01, 0.02, 0.03), orientation=msgs.Quaternion())),
        ("pose_stamped", msgs.PoseStamped(header=header(frame_id="world"),
                                          pose=msgs.Pose(position=msgs.Point(1, 2, 3)))),
        ("quaternion_stamped", msgs.QuaternionStamped(header=header(frame_id="goal"),
                                                      quaternion=msgs.Quaternion(0.0, 0.0, 0.7071, 0.7071))),
        ("clock", msgs.Clock(clock=msgs.Time(sec=12, nanosec=80_000_000))),
        ("key_value", msgs.KeyValue("k", "val")),
        ("diagnostic_status", status),
        ("diagnostic_array", msgs.DiagnosticArray(header=header(), status=[status, msgs.DiagnosticStatus()])),
        ("diagnostic_array_empty", msgs.DiagnosticArray()),
        ("multiarray_dimension", msgs.MultiArrayDimension("abcde", 1, 2)),
        ("roi", msgs.RegionOfInterest(do_rectify=True)),
        ("layout", msgs.MultiArrayLayout(data_offset=9)),
    ]


SAMPLES = sample_messages()

