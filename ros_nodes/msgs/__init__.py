"""ROS 2 standard messages as dataclasses, and their CDR encoding."""
from __future__ import annotations

from ros_nodes.msgs.cdr import CdrError, deserialize, serialize
from ros_nodes.msgs.definitions import (
    Bool,
    CameraInfo,
    Clock,
    DiagnosticArray,
    DiagnosticStatus,
    Float64,
    Float64MultiArray,
    Header,
    Image,
    JointState,
    KeyValue,
    MultiArrayDimension,
    MultiArrayLayout,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    QuaternionStamped,
    RegionOfInterest,
    String,
    Time,
    Vector3,
)
from ros_nodes.msgs.schema import REGISTRY, FieldSpec, dds_type_name, message_class

__all__ = [
    "REGISTRY", "Bool", "CameraInfo", "CdrError", "Clock", "DiagnosticArray", "DiagnosticStatus", "FieldSpec",
    "Float64", "Float64MultiArray", "Header", "Image", "JointState", "KeyValue", "MultiArrayDimension",
    "MultiArrayLayout", "Point", "Pose", "PoseStamped", "Quaternion", "QuaternionStamped", "RegionOfInterest",
    "String", "Time", "Vector3", "dds_type_name", "deserialize", "message_class", "serialize",
]
