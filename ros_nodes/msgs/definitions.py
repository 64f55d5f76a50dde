"""The standard ROS 2 messages the inhand nodes speak, as plain dataclasses (field order = wire order)."""
from __future__ import annotations

import numpy as np

from ros_nodes.msgs.schema import ros_field, ros_message


@ros_message("builtin_interfaces/msg/Time")
class Time:
    """A point in time: seconds and nanoseconds."""

    sec: int = ros_field("int32")
    nanosec: int = ros_field("uint32")

    @classmethod
    def from_ns(cls, nanoseconds: int) -> Time:
        """Time from integer nanoseconds (floor division, so negative times keep 0 <= nanosec < 1e9)."""
        sec, nanosec = divmod(int(nanoseconds), 1_000_000_000)
        return cls(sec=sec, nanosec=nanosec)

    def to_ns(self) -> int:
        """Integer nanoseconds."""
        return self.sec * 1_000_000_000 + self.nanosec


@ros_message("std_msgs/msg/Header")
class Header:
    """Stamp and coordinate frame of stamped data."""

    stamp: Time = ros_field(Time)
    frame_id: str = ros_field("string")


@ros_message("std_msgs/msg/Bool")
class Bool:
    """A boolean."""

    data: bool = ros_field("bool")


@ros_message("std_msgs/msg/Float64")
class Float64:
    """A float64."""

    data: float = ros_field("float64")


@ros_message("std_msgs/msg/String")
class String:
    """A UTF-8 string."""

    data: str = ros_field("string")


@ros_message("std_msgs/msg/MultiArrayDimension")
class MultiArrayDimension:
    """One dimension of a MultiArrayLayout."""

    label: str = ros_field("string")
    size: int = ros_field("uint32")
    stride: int = ros_field("uint32")


@ros_message("std_msgs/msg/MultiArrayLayout")
class MultiArrayLayout:
    """Dimensions and offset of a multi-array's flat data."""

    dim: list[MultiArrayDimension] = ros_field(MultiArrayDimension, "[]")
    data_offset: int = ros_field("uint32")


@ros_message("std_msgs/msg/Float64MultiArray")
class Float64MultiArray:
    """A flat float64 array with its layout."""

    layout: MultiArrayLayout = ros_field(MultiArrayLayout)
    data: np.ndarray = ros_field("float64[]")


@ros_message("sensor_msgs/msg/JointState")
class JointState:
    """Joint names with positions (rad), velocities (rad/s), efforts (Nm); each array (J,) float64 or empty."""

    header: Header = ros_field(Header)
    name: list[str] = ros_field("string[]")
    position: np.ndarray = ros_field("float64[]")
    velocity: np.ndarray = ros_field("float64[]")
    effort: np.ndarray = ros_field("float64[]")


@ros_message("sensor_msgs/msg/Image")
class Image:
    """An image; data is (height * step,) uint8, e.g. rgb8 rows of width * 3 bytes."""

    header: Header = ros_field(Header)
    height: int = ros_field("uint32")
    width: int = ros_field("uint32")
    encoding: str = ros_field("string")
    is_bigendian: int = ros_field("uint8")
    step: int = ros_field("uint32")
    data: np.ndarray = ros_field("uint8[]")


@ros_message("sensor_msgs/msg/RegionOfInterest")
class RegionOfInterest:
    """A sub-window of an image."""

    x_offset: int = ros_field("uint32")
    y_offset: int = ros_field("uint32")
    height: int = ros_field("uint32")
    width: int = ros_field("uint32")
    do_rectify: bool = ros_field("bool")


@ros_message("sensor_msgs/msg/CameraInfo")
class CameraInfo:
    """Camera calibration: k (9,) intrinsics, r (9,) rectification, p (12,) projection, row-major."""

    header: Header = ros_field(Header)
    height: int = ros_field("uint32")
    width: int = ros_field("uint32")
    distortion_model: str = ros_field("string")
    d: np.ndarray = ros_field("float64[]")
    k: np.ndarray = ros_field("float64[9]")
    r: np.ndarray = ros_field("float64[9]")
    p: np.ndarray = ros_field("float64[12]")
    binning_x: int = ros_field("uint32")
    binning_y: int = ros_field("uint32")
    roi: RegionOfInterest = ros_field(RegionOfInterest)


@ros_message("geometry_msgs/msg/Point")
class Point:
    """A position in metres."""

    x: float = ros_field("float64")
    y: float = ros_field("float64")
    z: float = ros_field("float64")


@ros_message("geometry_msgs/msg/Quaternion")
class Quaternion:
    """An orientation as x, y, z, w (ROS order; sim/rotations.py uses w, x, y, z). Defaults to identity."""

    x: float = ros_field("float64")
    y: float = ros_field("float64")
    z: float = ros_field("float64")
    w: float = ros_field("float64", default=1.0)


@ros_message("geometry_msgs/msg/Vector3")
class Vector3:
    """A 3-vector."""

    x: float = ros_field("float64")
    y: float = ros_field("float64")
    z: float = ros_field("float64")


@ros_message("geometry_msgs/msg/Pose")
class Pose:
    """Position and orientation."""

    position: Point = ros_field(Point)
    orientation: Quaternion = ros_field(Quaternion)


@ros_message("geometry_msgs/msg/PoseStamped")
class PoseStamped:
    """A pose with stamp and frame."""

    header: Header = ros_field(Header)
    pose: Pose = ros_field(Pose)


@ros_message("geometry_msgs/msg/QuaternionStamped")
class QuaternionStamped:
    """An orientation with stamp and frame."""

    header: Header = ros_field(Header)
    quaternion: Quaternion = ros_field(Quaternion)


@ros_message("rosgraph_msgs/msg/Clock")
class Clock:
    """Simulated time, published on /clock."""

    clock: Time = ros_field(Time)


@ros_message("diagnostic_msgs/msg/KeyValue")
class KeyValue:
    """A key and a value, both strings."""

    key: str = ros_field("string")
    value: str = ros_field("string")


@ros_message("diagnostic_msgs/msg/DiagnosticStatus")
class DiagnosticStatus:
    """State of one component; level is OK, WARN, ERROR or STALE."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3

    level: int = ros_field("byte")
    name: str = ros_field("string")
    message: str = ros_field("string")
    hardware_id: str = ros_field("string")
    values: list[KeyValue] = ros_field(KeyValue, "[]")


@ros_message("diagnostic_msgs/msg/DiagnosticArray")
class DiagnosticArray:
    """Statuses of several components."""

    header: Header = ros_field(Header)
    status: list[DiagnosticStatus] = ros_field(DiagnosticStatus, "[]")
